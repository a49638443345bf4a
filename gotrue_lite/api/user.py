"""GET /user and PUT /user: the signed-in user's own account."""

from __future__ import annotations

from aiohttp import web

from ..auth import account, identities, pkce, recovery
from ..errors import APIError, validation
from .middleware import (audience_matches, authenticate, authenticated_user_json, client, ctx_of, redirect_target,
                         request_aud)
from .params import json_body


async def get_user(request: web.Request) -> web.Response:
    body, claims = await authenticated_user_json(request)
    if not audience_matches(claims, request_aud(request, claims)):
        raise validation("Token audience doesn't match request audience")
    return web.Response(body=body, content_type="application/json", charset="utf-8")


async def put_user(request: web.Request) -> web.Response:
    user, session, claims = await authenticate(request)
    body = await json_body(request)
    params = {
        "email": body.opt_text("email"),
        "phone": body.opt_text("phone"),
        "channel": body.text("channel"),
        "password": body.opt_text("password"),
        "current_password": body.opt_text("current_password"),
        "nonce": body.opt_text("nonce"),
        "data": body.obj("data"),
        "app_metadata": body.obj("app_metadata"),
        # auth-js always sends the PKCE pair, null unless an email change starts a PKCE flow.
        "pkce": pkce.parse(body.opt_text("code_challenge"), body.opt_text("code_challenge_method"))
        if body.opt_text("email") else None,
        "redirect_to": redirect_target(request),
    }
    result = await account.update(ctx_of(request), client(request, claims), user, session, params)
    return web.json_response(result)


async def get_reauthenticate(request: web.Request) -> web.Response:
    user, _session, claims = await authenticate(request)
    return web.json_response(await recovery.reauthenticate(ctx_of(request), client(request, claims), user))


async def delete_identity(request: web.Request) -> web.Response:
    """DELETE /user/identities/{identity_id}: unlink one of the user's identities."""
    user, _session, claims = await authenticate(request)
    if not ctx_of(request).settings.security.manual_linking_enabled:
        raise APIError(404, "manual_linking_disabled", "Manual linking is disabled")
    identity_id = request.match_info["identity_id"]
    token_aud = claims.get("aud")
    first = token_aud[0] if isinstance(token_aud, list) and token_aud else token_aud
    # checked after the path id (upstream's order), inside identities.unlink's first step
    await identities.check_identity_id(identity_id)
    if not isinstance(first, str) or request_aud(request, claims) != first:
        raise APIError(403, "unexpected_audience", "Token audience doesn't match request audience")
    await identities.unlink(ctx_of(request), client(request, claims), user, identity_id)
    return web.json_response({})
