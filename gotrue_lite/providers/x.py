"""X (formerly Twitter) with OAuth 2.0: PKCE is mandatory; /2/users/me on api.x.com."""

from __future__ import annotations

from .base import Email, OAuthProvider, TokenSet, UserData, claims
from ._fields import obj, string, sub


class Provider(OAuthProvider):
    name = "x"
    default_origin = "https://x.com"
    auth_path = "/i/oauth2/authorize"
    default_scopes = ("users.email", "tweet.read", "users.read", "offline.access")
    requires_pkce = True

    @property
    def api_host(self) -> str:
        return self.host("https://api.x.com")

    async def token_url(self) -> str:
        return self.api_host + "/2/oauth2/token"

    async def user_data(self, tokens: TokenSet) -> UserData:
        url = (self.api_host + "/2/users/me?user.fields=id,name,username,confirmed_email,"
               "profile_image_url,url,created_at")
        user = sub(obj(await self.get_json(url, tokens)), "data")
        ident, name, username = string(user, "id"), string(user, "name"), string(user, "username")
        picture = string(user, "profile_image_url")
        data = UserData(claims=claims(
            iss=self.api_host, sub=ident, name=name, preferred_username=username, picture=picture,
            profile="https://x.com/" + username, website=string(user, "url"),
            custom_claims={"created_at": string(user, "created_at")},
            avatar_url=picture, full_name=name, provider_id=ident, user_name=username))
        if string(user, "confirmed_email"):
            data.emails.append(Email(string(user, "confirmed_email"), True, True))  # only confirmed ones
        return data
