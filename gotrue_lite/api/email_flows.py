"""POST /otp, /magiclink, /recover, /resend and /invite: the calls that send mail or SMS."""

from __future__ import annotations

from aiohttp import web

from ..auth import invite, passwordless, recovery
from ..errors import APIError
from .middleware import authenticate_admin, client, ctx_of, redirect_target
from .params import Params, json_body


def _challenge(body: Params) -> tuple[str | None, str | None]:
    return body.opt_text("code_challenge"), body.opt_text("code_challenge_method")


async def post_otp(request: web.Request) -> web.Response:
    body = await json_body(request)
    email, phone, channel = body.text("email"), body.text("phone"), body.text("channel")
    passwordless.check_otp_params(email=email, phone=phone, channel=channel)
    if phone:
        return web.json_response(await passwordless.sms_otp(
            ctx_of(request), client(request), phone=phone, create=body.boolean("create_user", True),
            data=body.obj("data") or {}, channel=channel, challenge=_challenge(body)))
    if not email:
        # Upstream's shouldCreateUser looks nobody up without an address, so even
        # create_user:false ends here.
        raise APIError(400, "validation_failed", "One of email or phone must be set")
    await passwordless.email_otp(
        ctx_of(request), client(request), email=email, create=body.boolean("create_user", True),
        data=body.obj("data") or {}, challenge=_challenge(body), redirect_to=redirect_target(request),
    )
    return web.json_response({})


async def post_magiclink(request: web.Request) -> web.Response:
    body = await json_body(request)
    await passwordless.email_otp(
        ctx_of(request), client(request), email=body.text("email"), create=True, data=body.obj("data") or {},
        challenge=_challenge(body), redirect_to=redirect_target(request), status_for_empty=422,
    )
    return web.json_response({})


async def post_recover(request: web.Request) -> web.Response:
    body = await json_body(request)
    await recovery.recover(ctx_of(request), client(request), email=body.text("email"), challenge=_challenge(body),
                           redirect_to=redirect_target(request))
    return web.json_response({})


async def post_resend(request: web.Request) -> web.Response:
    body = await json_body(request)
    result = await recovery.resend(ctx_of(request), client(request), kind=body.text("type"), email=body.text("email"),
                                   phone=body.text("phone"), challenge=_challenge(body),
                                   redirect_to=redirect_target(request))
    return web.json_response(result)


async def post_invite(request: web.Request) -> web.Response:
    admin, claims = await authenticate_admin(request)
    body = await json_body(request)
    result = await invite.invite(ctx_of(request), client(request, claims), admin, email=body.text("email"),
                                 data=body.obj("data") or {}, redirect_to=redirect_target(request),
                                 admin_role=str(claims.get("role", "")))
    return web.json_response(result)
