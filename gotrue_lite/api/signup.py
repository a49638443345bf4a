"""POST /signup."""

from __future__ import annotations

from aiohttp import web

from ..auth import signup
from .middleware import client, ctx_of, redirect_target
from .params import json_body


async def post_signup(request: web.Request) -> web.Response:
    body = await json_body(request)
    result = await signup.sign_up(
        ctx_of(request),
        client(request),
        email=body.text("email"),
        phone=body.text("phone"),
        password=body.text("password"),
        data=body.obj("data") or {},
        channel=body.text("channel") or "sms",
        challenge=(body.opt_text("code_challenge"), body.opt_text("code_challenge_method")),
        redirect_to=redirect_target(request),
    )
    return web.json_response(result)
