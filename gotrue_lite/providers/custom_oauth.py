"""A custom OAuth2 / OIDC provider (`custom:<identifier>`) built from its admin-made row.

upstream provider/custom_oauth.go: endpoints from the row (OAuth2) or from the cached discovery
document (OIDC); the row's authorization_params added to the authorization URL; user data from
the verified ID token (audience = client_id ∪ acceptable_client_ids; no nonce or at_hash check
at the callback) or else the userinfo endpoint, decoded into upstream's Claims;
custom_claims_allowlist copies raw claims into custom_claims, attribute_mapping rewrites the
claims ({target: source claim name} or {target: constant}). Not found by provider_class (it has
no `Provider`): auth/ builds it with `build`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import aiohttp

from . import oidc
from .base import Email, OAuthProvider, ProviderError, TokenSet, UserData

if TYPE_CHECKING:
    from ..config import ProviderSettings


class CustomOAuth(OAuthProvider):
    name = "custom"

    def __init__(self, settings: "ProviderSettings", http: aiohttp.ClientSession, scopes: str = "", *,
                 identifier: str, provider_type: str, default_scopes: tuple[str, ...],
                 authorization_endpoint: str, token_endpoint: str, userinfo_endpoint: str,
                 authorization_params: Mapping[str, Any], attribute_mapping: Mapping[str, Any],
                 custom_claims_allowlist: tuple[str, ...], acceptable_client_ids: tuple[str, ...],
                 pkce: bool, issuer: str = "", discovery_url: str = "",
                 cache: oidc.OIDCCache | None = None, fetch: oidc.Fetch | None = None):
        super().__init__(settings, http, "")
        self.name = identifier
        # custom scopes are split on whitespace and replace the stored ones (built-ins append)
        self.scopes = scopes.split() if scopes.strip() else list(default_scopes)
        self.provider_type = provider_type
        self.auth_path = authorization_endpoint
        self.token_path = token_endpoint
        self.userinfo_endpoint = userinfo_endpoint
        self.authorization_params = {k: v for k, v in authorization_params.items() if isinstance(v, str)}
        self.attribute_mapping = dict(attribute_mapping)
        self.allowlist = custom_claims_allowlist
        self.acceptable = (settings.client_id[0] if settings.client_id else "", *acceptable_client_ids)
        self.requires_pkce = pkce
        self.oidc = provider_type == "oidc"
        self.issuer = issuer
        self.discovery_url = discovery_url
        self.cache = cache
        self.fetch = fetch

    async def authorization_url(self, state: str, params: Mapping[str, str]) -> str:
        return await super().authorization_url(state, {**params, **self.authorization_params})

    async def user_data(self, tokens: TokenSet) -> UserData:
        if self.oidc and tokens.id_token:
            if self.cache is None:
                raise ProviderError(f"{self.name}: no OIDC cache")
            try:
                token, data = await oidc.parse_id_token(self.cache, self.issuer, tokens.id_token,
                                                        discovery=self.discovery_url, fetch=self.fetch)
            except oidc.OIDCError as exc:
                raise ProviderError(f"failed to verify ID token: {exc}") from None
            if not any(a and a in token.audience for a in self.acceptable):
                raise ProviderError(f"token audience {list(token.audience)} does not match any acceptable client ID")
            claims = _allowed(token.claims, self.allowlist, data.claims)
            # the email list is the token's, from before the mapping (upstream)
            return UserData(data.emails, _mapped(claims, self.attribute_mapping))
        if not self.userinfo_endpoint:
            raise ProviderError("no ID token or userinfo endpoint available")
        raw = await self.get_json(self.endpoint(self.userinfo_endpoint), tokens)
        if not isinstance(raw, dict):
            raise ProviderError(f"{self.name}: userinfo is not a JSON object", body=str(raw))
        try:
            claims = oidc.claims_map(**oidc.standard_claims(raw))
        except oidc.OIDCError as exc:
            raise ProviderError(f"{self.name}: {exc}") from None
        claims = _mapped(_allowed(raw, self.allowlist, claims), self.attribute_mapping)
        email = claims.get("email") or ""
        return UserData([Email(email, bool(claims.get("email_verified")), True)] if email else [], claims)


def _allowed(raw: Mapping[str, Any], allowlist: tuple[str, ...], claims: dict[str, Any]) -> dict[str, Any]:
    """captureAllowedClaims: listed raw claims copied verbatim into custom_claims."""
    picked = {key: raw[key] for key in allowlist if key in raw}
    if not picked:
        return claims
    return {**claims, "custom_claims": {**(claims.get("custom_claims") or {}), **picked}}


def _mapped(claims: dict[str, Any], mapping: Mapping[str, Any]) -> dict[str, Any]:
    """applyAttributeMapping: a string names the source claim, anything else is a constant;
    then only upstream's Claims keys survive (a value of the wrong type: mapping ignored)."""
    if not mapping:
        return claims
    out = dict(claims)
    for target, source in mapping.items():
        if isinstance(source, str):
            if source in claims:
                out[target] = claims[source]
        else:
            out[target] = source
    try:
        return oidc.claims_map(**oidc.standard_claims(out))
    except oidc.OIDCError:
        return claims


def build(row: Any, settings: "ProviderSettings", http: aiohttp.ClientSession, scopes: str = "", *,
          cache: oidc.OIDCCache | None = None, fetch: oidc.Fetch | None = None) -> CustomOAuth:
    """The provider for a custom_oauth_providers row (auth.custom_providers.CustomProvider);
    `settings` carries its client id, decrypted secret and the callback URL."""
    if row.provider_type == "oidc":
        doc = row.cached_discovery or {}
        endpoints = (doc.get("authorization_endpoint") or "", doc.get("token_endpoint") or "",
                     doc.get("userinfo_endpoint") or "")
    else:
        endpoints = (row.authorization_url or "", row.token_url or "", row.userinfo_url or "")
    return CustomOAuth(
        settings, http, scopes, identifier=row.identifier, provider_type=row.provider_type,
        default_scopes=tuple(row.scopes), authorization_endpoint=endpoints[0], token_endpoint=endpoints[1],
        userinfo_endpoint=endpoints[2], authorization_params=row.authorization_params,
        attribute_mapping=row.attribute_mapping, custom_claims_allowlist=tuple(row.custom_claims_allowlist),
        acceptable_client_ids=tuple(row.acceptable_client_ids), pkce=row.pkce_enabled,
        issuer=row.issuer or "", discovery_url=row.discovery_url or "", cache=cache, fetch=fetch)
