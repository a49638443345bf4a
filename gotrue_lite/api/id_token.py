"""POST /token?grant_type=id_token: the request checks, OAuth-style errors, and the grant (auth/id_token.py)."""

from __future__ import annotations

from aiohttp import web

from ..auth import id_token
from .middleware import authenticate, client, ctx_of
from .params import Params, json_or_form
from .unavailable import oauth_error


async def id_token_grant(request: web.Request, body: Params | None = None) -> web.StreamResponse:
    if body is None:
        body = await json_or_form(request)
    # Go unmarshals the whole body into a struct: a string field of another type is bad_json.
    for key in ("id_token", "access_token", "nonce", "provider", "client_id", "issuer"):
        body.opt_text(key)
    link = body.boolean("link_identity", False)
    if not body.text("id_token"):
        return oauth_error(request, "invalid request", "id_token required")
    if not body.text("provider") and (not body.text("client_id") or not body.text("issuer")):
        return oauth_error(request, "invalid request", "provider or client_id and issuer required")
    target = None
    claims = None
    if link:
        if not request.headers.get("Authorization"):
            return oauth_error(request, "invalid request", "Linking requires a valid user access token in Authorization")
        target, _session, claims = await authenticate(request)
    try:
        result = await id_token.grant(
            ctx_of(request), client(request, claims),
            id_token=body.text("id_token"), access_token=body.text("access_token"), nonce=body.text("nonce"),
            provider=body.text("provider"), client_id=body.text("client_id"), issuer=body.text("issuer"),
            link_user=target)
    except id_token.OAuthError as exc:
        return oauth_error(request, exc.error, exc.description)
    return web.json_response(result)
