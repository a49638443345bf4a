"""What the providers whose user data is an ID token share: their endpoints from the issuer's
discovery document and the verified token read into UserData — both by the generic OIDC
machinery in oidc.py (one cache per HTTP client, unless the app hands the provider its own)."""

from __future__ import annotations

import weakref
from typing import Any, Callable, ClassVar, Mapping

from . import oidc
from .base import OAuthProvider, ProviderError, TokenSet, UserData

# One cache per app: the app's one HTTP client stands for the app.
_caches: "weakref.WeakKeyDictionary[Any, oidc.OIDCCache]" = weakref.WeakKeyDictionary()


class OIDCProvider(OAuthProvider):
    """A provider that reads the user from a verified id_token.

    `issuer` is the OpenID issuer (GOTRUE_EXTERNAL_<NAME>_URL replaces its default, so a local
    IdP can stand in); when `discovered_endpoints` is set the authorization and token endpoints
    come from the issuer's discovery document, as upstream takes them from go-oidc's Endpoint().
    `read_token` is upstream's claim parser for this provider's tokens; it is chosen by the
    provider rather than by the token's issuer so a stand-in issuer gets the same reading.
    """

    oidc = True
    default_issuer: ClassVar[str] = ""
    discovered_endpoints: ClassVar[bool] = False
    skip_issuer_check: ClassVar[bool] = False
    read_token: ClassVar[Callable[[oidc.IDToken], UserData]]
    # The app may set this to its own cache (upstream's a.oidcCache); else one per HTTP client.
    oidc_cache: oidc.OIDCCache | None = None

    @property
    def issuer(self) -> str:
        return self.host(self.default_issuer)

    @property
    def cache(self) -> oidc.OIDCCache:
        if self.oidc_cache is None:
            cache = _caches.get(self.http)
            if cache is None:
                cache = _caches[self.http] = oidc.OIDCCache(self.http)
            self.oidc_cache = cache
        return self.oidc_cache

    async def discovery(self) -> oidc.Discovery:
        try:
            return (await self.cache.provider(self.issuer)).discovery
        except oidc.OIDCError as exc:
            raise ProviderError(f"{self.name}: {exc}") from None

    async def authorization_url(self, state: str, params: Mapping[str, str]) -> str:
        url = await super().authorization_url(state, params)
        if not self.discovered_endpoints:
            return url
        return (await self.discovery()).authorization_endpoint + url[url.index("?"):]

    async def token_url(self) -> str:
        if not self.discovered_endpoints:
            return await super().token_url()
        return (await self.discovery()).token_endpoint

    async def id_token_user_data(self, tokens: TokenSet, issuer: str | None = None) -> UserData:
        """The id_token verified (signature, issuer unless skipped, audience = the client id,
        expiry, at_hash against the access token) and read with this provider's parser."""
        try:
            provider = await self.cache.provider(issuer or self.issuer)
            token, signed, signature, kid = oidc.verify(provider, tokens.id_token, audiences=[self.client_id],
                                                        skip_issuer_check=self.skip_issuer_check)
            await provider.keys.verify(token.algorithm, kid, signed, signature)
            data = type(self).read_token(token)
            if tokens.access_token and token.at_hash:
                oidc.verify_access_token(token, tokens.access_token)
        except oidc.OIDCError as exc:
            raise ProviderError(f"{self.name}: {exc}") from None
        return data
