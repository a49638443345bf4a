"""POST /token: the password, refresh_token and pkce grants (id_token: id_token.py; web3: unavailable.py)."""

from __future__ import annotations

from aiohttp import web

from ..auth import sessions, signin, verify
from ..errors import APIError
from . import id_token, unavailable
from .middleware import client, ctx_of
from .params import json_or_form


async def post_token(request: web.Request) -> web.StreamResponse:
    # Upstream picks the handler before reading the body (web3 refuses without reading it).
    if request.query.get("grant_type") in unavailable.TOKEN_GRANTS:
        return await unavailable.TOKEN_GRANTS[request.query["grant_type"]](request)
    body = await json_or_form(request)
    # Supabase clients put grant_type in the query; form bodies (netlify) carry it inside.
    grant = request.query.get("grant_type") or body.text("grant_type")
    if grant in unavailable.TOKEN_GRANTS:
        return await unavailable.TOKEN_GRANTS[grant](request, body)
    if grant == "id_token":
        return await id_token.id_token_grant(request, body)
    ctx = ctx_of(request)
    who = client(request)
    if grant == "password":
        result = await signin.with_password(
            ctx, who,
            # netlify's gotrue-js posts the email as `username`
            email=body.text("email") or body.text("username"),
            phone=body.text("phone"),
            password=body.text("password"),
        )
    elif grant == "refresh_token":
        result = await sessions.refresh(ctx, body.text("refresh_token"), who)
    elif grant == "pkce":
        result = await verify.exchange_code(ctx, who, body.text("auth_code"), body.text("code_verifier"))
    else:
        raise APIError(400, "invalid_credentials", "unsupported_grant_type")
    return web.json_response(result)
