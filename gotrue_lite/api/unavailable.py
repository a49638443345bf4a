"""Upstream endpoints gotrue-lite does not implement yet, answered as upstream answers them
when the feature is disabled or unconfigured — never a bare 404 or 500.

One rule throughout: a feature gotrue-lite lacks behaves as if it were switched off, whatever
the configuration says (the web3 grant, SAML SSO, passkeys, the OAuth 2.1 server, SCIM). The checks that come *before*
upstream's feature switch (authentication, path ids, body parsing, provider selection) are
kept in upstream's order, so a client sees the same status, error_code and message.

Sources: supabase/auth internal/api/api.go (routes and middleware order),
external.go, external_oauth.go, token.go, token_oidc.go, web3.go, identity.go, ssoadmin.go,
passkey_admin.go, custom_oauth_admin.go, jwks.go, middleware.go, errors.go.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from ..auth import sso
from ..auth.admin import load_user
from ..errors import APIError, validation
from ..models import iso
from .middleware import API_VERSION, _wants_2024, authenticate, authenticate_admin, ctx_of
from .params import Params, json_body

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- small shared pieces -------------------------------------------------------------------


def oauth_error(request: web.Request, error: str, description: str) -> web.Response:
    """Upstream's OAuthError: always 400, {"error", "error_description"}; the version header is
    echoed like on every upstream error response."""
    body: dict[str, Any] = {"error": error}
    if description:
        body["error_description"] = description
    headers = {"X-Supabase-Api-Version": API_VERSION} if _wants_2024(request) else {}
    return web.json_response(body, status=400, headers=headers)


def _canonical_uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return None


def _strings(body: Params, *keys: str) -> None:
    """Go unmarshals the whole body into a struct: a string field of another type is bad_json."""
    for key in keys:
        body.opt_text(key)


def _disabled(status: int, code: str, message: str, *, guard=None, kind: str = "") -> Handler:
    """A handler that answers as upstream does with the feature off, after `guard` (the
    authentication upstream runs first) when there is one."""
    async def handler(request: web.Request) -> web.Response:
        if guard is not None:
            await guard(request)
        raise APIError(status, code, message)

    handler.__name__ = f"{kind}unavailable_{code}"
    return handler


def _after_admin(status: int, code: str, message: str) -> Handler:
    return _disabled(status, code, message, guard=authenticate_admin, kind="admin_")


def _after_user(status: int, code: str, message: str) -> Handler:
    return _disabled(status, code, message, guard=authenticate, kind="user_")


SAML_DISABLED = (404, "saml_provider_disabled", "SAML 2.0 is disabled")
PASSKEYS_DISABLED = (404, "passkey_disabled", "Passkeys are disabled")
OAUTH_SERVER_DISABLED = (404, "feature_disabled", "OAuth server is disabled")
SCIM_DISABLED = (404, "feature_disabled", "SCIM server is disabled")


# --- POST /token?grant_type=web3 ----------------------------------------------------------


async def web3_grant(request: web.Request, body: Params | None = None) -> web.StreamResponse:
    # Web3Grant checks its switch before it reads the body.
    raise APIError(422, "web3_provider_disabled", "Web3 provider is disabled")


# POST /token dispatches these grants here (api/token.py).
TOKEN_GRANTS: dict[str, Callable[..., Awaitable[web.StreamResponse]]] = {
    "web3": web3_grant,
}


# --- admin: SSO providers, passkeys ---------------------------------------------------------

_ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_NAME_ID_FORMATS = (
    "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
    "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
)


async def _sso_provider_json(request: web.Request, row: dict[str, Any], *, with_xml: bool) -> dict[str, Any]:
    saml, domains = await sso.details(ctx_of(request), row["id"])
    out: dict[str, Any] = {"id": str(row["id"])}
    if row.get("resource_id") is not None:
        out["resource_id"] = row["resource_id"]
    out["disabled"] = row.get("disabled")
    saml_json: dict[str, Any] = {"entity_id": (saml or {}).get("entity_id") or ""}
    if saml and with_xml and saml.get("metadata_xml"):
        saml_json["metadata_xml"] = saml["metadata_xml"]
    if saml and saml.get("metadata_url") is not None:
        saml_json["metadata_url"] = saml["metadata_url"]
    mapping = (saml or {}).get("attribute_mapping") or {}
    saml_json["attribute_mapping"] = {"keys": mapping["keys"]} if mapping.get("keys") else {}
    if saml and saml.get("name_id_format") is not None:
        saml_json["name_id_format"] = saml["name_id_format"]
    out["saml"] = saml_json
    out["domains"] = [{"domain": d} for d in domains]
    out["created_at"] = iso(row.get("created_at")) or "0001-01-01T00:00:00Z"
    out["updated_at"] = iso(row.get("updated_at")) or "0001-01-01T00:00:00Z"
    return out


async def get_sso_providers(request: web.Request) -> web.Response:
    await authenticate_admin(request)
    rows = await sso.providers(ctx_of(request), request.query.get("resource_id", ""),
                               request.query.get("resource_id_prefix", ""))
    return web.json_response({"items": [await _sso_provider_json(request, row, with_xml=False) for row in rows]})


def _check_sso_params(body: Params, *, for_update: bool) -> None:
    """CreateSSOProviderParams.validate."""
    _strings(body, "type", "metadata_url", "metadata_xml", "name_id_format", "resource_id")
    body.boolean("disabled")
    body.obj("attribute_mapping")
    domains = body.raw("domains")
    if domains is not None and not (isinstance(domains, list) and all(isinstance(d, str) for d in domains)):
        raise APIError(400, "bad_json", "Could not parse request body as JSON: domains must be a list of strings")
    kind, url, xml = body.text("type"), body.text("metadata_url"), body.text("metadata_xml")
    if not for_update and kind != "saml":
        raise validation("Only 'saml' supported for SSO provider type")
    if url and xml:
        raise validation("Only one of metadata_xml or metadata_url needs to be set")
    if not for_update and not url and not xml:
        raise validation("Either metadata_xml or metadata_url must be set")
    if url:
        # url.ParseRequestURI: an absolute URI or an absolute path
        if not (_ABSOLUTE_URI.match(url) or url.startswith("/")):
            raise validation("metadata_url is not a valid URL")
        if urlsplit(url).scheme.lower() != "https":
            raise validation("metadata_url is not a HTTPS URL")
    if body.text("name_id_format") not in ("", *_NAME_ID_FORMATS):
        raise validation("name_id_format must be unspecified or one of " + ", ".join(_NAME_ID_FORMATS))


async def post_sso_providers(request: web.Request) -> web.Response:
    await authenticate_admin(request)
    _check_sso_params(await json_body(request), for_update=False)
    # Reading SAML metadata and serving SAML sign-ins are not implemented: SAML is off.
    raise APIError(*SAML_DISABLED)


async def _load_sso_provider(request: web.Request) -> dict[str, Any]:
    param = request.match_info["idp_id"]
    if param.startswith("resource_"):
        row = await sso.provider(ctx_of(request), resource_id=param[len("resource_"):])
    else:
        row = await sso.provider(ctx_of(request), provider_id=_canonical_uuid(param))
    if row is None:
        raise APIError(404, "sso_provider_not_found", "SSO Identity Provider not found")
    return row


async def get_sso_provider(request: web.Request) -> web.Response:
    await authenticate_admin(request)
    row = await _load_sso_provider(request)
    return web.json_response(await _sso_provider_json(request, row, with_xml=True))


async def put_sso_provider(request: web.Request) -> web.Response:
    await authenticate_admin(request)
    await _load_sso_provider(request)
    _check_sso_params(await json_body(request), for_update=True)
    raise APIError(*SAML_DISABLED)


async def delete_sso_provider(request: web.Request) -> web.Response:
    await authenticate_admin(request)
    row = await _load_sso_provider(request)
    out = await _sso_provider_json(request, row, with_xml=True)
    await sso.delete(ctx_of(request), row["id"])
    return web.json_response(out)


async def get_admin_passkeys(request: web.Request) -> web.Response:
    await authenticate_admin(request)
    await load_user(ctx_of(request), request.match_info["user_id"])
    return web.json_response([])  # gotrue-lite stores no WebAuthn credentials


async def delete_admin_passkey(request: web.Request) -> web.Response:
    await authenticate_admin(request)
    await load_user(ctx_of(request), request.match_info["user_id"])
    raise validation("Passkey not found", 404)


# --- well-known -----------------------------------------------------------------------------

CLAIMS_SUPPORTED = ["sub", "aud", "iss", "exp", "iat", "auth_time", "nonce", "email", "email_verified",
                    "phone_number", "phone_number_verified", "name", "picture", "preferred_username", "updated_at"]


async def openid_configuration(request: web.Request) -> web.Response:
    """Served even with the OAuth server off (upstream WellKnownOpenID)."""
    issuer = ctx_of(request).settings.jwt.issuer
    base = issuer.rstrip("/")
    body = {
        "issuer": issuer,
        "authorization_endpoint": base + "/oauth/authorize",
        "token_endpoint": base + "/oauth/token",
        "jwks_uri": base + "/.well-known/jwks.json",
        "userinfo_endpoint": base + "/oauth/userinfo",
        "scopes_supported": ["openid", "profile", "email", "phone", "offline_access"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "HS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "claims_supported": CLAIMS_SUPPORTED,
        "code_challenge_methods_supported": ["S256", "plain"],
    }
    return web.json_response(body, headers={"Cache-Control": "public, max-age=600"})


# --- the table ------------------------------------------------------------------------------

# upstream mounts these groups behind one middleware each, which answers for every method and
# every path below the mount point
_BELOW = "{tail:(/.*)?}"

ROUTES = [
    ("GET", "/.well-known/openid-configuration", openid_configuration),
    ("GET", "/.well-known/oauth-authorization-server", _disabled(*OAUTH_SERVER_DISABLED)),
    # identity unlinking (behind requireAuthentication, then requireManualLinkingEnabled)
    ("GET", "/user/oauth/grants", _after_user(*OAUTH_SERVER_DISABLED)),
    ("DELETE", "/user/oauth/grants", _after_user(*OAUTH_SERVER_DISABLED)),
    # whole groups switched off
    ("*", "/passkeys" + _BELOW, _disabled(*PASSKEYS_DISABLED)),
    ("*", "/sso" + _BELOW, _disabled(*SAML_DISABLED)),
    ("*", "/oauth" + _BELOW, _disabled(*OAUTH_SERVER_DISABLED)),
    ("*", "/scim/v2" + _BELOW, _disabled(*SCIM_DISABLED)),
    # admin
    ("GET", "/admin/sso/providers", get_sso_providers),
    ("POST", "/admin/sso/providers", post_sso_providers),
    ("GET", "/admin/sso/providers/{idp_id}", get_sso_provider),
    ("PUT", "/admin/sso/providers/{idp_id}", put_sso_provider),
    ("DELETE", "/admin/sso/providers/{idp_id}", delete_sso_provider),
    ("GET", "/admin/users/{user_id}/passkeys", get_admin_passkeys),
    ("DELETE", "/admin/users/{user_id}/passkeys/{passkey_id}", delete_admin_passkey),
    ("*", "/admin/oauth" + _BELOW, _after_admin(*OAUTH_SERVER_DISABLED)),
]
