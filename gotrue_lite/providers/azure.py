"""Microsoft Entra ID (Azure AD): the user from the verified id_token of the tenant that issued it."""

from __future__ import annotations

import re
from typing import Any

from . import _idtoken
from ._fields import string
from ._oidc_provider import OIDCProvider
from .base import Email, ProviderError, TokenSet, UserData, claims

COMMON = "https://login.microsoftonline.com/common/v2.0"
ORGANIZATIONS = "https://login.microsoftonline.com/organizations/v2.0"
_ISSUER = re.compile(r"^https://login[.]microsoftonline[.]com/([^/]+)/v2[.]0/?$")
_CIAM_ISSUER = re.compile(r"^https://[a-z0-9-]+[.]ciamlogin[.]com/([^/]+)/v2[.]0/?$")
# Registered and bookkeeping claims that are not the person's (upstream's list).
_NOT_CUSTOM = ("aud", "iss", "iat", "nbf", "exp", "c_hash", "at_hash", "aio", "nonce", "rh", "uti",
               "jti", "ver", "sub", "name", "preferred_username")


def is_azure_issuer(issuer: str) -> bool:
    return bool(_ISSUER.match(issuer))


def is_ciam_issuer(issuer: str) -> bool:
    return bool(_CIAM_ISSUER.match(issuer))


def _email_verified(payload: dict[str, Any]) -> bool:
    # xms_edov (the domain owner verified the address) is "1", "true" or true when present;
    # without it, Azure only sends a tenant's own (trusted) addresses.
    email = string(payload, "email")
    if "xms_edov" not in payload or payload["xms_edov"] is None:
        return email != ""
    edov = payload["xms_edov"]
    flag = edov if isinstance(edov, bool) else edov in ("1", "true") if isinstance(edov, str) else False
    return email != "" and flag


def user_data_from_claims(payload: dict[str, Any]) -> UserData:
    """Upstream's parseAzureIDToken: every claim not in the list above goes to custom_claims."""
    data = UserData()
    if string(payload, "email"):
        data.emails.append(Email(string(payload, "email"), _email_verified(payload), True))
    ident = string(payload, "sub")
    custom = {k: v for k, v in payload.items() if k not in _NOT_CUSTOM}
    data.claims = claims(iss=string(payload, "iss"), sub=ident, provider_id=ident,
                         preferred_username=string(payload, "preferred_username"),
                         full_name=string(payload, "name"), custom_claims=custom)
    return data


class Provider(OIDCProvider):
    name = "azure"
    default_origin = "https://login.microsoftonline.com/common"
    auth_path = "/oauth2/v2.0/authorize"
    token_path = "/oauth2/v2.0/token"
    default_scopes = ("openid",)

    @property
    def expected_issuer(self) -> str:
        """The one issuer a tenant-specific _URL allows; "" for common / organizations."""
        if not self.settings.url:
            return ""
        expected = self.origin + "/v2.0"
        if (not is_azure_issuer(expected) and not is_ciam_issuer(expected)) or expected in (COMMON, ORGANIZATIONS):
            return ""
        return expected

    def _issuer_allowed(self, issuer: str) -> bool:
        if is_azure_issuer(issuer):
            return True
        if is_ciam_issuer(issuer):
            return is_ciam_issuer(self.expected_issuer) or not self.expected_issuer
        # gotrue-lite, stricter than upstream (which lets any issuer through with "common" and
        # then fetches that issuer's discovery document): only Microsoft's issuers, or, for a
        # stand-in IdP configured with _URL, an issuer on that same configured host.
        return bool(self.settings.url) and issuer.startswith(self.origin + "/")

    def parse_claims(self, payload: dict[str, Any]) -> UserData:
        return user_data_from_claims(payload)

    async def user_data(self, tokens: TokenSet) -> UserData:
        if not tokens.id_token:
            # Only ID tokens: upstream does not trust Azure's userinfo endpoint.
            raise ProviderError("azure: no OIDC ID token present in response", status=200)
        issuer = string(_idtoken.unverified_claims(tokens.id_token), "iss")
        if not self._issuer_allowed(issuer):
            raise ProviderError(f"azure: ID token issuer not valid {issuer!r}", status=200)
        if self.expected_issuer and issuer != self.expected_issuer:
            raise ProviderError(f"azure: ID token issuer {issuer!r} does not match expected issuer "
                                f"{self.expected_issuer!r}", status=200)
        return self.parse_claims(await self.verified_claims(tokens, issuer=issuer))
