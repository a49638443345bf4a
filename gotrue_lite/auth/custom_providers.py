"""Custom OAuth2 / OIDC providers (`custom:<identifier>`): lookup, URL safety, and upstream's admin rules.

Sources: upstream api/custom_oauth_admin.go, models/custom_oauth_provider.go,
utilities/url_validator.go (ValidateOAuthURL), utilities/oidc_discovery.go.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from .. import clock
from ..errors import APIError, validation
from ..providers.oidc import DiscoveryError, Fetch, fetch_json
from ..store import StatementRefused, UniqueViolation
from ..store import custom_providers as store
from . import Context, dbcrypt
from .fields import go_quote


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

_LOCALHOST = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::"}


def _ip_problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    # ::ffff:127.0.0.1 is 127.0.0.1 to the kernel (and to Go's net.IP); Python's checks miss it
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "URL cannot resolve to loopback addresses"
    # Go's IsPrivate: RFC 1918 and fc00::/7 only
    if any(ip in ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
           if ip.version == ipaddress.ip_network(net).version):
        return "URL cannot resolve to private network addresses"
    if ip.is_link_local or (ip.version == 6 and ip in ipaddress.ip_network("ff02::/16")) or \
            (ip.version == 4 and ip in ipaddress.ip_network("224.0.0.0/24")):
        return "URL cannot resolve to link-local addresses"
    if ip.is_multicast:
        return "URL cannot resolve to multicast addresses"
    if ip.is_unspecified:
        return "URL cannot resolve to unspecified addresses"
    return None


async def check_url(ctx: Context, url: str) -> None:
    """https, no localhost, and every address the host resolves to public (upstream's SSRF rule).
    GOTRUE_LITE_ALLOW_INSECURE_PROVIDER_URLS (tests, IdPs on a local network) drops the host
    rules; https stays required, as upstream's custom_oauth_providers table checks it too."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise validation("URL must use HTTPS")
    if ctx.settings.lite.allow_insecure_provider_urls:
        if not parts.hostname:
            raise validation("URL must have a valid hostname")
        return
    host = (parts.hostname or "").lower()
    if not host:
        raise validation("URL must have a valid hostname")
    if host in _LOCALHOST or host.endswith(".localhost"):
        raise validation("URL cannot point to localhost or loopback addresses")
    try:
        answers = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        raise validation("Unable to resolve hostname") from None
    for answer in answers:
        problem = _ip_problem(ipaddress.ip_address(answer[4][0].split("%", 1)[0]))
        if problem:
            raise validation(problem)


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


# --- the admin API (api/custom_oauth_admin.go) -----------------------------------------------------

RESERVED_PARAMS = ("client_id", "client_secret", "redirect_uri", "response_type", "state", "code_challenge",
                   "code_challenge_method", "code_verifier", "nonce")
BLOCKED_TARGETS = ("id", "aud", "role", "app_metadata", "created_at", "updated_at", "confirmed_at",
                   "email_confirmed_at", "phone_confirmed_at", "email_verified", "phone_verified",
                   "banned_until", "is_super_admin")
_DISCOVERY_KEYS = ("issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                   "scopes_supported", "response_types_supported", "grant_types_supported",
                   "subject_types_supported")


def to_json(p: CustomProvider) -> dict[str, Any]:
    """models.CustomOAuthProvider as JSON: the secret and the cache time never shown."""
    from ..models import iso

    out: dict[str, Any] = {
        "id": p.id, "provider_type": p.provider_type, "identifier": p.identifier, "name": p.name,
        "client_id": p.client_id, "acceptable_client_ids": list(p.acceptable_client_ids), "scopes": list(p.scopes),
        "pkce_enabled": p.pkce_enabled, "attribute_mapping": p.attribute_mapping,
        "custom_claims_allowlist": list(p.custom_claims_allowlist), "authorization_params": p.authorization_params,
        "enabled": p.enabled, "email_optional": p.email_optional,
    }
    for key in ("issuer", "discovery_url"):
        if getattr(p, key) is not None:
            out[key] = getattr(p, key)
    out["skip_nonce_check"] = p.skip_nonce_check
    if p.cached_discovery is not None:
        out["discovery_document"] = p.cached_discovery
    for key in ("authorization_url", "token_url", "userinfo_url", "jwks_uri"):
        if getattr(p, key) is not None:
            out[key] = getattr(p, key)
    out["created_at"] = iso(p.created_at)
    out["updated_at"] = iso(p.updated_at)
    return out


def check_identifier(identifier: str) -> None:
    if not identifier:
        raise validation("identifier is required")
    if not identifier.startswith("custom:"):
        raise validation(f"identifier must start with 'custom:' prefix, e.g. 'custom:{identifier}'")


def _not_found() -> APIError:
    return APIError(404, "custom_provider_not_found", "Custom OAuth provider not found")


def _check_authorization_params(params: dict[str, Any] | None) -> None:
    for key, value in (params or {}).items():
        if key in RESERVED_PARAMS:
            raise validation(f"Cannot override reserved OAuth parameter: {key}")
        if not isinstance(value, str):
            raise validation(f"Authorization parameter {go_quote(key)} must be a string")


def _check_attribute_mapping(mapping: dict[str, Any] | None) -> None:
    for target in mapping or {}:
        if target in BLOCKED_TARGETS:
            raise validation(f"Cannot map to protected system field: {target}")


def _check_allowlist(allowlist: list[str] | None) -> None:
    if any(not key.strip() for key in allowlist or ()):
        raise validation("custom_claims_allowlist entries must be non-empty strings")


async def _checked_url(ctx: Context, url: str) -> None:
    try:
        urlsplit(url)
    except ValueError:
        raise validation("Invalid URL format") from None
    await check_url(ctx, url)


def discovery_url_of(issuer: str, discovery_url: str | None) -> str:
    return discovery_url or issuer.rstrip("/") + "/.well-known/openid-configuration"


async def _fetch_discovery(ctx: Context, url: str, issuer: str) -> dict[str, Any]:
    """fetchAndValidateDiscovery: the document (SSRF-guarded, ≤ 1 MiB), issuer equal, endpoints present."""
    try:
        doc = await guarded_fetch(ctx)(url)
    except DiscoveryError as exc:
        raise validation(f"OIDC discovery from {go_quote(url)} failed: {exc}") from None
    if doc.get("issuer") != issuer:
        raise validation(f"OIDC discovery from {go_quote(url)} failed: oidc: issuer mismatch, "
                         f"expected {go_quote(issuer)} got {go_quote(str(doc.get('issuer') or ''))}")
    missing = [k for k in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
               if not isinstance(doc.get(k), str) or not doc.get(k)]
    if missing:
        raise validation(f"OIDC discovery document is missing required fields: {', '.join(missing)}")
    out: dict[str, Any] = {}
    for key in _DISCOVERY_KEYS:
        value = doc.get(key)
        if key.endswith("_supported"):
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                out[key] = value
        elif key == "userinfo_endpoint":
            if isinstance(value, str) and value:
                out[key] = value
        else:
            out[key] = value
    return out


def _with_openid(scopes: list[str]) -> list[str]:
    return scopes if "openid" in scopes else ["openid", *scopes]


async def list_all(ctx: Context, kind: str) -> list[dict[str, Any]]:
    if kind and kind not in ("oauth2", "oidc"):
        raise validation("type must be either 'oauth2' or 'oidc'")
    return [to_json(CustomProvider.from_row(row)) for row in await store.all_of(ctx.db, kind)]


async def get(ctx: Context, identifier: str) -> dict[str, Any]:
    check_identifier(identifier)
    found = await find(ctx, identifier)
    if found is None:
        raise _not_found()
    return to_json(found)


async def create(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    """POST /admin/custom-providers; `p` holds the request's fields, already type-checked."""
    kind = p.get("provider_type") or ""
    if kind not in ("oauth2", "oidc"):
        raise validation("provider_type must be either 'oauth2' or 'oidc'")
    identifier = p.get("identifier") or ""
    if not identifier:
        raise validation("identifier is required")
    check_identifier(identifier)
    for key in ("name", "client_id", "client_secret"):
        if not p.get(key):
            raise validation(f"{key} is required")
    if kind == "oidc" and not p.get("issuer"):
        raise validation("issuer is required for OIDC providers")
    if kind == "oauth2":
        for key in ("authorization_url", "token_url", "userinfo_url"):
            if not p.get(key):
                raise validation(f"{key} is required for OAuth2 providers")
    _check_authorization_params(p.get("authorization_params"))
    _check_attribute_mapping(p.get("attribute_mapping"))
    _check_allowlist(p.get("custom_claims_allowlist"))
    limit = ctx.settings.external.custom_oauth_max_providers
    if limit > 0 and await store.count(ctx.db) >= limit:
        raise APIError(400, "over_custom_provider_quota", "Maximum number of custom OAuth/OIDC providers reached")
    urls = ([p["issuer"], p.get("discovery_url") or ""] if kind == "oidc"
            else [p["authorization_url"], p["token_url"], p["userinfo_url"], p.get("jwks_uri") or ""])
    for url in urls:
        if url:
            await _checked_url(ctx, url)
    if await store.find(ctx.db, identifier) is not None:
        raise APIError(400, "conflict", "A custom OAuth provider with this identifier already exists")

    now = clock.now()
    provider_id = str(uuid.uuid4())
    scopes = list(p.get("scopes") or [])
    values: dict[str, Any] = {
        "id": provider_id, "provider_type": kind, "identifier": identifier, "name": p["name"],
        "client_id": p["client_id"], "acceptable_client_ids": list(p.get("acceptable_client_ids") or []),
        "scopes": _with_openid(scopes) if kind == "oidc" else scopes,
        "pkce_enabled": _default(p.get("pkce_enabled"), True),
        "attribute_mapping": dict(p.get("attribute_mapping") or {}),
        "custom_claims_allowlist": list(p.get("custom_claims_allowlist") or []),
        "authorization_params": dict(p.get("authorization_params") or {}),
        "enabled": _default(p.get("enabled"), True), "email_optional": _default(p.get("email_optional"), False),
        "skip_nonce_check": False, "created_at": now, "updated_at": now,
    }
    if kind == "oidc":
        values.update(issuer=p["issuer"], discovery_url=p.get("discovery_url"),
                      skip_nonce_check=_default(p.get("skip_nonce_check"), False))
        values["cached_discovery"] = await _fetch_discovery(
            ctx, discovery_url_of(p["issuer"], p.get("discovery_url")), p["issuer"])
        values["discovery_cached_at"] = clock.now()
    else:
        values.update(authorization_url=p["authorization_url"], token_url=p["token_url"],
                      userinfo_url=p["userinfo_url"], jwks_uri=p.get("jwks_uri"))
    values["client_secret"] = _sealed(ctx, provider_id, p["client_secret"])
    try:
        async with ctx.db.transaction() as tx:
            await store.create(tx, values)
    except UniqueViolation:  # a racing create with the same identifier
        raise APIError(400, "conflict", "A custom OAuth provider with this identifier already exists") from None
    except StatementRefused as exc:  # the table's own checks (https, lengths, identifier format)
        raise APIError(500, "unexpected_failure", "Error creating custom OAuth provider") from exc
    return to_json(await find(ctx, identifier))


def _default(value: bool | None, default: bool) -> bool:
    return default if value is None else value


def _sealed(ctx: Context, row_id: str, secret: str) -> str:
    if ctx.settings.security.db_encryption_encrypt:
        return dbcrypt.seal(ctx.settings, row_id, secret)
    return secret


async def update(ctx: Context, identifier: str, p: dict[str, Any]) -> dict[str, Any]:
    """PUT /admin/custom-providers/{identifier}: only what is given changes ("" means unchanged)."""
    check_identifier(identifier)
    if p.get("authorization_params") is not None:
        _check_authorization_params(p["authorization_params"])
    if p.get("attribute_mapping") is not None:
        _check_attribute_mapping(p["attribute_mapping"])
    if p.get("custom_claims_allowlist") is not None:
        _check_allowlist(p["custom_claims_allowlist"])
    current = await find(ctx, identifier)
    if current is None:
        raise _not_found()
    changes: dict[str, Any] = {}
    for key in ("name", "client_id"):
        if p.get(key):
            changes[key] = p[key]
    if p.get("acceptable_client_ids") is not None:
        changes["acceptable_client_ids"] = list(p["acceptable_client_ids"])
    if p.get("scopes") is not None:
        scopes = list(p["scopes"])
        changes["scopes"] = _with_openid(scopes) if current.provider_type == "oidc" else scopes
    for key in ("pkce_enabled", "enabled", "email_optional"):
        if p.get(key) is not None:
            changes[key] = p[key]
    for key in ("attribute_mapping", "custom_claims_allowlist", "authorization_params"):
        if p.get(key) is not None:
            changes[key] = p[key]
    issuer = current.issuer
    if current.provider_type == "oidc":
        if p.get("issuer"):
            await _checked_url(ctx, p["issuer"])
            changes["issuer"] = issuer = p["issuer"]
        if p.get("discovery_url"):
            await _checked_url(ctx, p["discovery_url"])
            changes["discovery_url"] = p["discovery_url"]
        if p.get("skip_nonce_check") is not None:
            changes["skip_nonce_check"] = p["skip_nonce_check"]
        if p.get("issuer") or p.get("discovery_url") is not None:
            changes["cached_discovery"] = await _fetch_discovery(
                ctx, discovery_url_of(issuer or "", changes.get("discovery_url", current.discovery_url)), issuer or "")
            changes["discovery_cached_at"] = clock.now()
    else:
        for key in ("authorization_url", "token_url", "userinfo_url", "jwks_uri"):
            if p.get(key):
                await _checked_url(ctx, p[key])
                changes[key] = p[key]
    if p.get("client_secret"):
        changes["client_secret"] = _sealed(ctx, current.id, p["client_secret"])
    changes["updated_at"] = clock.now()
    try:
        async with ctx.db.transaction() as tx:
            await store.change(tx, current.id, changes)
    except StatementRefused as exc:
        raise APIError(500, "unexpected_failure", "Error updating custom OAuth provider") from exc
    if ctx.oidc is not None and current.provider_type == "oidc":
        if current.issuer and current.issuer != issuer:
            ctx.oidc.invalidate(current.issuer)
        if p.get("issuer") or p.get("discovery_url") is not None:
            ctx.oidc.invalidate(issuer or "")
    return to_json(await find(ctx, identifier))


async def delete(ctx: Context, identifier: str) -> None:
    check_identifier(identifier)
    async with ctx.db.transaction() as tx:
        row = await store.find(tx, identifier.lower())
        if row is None:
            raise _not_found()
        await store.delete(tx, str(row["id"]))
    if ctx.oidc is not None and row["provider_type"] == "oidc" and row.get("issuer"):
        ctx.oidc.invalidate(row["issuer"])


def build_provider(ctx: Context, found: CustomProvider, scopes: str = ""):
    """The runtime provider for a custom row (upstream external.go loadCustomProvider): its
    secret opened, its callback at GOTRUE_CUSTOM_OAUTH_EXTERNAL_URL (else API_EXTERNAL_URL) + /callback."""
    from ..config import ProviderSettings
    from ..providers.custom_oauth import build

    secret = found.client_secret
    if secret:
        secret, _ = dbcrypt.open_(ctx.settings, found.id, secret)
    base = ctx.settings.external.custom_oauth_external_url or ctx.settings.api.external_url
    settings = ProviderSettings(enabled=found.enabled, client_id=(found.client_id,), secret=secret,
                                redirect_uri=base.rstrip("/") + "/callback", url="", api_url="",
                                email_optional=found.email_optional, skip_nonce_check=found.skip_nonce_check)
    if ctx.http is None:
        raise APIError(500, "unexpected_failure", "Unexpected failure, please check server logs")
    return build(found, settings, ctx.http, scopes, cache=ctx.oidc, fetch=guarded_fetch(ctx))
