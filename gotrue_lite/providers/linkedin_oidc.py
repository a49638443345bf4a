"""Sign In with LinkedIn using OpenID Connect: the user from the verified id_token."""

from __future__ import annotations

from typing import Any

from ._fields import string
from ._oidc_provider import OIDCProvider
from .base import Email, ProviderError, TokenSet, UserData, claims

ISSUER = "https://www.linkedin.com/oauth"
_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
          "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def user_data_from_claims(payload: dict[str, Any]) -> UserData:
    """Upstream's parseLinkedinIDToken: LinkedIn sends email_verified as a string ("true")."""
    flag = string(payload, "email_verified")
    if flag not in _BOOLS:
        raise ProviderError(f'strconv.ParseBool: parsing "{flag}": invalid syntax', status=200)
    data = UserData()
    if string(payload, "email"):
        data.emails.append(Email(string(payload, "email"), _BOOLS[flag], True))
    given, family = string(payload, "given_name"), string(payload, "family_name")
    ident = string(payload, "sub")
    data.claims = claims(iss=string(payload, "iss"), sub=ident, name=f"{given} {family}".strip(),
                         given_name=given, family_name=family, locale=string(payload, "locale"),
                         picture=string(payload, "picture"), provider_id=ident)
    return data


class Provider(OIDCProvider):
    name = "linkedin_oidc"
    default_origin = "https://api.linkedin.com"
    auth_path = "/oauth/v2/authorization"
    token_path = "/oauth/v2/accessToken"
    default_scopes = ("openid", "email", "profile")

    @property
    def issuer(self) -> str:
        # LinkedIn's issuer lives below /oauth on its own host; with _URL set, below /oauth there.
        return self.settings.url.rstrip("/") + "/oauth" if self.settings.url else ISSUER

    def parse_claims(self, payload: dict[str, Any]) -> UserData:
        return user_data_from_claims(payload)

    async def user_data(self, tokens: TokenSet) -> UserData:
        if not tokens.access_token or not tokens.id_token:
            return UserData()
        return self.parse_claims(await self.verified_claims(tokens))
