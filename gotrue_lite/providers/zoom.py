"""Zoom: /v2/users/me on the API host."""

from __future__ import annotations

from .base import Email, OAuthProvider, TokenSet, UserData, claims
from ._fields import integer, obj, string


class Provider(OAuthProvider):
    name = "zoom"
    default_origin = "https://zoom.us"
    auth_path = "/oauth/authorize"
    token_path = "/oauth/token"
    takes_extra_scopes = False

    async def user_data(self, tokens: TokenSet) -> UserData:
        api = self.host("https://api.zoom.us") + "/v2"
        user = obj(await self.get_json(api + "/users/me", tokens))
        data = UserData()
        if string(user, "email"):
            # login_type 100 is a Zoom work e-mail login: only trusted when Zoom verified it.
            verified = string(user, "login_type") != "100" or integer(user, "verified") != 0
            data.emails.append(Email(string(user, "email"), verified, True))
        ident, avatar = string(user, "id"), string(user, "pic_url")
        name = f"{string(user, 'first_name')} {string(user, 'last_name')}".strip()
        data.claims = claims(iss=api, sub=ident, name=name, picture=avatar, avatar_url=avatar,
                             full_name=name, provider_id=ident)
        return data
