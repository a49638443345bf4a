"""POST /verify (answers with a session) and GET /verify (the link in the mail: redirects)."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

from aiohttp import web

from ..auth import fields
from ..auth import verify as verification
from ..errors import APIError, validation
from .middleware import client, ctx_of, redirect_target
from .params import json_body

EMAIL_TYPES = ("signup", "invite", "recovery", "magiclink", "email", "email_change")
OAUTH_ERRORS = {400: "invalid_request", 401: "unauthorized_client", 403: "access_denied", 500: "server_error",
                503: "temporarily_unavailable"}


async def post_verify(request: web.Request) -> web.Response:
    body = await json_body(request)
    vtype = body.text("type")
    token, token_hash = body.text("token"), body.text("token_hash")
    email, phone = body.text("email"), body.text("phone")
    if not vtype:
        raise validation("Verify requires a verification type")
    if bool(token) == bool(token_hash):
        raise validation("Verify requires either a token or a token hash")
    if token and not email and not phone and vtype in EMAIL_TYPES:
        # netlify's gotrue-js posts {token, type} alone: that token is the hash from the link.
        token, token_hash = "", token
    if token:
        if bool(email) == bool(phone):
            raise validation("Only an email address or phone number should be provided on verify")
        if phone:
            raise APIError(403, "otp_expired", "Token has expired or is invalid")
        email = fields.email(email, 422)
    elif email or phone or (body.text("redirect_to") and "token_hash" in body):
        raise validation("Only the token_hash and type should be provided")
    outcome = await verification.verify(
        ctx_of(request), client(request), vtype=vtype, token_hash=token_hash or None, email=email or None,
        code=token or None, password=body.opt_text("password"),
    )
    if outcome.message is not None:
        return web.json_response({"msg": outcome.message, "code": "200"})
    return web.json_response(outcome.session)


def _fragment(values: dict[str, str]) -> str:
    return urlencode(sorted(values.items()), quote_via=quote_plus)


def _with_query(target: str, values: dict[str, str]) -> str:
    parts = urlsplit(target)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(values)
    return urlunsplit(parts._replace(query=urlencode(sorted(query.items()), quote_via=quote_plus)))


async def get_verify(request: web.Request) -> web.StreamResponse:
    vtype = request.query.get("type", "")
    token = request.query.get("token", "")
    if not vtype:
        raise validation("Verify requires a verification type")
    if not token:
        raise validation("Verify requires a token or a token hash")
    target = redirect_target(request)
    pkce_flow = token.startswith("pkce_")
    try:
        if vtype not in EMAIL_TYPES:
            raise validation("Unsupported verification type")
        outcome = await verification.verify(ctx_of(request), client(request), vtype=vtype, token_hash=token,
                                            issue_code=True)
    except APIError as exc:
        error = {"error_code": exc.error_code, "error_description": exc.message}
        if exc.status in OAUTH_ERRORS:
            error["error"] = OAUTH_ERRORS[exc.status]
        location = _with_query(target, error) if pkce_flow else target
        raise web.HTTPSeeOther(location + "#" + _fragment({**error, "sb": ""})) from None
    if outcome.message is not None:
        location = _with_query(target, {"message": outcome.message}) if pkce_flow else target
        raise web.HTTPSeeOther(location + "#" + _fragment({"message": outcome.message, "sb": ""}))
    if outcome.code is not None:
        raise web.HTTPSeeOther(_with_query(target, {"code": outcome.code}))
    session = outcome.session
    fragment = _fragment({
        "access_token": session["access_token"],
        "expires_at": str(session["expires_at"]),
        "expires_in": str(session["expires_in"]),
        "refresh_token": session["refresh_token"],
        "sb": "",
        "token_type": "bearer",
        "type": outcome.vtype,
    })
    raise web.HTTPSeeOther(target + "#" + fragment)
