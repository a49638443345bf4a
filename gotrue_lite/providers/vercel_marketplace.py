"""Vercel Marketplace: the installing user from the verified id_token (issuer marketplace.vercel.com)."""

from __future__ import annotations

from . import oidc
from ._oidc_provider import OIDCProvider
from .base import ProviderError, TokenSet, UserData


class Provider(OIDCProvider):
    name = "vercel_marketplace"
    default_origin = "https://api.vercel.com"
    auth_path = "/oauth/v2/authorization"
    token_path = "/oauth/v2/accessToken"
    read_token = staticmethod(oidc._vercel_marketplace)

    @property
    def issuer(self) -> str:
        return self.settings.url.rstrip("/") if self.settings.url else oidc.ISSUER_VERCEL_MARKETPLACE

    async def user_data(self, tokens: TokenSet) -> UserData:
        if not tokens.access_token or not tokens.id_token:
            raise ProviderError("vercel_marketplace: no OIDC ID token present in response", status=200)
        return await self.id_token_user_data(tokens)
