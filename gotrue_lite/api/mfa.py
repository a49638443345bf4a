"""/factors: enrol, challenge, verify and unenrol MFA factors (upstream mfa.go's handlers)."""

from __future__ import annotations

import uuid

from aiohttp import web

from ..auth import mfa
from ..errors import APIError
from .middleware import authenticate, client, ctx_of
from .params import json_body


async def _mfa_user(request: web.Request):
    """requireAuthentication, then requireNotAnonymous."""
    user, session, claims = await authenticate(request)
    if claims.get("is_anonymous") is True:
        raise APIError(403, "no_authorization", "Anonymous user not allowed to perform these actions")
    return user, session, claims


async def post_factors(request: web.Request) -> web.Response:
    user, session, claims = await _mfa_user(request)
    if session is None:
        raise APIError(500, "unexpected_failure", "A valid session and a registered user are required to enroll a factor")
    body = await json_body(request)
    params = mfa.Enrolment(factor_type=body.text("factor_type"), friendly_name=body.text("friendly_name"),
                           issuer=body.text("issuer"), phone=body.text("phone"))
    result = await mfa.enroll(ctx_of(request), client(request, claims), user, session, params)
    return web.json_response(result)


async def post_challenge(request: web.Request) -> web.Response:
    user, _session, claims = await _mfa_user(request)
    ctx = ctx_of(request)
    factor = await mfa.load_factor(ctx, user, request.match_info["factor_id"])
    channel = ""
    if factor.factor_type in ("phone", "webauthn") and mfa.verify_enabled(ctx, factor.factor_type):
        # Upstream's phone and WebAuthn challenges read a body (an empty one is bad JSON there);
        # WebAuthn's `webauthn: {rpId, rpOrigins}` from auth-js is not used (GOTRUE_WEBAUTHN_RP_*).
        channel = (await json_body(request)).text("channel")
    return web.json_response(await mfa.challenge(ctx, client(request, claims), user, factor, channel))


def _challenge_id(value) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) else None
    except ValueError:
        return None


async def post_verify(request: web.Request) -> web.Response:
    user, _session, claims = await _mfa_user(request)
    ctx = ctx_of(request)
    factor = await mfa.load_factor(ctx, user, request.match_info["factor_id"])
    body = await json_body(request)
    code = body.text("code")
    raw_id = body.raw("challenge_id")
    challenge_id = _challenge_id(raw_id)
    if raw_id is not None and challenge_id is None:
        raise APIError(400, "bad_json", "Could not parse request body as JSON: challenge_id must be a UUID")
    webauthn_params = body.obj("webauthn")
    result = await mfa.verify(ctx, client(request, claims), user, claims, factor, challenge_id, code,
                              webauthn_params)
    return web.json_response(result)


async def delete_factor(request: web.Request) -> web.Response:
    user, session, claims = await _mfa_user(request)
    ctx = ctx_of(request)
    factor = await mfa.load_factor(ctx, user, request.match_info["factor_id"])
    return web.json_response(await mfa.unenroll(ctx, client(request, claims), user, session, factor))


ROUTES = [
    ("POST", "/factors", post_factors),
    ("POST", "/factors/{factor_id}/challenge", post_challenge),
    ("POST", "/factors/{factor_id}/verify", post_verify),
    ("DELETE", "/factors/{factor_id}", delete_factor),
]
