"""Microsoft Entra ID (Azure AD): the user from the verified id_token of the tenant that issued it."""

from __future__ import annotations

from . import oidc
from ._oidc_provider import OIDCProvider
from .base import ProviderError, TokenSet, UserData


class Provider(OIDCProvider):
    name = "azure"
    default_origin = "https://login.microsoftonline.com/common"
    auth_path = "/oauth2/v2.0/authorize"
    token_path = "/oauth2/v2.0/token"
    default_scopes = ("openid",)
    read_token = staticmethod(oidc._azure)

    @property
    def expected_issuer(self) -> str:
        """The one issuer a tenant-specific _URL allows; "" for common / organizations."""
        return oidc.azure_expected_issuer(self.settings.url)

    def _token_issuer(self, raw: str) -> str:
        try:
            return oidc.azure_token_issuer(raw, self.settings.url)
        except oidc.OIDCError as refused:
            issuer = oidc.unverified_issuer(raw)
            # A stand-in IdP configured with _URL (not a Microsoft host: no expected issuer)
            # may issue on that same host; nothing else passes.
            if self.settings.url and not self.expected_issuer and issuer.startswith(self.origin + "/"):
                return issuer
            raise refused

    async def user_data(self, tokens: TokenSet) -> UserData:
        if not tokens.id_token:
            # Only ID tokens: upstream does not trust Azure's userinfo endpoint.
            raise ProviderError("azure: no OIDC ID token present in response", status=200)
        try:
            issuer = self._token_issuer(tokens.id_token)
        except oidc.OIDCError as exc:
            raise ProviderError(str(exc), status=200) from None
        # Discovery on the token's own issuer, as upstream does once the issuer passed.
        return await self.id_token_user_data(tokens, issuer=issuer)
