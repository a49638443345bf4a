"""GET /user and PUT /user: the signed-in user's own account."""

from __future__ import annotations

from aiohttp import web

from ..auth import account
from ..errors import validation
from .middleware import authenticate, client, ctx_of
from .params import json_body


async def get_user(request: web.Request) -> web.Response:
    user, _session, claims = await authenticate(request)
    if client(request, claims).aud != claims.get("aud"):
        raise validation("Token audience doesn't match request audience")
    return web.json_response(user.to_json())


async def put_user(request: web.Request) -> web.Response:
    user, session, claims = await authenticate(request)
    body = await json_body(request)
    params = {
        "email": body.opt_text("email"),
        "phone": body.opt_text("phone"),
        "password": body.opt_text("password"),
        "current_password": body.opt_text("current_password"),
        "nonce": body.opt_text("nonce"),
        "data": body.obj("data"),
        "app_metadata": body.obj("app_metadata"),
        "pkce": bool(body.opt_text("code_challenge")),
    }
    result = await account.update(ctx_of(request), client(request, claims), user, session, params)
    return web.json_response(result)
