"""The admin API for custom OAuth2 / OIDC providers: /admin/custom-providers (upstream custom_oauth_admin.go)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..auth import custom_providers
from ..errors import APIError, bad_json
from .middleware import authenticate_admin, ctx_of
from .params import Params, json_body

_STRINGS = ("provider_type", "identifier", "name", "client_id", "client_secret", "issuer", "discovery_url",
            "authorization_url", "token_url", "userinfo_url", "jwks_uri")
_LISTS = ("acceptable_client_ids", "scopes", "custom_claims_allowlist")
_BOOLS = ("pkce_enabled", "enabled", "email_optional", "skip_nonce_check")
_MAPS = ("attribute_mapping", "authorization_params")


async def _admin(request: web.Request) -> None:
    await authenticate_admin(request)
    if not ctx_of(request).settings.external.custom_oauth_enabled:
        raise APIError(404, "feature_disabled", "Custom OAuth providers are disabled")


def _fields(body: Params) -> dict[str, Any]:
    """The body as Go decodes it into AdminCustomOAuthProviderParams: a field of another type is bad_json."""
    out: dict[str, Any] = {key: body.opt_text(key) for key in _STRINGS}
    for key in _LISTS:
        value = body.raw(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise bad_json(f"{key} must be a list of strings")
        out[key] = value
    for key in _BOOLS:
        out[key] = body.boolean(key)
    for key in _MAPS:
        out[key] = body.obj(key)
    return out


async def list_providers(request: web.Request) -> web.Response:
    await _admin(request)
    found = await custom_providers.list_all(ctx_of(request), request.query.get("type", ""))
    return web.json_response({"providers": found})


async def create_provider(request: web.Request) -> web.Response:
    await _admin(request)
    fields = _fields(await json_body(request))
    return web.json_response(await custom_providers.create(ctx_of(request), fields), status=201)


async def get_provider(request: web.Request) -> web.Response:
    await _admin(request)
    return web.json_response(await custom_providers.get(ctx_of(request), request.match_info["identifier"]))


async def update_provider(request: web.Request) -> web.Response:
    await _admin(request)
    identifier = request.match_info["identifier"]
    custom_providers.check_identifier(identifier)
    fields = _fields(await json_body(request))
    return web.json_response(await custom_providers.update(ctx_of(request), identifier, fields))


async def delete_provider(request: web.Request) -> web.Response:
    await _admin(request)
    await custom_providers.delete(ctx_of(request), request.match_info["identifier"])
    return web.Response(status=204)


ROUTES = [
    ("GET", "/admin/custom-providers", list_providers),
    ("POST", "/admin/custom-providers", create_provider),
    ("GET", "/admin/custom-providers/{identifier}", get_provider),
    ("PUT", "/admin/custom-providers/{identifier}", update_provider),
    ("DELETE", "/admin/custom-providers/{identifier}", delete_provider),
]
