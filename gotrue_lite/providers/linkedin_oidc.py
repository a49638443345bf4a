"""Sign In with LinkedIn using OpenID Connect: the user from the verified id_token."""

from __future__ import annotations

from . import oidc
from ._oidc_provider import OIDCProvider
from .base import TokenSet, UserData


class Provider(OIDCProvider):
    name = "linkedin_oidc"
    default_origin = "https://api.linkedin.com"
    auth_path = "/oauth/v2/authorization"
    token_path = "/oauth/v2/accessToken"
    default_scopes = ("openid", "email", "profile")
    read_token = staticmethod(oidc._linkedin)

    @property
    def issuer(self) -> str:
        # LinkedIn's issuer lives below /oauth on its own host; with _URL set, below /oauth there.
        return self.settings.url.rstrip("/") + "/oauth" if self.settings.url else oidc.ISSUER_LINKEDIN

    async def user_data(self, tokens: TokenSet) -> UserData:
        if not tokens.access_token or not tokens.id_token:
            return UserData()
        return await self.id_token_user_data(tokens)
