"""Custom OAuth2 / OIDC providers (`custom:<identifier>`): lookup, URL safety, and upstream's admin rules.

Sources: upstream api/custom_oauth_admin.go, models/custom_oauth_provider.go,
utilities/url_validator.go (ValidateOAuthURL), utilities/oidc_discovery.go.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from ..errors import validation
from ..providers.oidc import DiscoveryError, Fetch, fetch_json
from ..store import custom_providers as store
from . import Context


@dataclass(frozen=True)
class CustomProvider:
    id: str
    provider_type: str  # oauth2 | oidc
    identifier: str
    name: str
    client_id: str
    acceptable_client_ids: tuple[str, ...]
    scopes: tuple[str, ...]
    pkce_enabled: bool
    attribute_mapping: dict[str, Any]
    authorization_params: dict[str, Any]
    enabled: bool
    email_optional: bool
    issuer: str | None
    discovery_url: str | None
    skip_nonce_check: bool
    cached_discovery: dict[str, Any] | None
    discovery_cached_at: datetime | None
    authorization_url: str | None
    token_url: str | None
    userinfo_url: str | None
    jwks_uri: str | None
    created_at: datetime
    updated_at: datetime
    custom_claims_allowlist: tuple[str, ...]
    client_secret: str = ""  # as stored (maybe an encrypted-string JSON); never shown

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "CustomProvider":
        values = dict(row)
        values["id"] = str(values["id"])
        for key in ("acceptable_client_ids", "scopes", "custom_claims_allowlist"):
            values[key] = tuple(values.get(key) or ())
        for key in ("attribute_mapping", "authorization_params"):
            values[key] = dict(values.get(key) or {})
        return cls(**values)


async def find(ctx: Context, identifier: str) -> CustomProvider | None:
    # identifiers are lower-case by constraint; upstream lower-cases the requested name
    row = await store.find(ctx.db, identifier.lower())
    return None if row is None else CustomProvider.from_row(row)


# --- URL safety (utilities/url_validator.go ValidateOAuthURL) --------------------------------------


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return not (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_unspecified)


async def check_url(ctx: Context, url: str) -> None:
    """https, not a loopback name or literal, and every address the host resolves to public —
    unless GOTRUE_LITE_ALLOW_INSECURE_PROVIDER_URLS lets tests and local IdPs through."""
    if ctx.settings.lite.allow_insecure_provider_urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise validation(f"invalid URL: {url}")
        return
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise validation("URL must use HTTPS")
    host = (parts.hostname or "").lower()
    if not host:
        raise validation("URL must have a host")
    if host == "localhost" or host.endswith(".localhost"):
        raise validation("URL must not point to localhost")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if not _public(host):
            raise validation("URL must not point to a private or loopback address")
        return
    try:
        answers = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError:
        raise validation(f"unable to resolve host {host}") from None
    if not answers or not all(_public(answer[4][0]) for answer in answers):
        raise validation("URL must not point to a private or loopback address")


def guarded_fetch(ctx: Context) -> Fetch:
    """A document fetch for custom providers: each URL passes check_url first."""
    async def fetch(url: str) -> dict[str, Any]:
        try:
            await check_url(ctx, url)
        except Exception as exc:  # an APIError here is a refused URL: a discovery failure
            raise DiscoveryError(f"{url}: refused: {getattr(exc, 'message', exc)}") from None
        if ctx.http is None:
            raise DiscoveryError("no HTTP client")
        return await fetch_json(ctx.http, url)
    return fetch
