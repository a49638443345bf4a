"""Vercel Marketplace: the installing user from the verified id_token (issuer marketplace.vercel.com)."""

from __future__ import annotations

from typing import Any

from ._fields import string
from ._oidc_provider import OIDCProvider
from .base import Email, ProviderError, TokenSet, UserData, claims

ISSUER = "https://marketplace.vercel.com"


def user_data_from_claims(payload: dict[str, Any]) -> UserData:
    """Upstream's parseVercelMarketplaceIDToken: the global user id, when given, is the subject."""
    subject = string(payload, "sub")
    if string(payload, "global_user_id"):
        subject = "global_user_id:" + string(payload, "global_user_id")
    return UserData(emails=[Email(string(payload, "user_email"), True, True)],
                    claims=claims(iss=string(payload, "iss"), sub=subject, provider_id=subject,
                                  name=string(payload, "user_name"),
                                  picture=string(payload, "user_avatar_url")))


class Provider(OIDCProvider):
    name = "vercel_marketplace"
    default_origin = "https://api.vercel.com"
    auth_path = "/oauth/v2/authorization"
    token_path = "/oauth/v2/accessToken"

    @property
    def issuer(self) -> str:
        return self.settings.url.rstrip("/") if self.settings.url else ISSUER

    def parse_claims(self, payload: dict[str, Any]) -> UserData:
        return user_data_from_claims(payload)

    async def user_data(self, tokens: TokenSet) -> UserData:
        if not tokens.access_token or not tokens.id_token:
            raise ProviderError("vercel_marketplace: no OIDC ID token present in response", status=200)
        return self.parse_claims(await self.verified_claims(tokens))
