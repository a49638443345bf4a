"""Kakao: /v2/user/me on the API host; the client secret goes in the token form, not Basic auth."""

from __future__ import annotations

from .base import Email, OAuthProvider, TokenSet, UserData, claims
from ._fields import boolean, integer, obj, string, sub


class Provider(OAuthProvider):
    name = "kakao"
    default_origin = "https://kauth.kakao.com"
    auth_path = "/oauth/authorize"
    token_path = "/oauth/token"
    default_scopes = ("account_email", "profile_image", "profile_nickname")
    token_auth_style = "params"  # Kakao refuses client credentials in an Authorization header

    async def user_data(self, tokens: TokenSet) -> UserData:
        api = self.host("https://kapi.kakao.com")
        user = obj(await self.get_json(api + "/v2/user/me", tokens))
        account = sub(user, "kakao_account")
        profile = sub(account, "profile")
        data = UserData()
        if string(account, "email"):
            # Kakao says an address may be verified yet no longer valid: both must hold.
            verified = boolean(account, "is_email_verified") and boolean(account, "is_email_valid")
            data.emails.append(Email(string(account, "email"), verified, True))
        ident = str(integer(user, "id"))
        nickname = string(profile, "nickname")
        data.claims = claims(iss=api, sub=ident, name=nickname, preferred_username=nickname,
                             avatar_url=string(profile, "profile_image_url"), full_name=nickname,
                             provider_id=ident, user_name=nickname)
        return data

