"""Figma: /v1/me on the API host."""

from __future__ import annotations

from .base import Email, OAuthProvider, TokenSet, UserData, claims
from ._fields import obj, string


class Provider(OAuthProvider):
    name = "figma"
    default_origin = "https://www.figma.com"
    auth_path = "/oauth"
    default_scopes = ("current_user:read",)

    @property
    def api_host(self) -> str:
        return self.host("https://api.figma.com")

    async def token_url(self) -> str:
        return self.api_host + "/v1/oauth/token"

    async def user_data(self, tokens: TokenSet) -> UserData:
        user = obj(await self.get_json(self.api_host + "/v1/me", tokens))
        data = UserData()
        email = string(user, "email")
        if email:
            data.emails.append(Email(email, True, True))
        ident, handle = string(user, "id"), string(user, "handle")
        data.claims = claims(iss=self.api_host, sub=ident, name=handle, email=email, email_verified=True,
                             avatar_url=string(user, "img_url"), full_name=handle, provider_id=ident)
        return data
