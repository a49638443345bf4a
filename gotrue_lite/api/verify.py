"""POST /verify (email and SMS codes: answers with a session) and GET /verify (the link in the mail: redirects)."""

from __future__ import annotations

import html
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

from aiohttp import web

from ..auth import fields
from ..auth import phone as phone_otp
from ..auth import verify as verification
from ..errors import APIError, validation
from .middleware import client, ctx_of, redirect_target
from .params import json_body, json_or_form

EMAIL_TYPES = ("signup", "invite", "recovery", "magiclink", "email", "email_change")
PHONE_TYPES = ("sms", "phone_change")
OAUTH_ERRORS = {400: "invalid_request", 401: "unauthorized_client", 403: "access_denied", 500: "server_error",
                503: "temporarily_unavailable"}


async def post_verify(request: web.Request) -> web.Response:
    if request.content_type == "application/x-www-form-urlencoded":
        # The button of the confirmation page (GOTRUE_LITE_VERIFY_CONFIRMATION_PAGE).
        form = await json_or_form(request)
        return await _verify_link(request, form.text("type"), form.text("token"), form.text("redirect_to") or None)
    body = await json_body(request)
    vtype = body.text("type")
    token, token_hash = body.text("token"), body.text("token_hash")
    email, phone = body.text("email"), body.text("phone")
    # upstream VerifyParams.Validate, in its order, before anything is looked up
    if not vtype:
        raise validation("Verify requires a verification type")
    if bool(token) == bool(token_hash):
        raise validation("Verify requires either a token or a token hash")
    if token and not email and not phone and vtype in EMAIL_TYPES:
        # netlify's gotrue-js posts {token, type} alone: that token is the hash from the link.
        token, token_hash = "", token
    if token:
        if phone and not email:
            phone = fields.phone(phone)
        elif email and not phone:
            try:
                email = fields.email(email)
            except APIError:
                raise validation("Invalid email format", 422) from None
        else:
            raise validation("Only an email address or phone number should be provided on verify")
    elif email or phone or (body.text("redirect_to") and "token_hash" in body):
        raise validation("Only the token_hash and type should be provided")
    ctx, who = ctx_of(request), client(request)
    if token_hash:
        if vtype not in EMAIL_TYPES:
            raise validation("Invalid email verification type")
    elif vtype in PHONE_TYPES:
        if not phone:
            raise phone_otp.otp_invalid()  # upstream looks the user up by an empty phone
        return web.json_response(await phone_otp.verify(ctx, who, vtype=vtype, phone=phone, code=token))
    elif vtype not in EMAIL_TYPES or not email:
        raise phone_otp.otp_invalid()  # upstream: no user, or no token of that type
    outcome = await verification.verify(
        ctx, who, vtype=vtype, token_hash=token_hash or None, email=email or None,
        code=token or None, password=body.opt_text("password"),
    )
    if outcome.message is not None:
        return web.json_response({"msg": outcome.message, "code": "200"})
    return web.json_response(outcome.session)


def _fragment(values: dict[str, str]) -> str:
    return urlencode(sorted(values.items()), quote_via=quote_plus)


def _see_other(location: str) -> web.Response:
    # Set verbatim, as Go's http.Redirect does for an absolute URL (only non-ASCII bytes
    # %-escaped): web.HTTPSeeOther would normalise it through yarl (adding a "/" path, decoding
    # the target's own query escapes).
    escaped = "".join(c if c.isascii() else quote(c, safe="") for c in location)
    return web.Response(status=303, headers={"Location": escaped})


def _with_fragment(target: str, fragment: str) -> str:
    """`target` with its fragment replaced (upstream sets url.Fragment for errors and messages)."""
    return target.split("#", 1)[0] + "#" + fragment


def _with_query(target: str, values: dict[str, str]) -> str:
    """`values` set in the target's query, re-encoded as Go's url.Values.Encode does: sorted by
    key (stable, so a repeated key keeps the order of its values)."""
    parts = urlsplit(target)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in values]
    query += values.items()
    query.sort(key=lambda pair: pair[0])
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote_plus)))


async def get_verify(request: web.Request) -> web.StreamResponse:
    vtype = request.query.get("type", "")
    token = request.query.get("token", "")
    if ctx_of(request).settings.lite.verify_confirmation_page:
        _check_link(vtype, token)
        return _confirmation_page(request, vtype, token)
    return await _verify_link(request, vtype, token, None)


def _check_link(vtype: str, token: str) -> None:
    if not vtype:
        raise validation("Verify requires a verification type")
    if not token:
        raise validation("Verify requires a token or a token hash")


def _confirmation_page(request: web.Request, vtype: str, token: str) -> web.Response:
    """A page whose button spends the link: mail scanners that open every link only GET it."""
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(value, quote=True)}">'
        for name, value in (("token", token), ("type", vtype), ("redirect_to", request.query.get("redirect_to", "")))
    )
    body = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Continue</title></head>'
        '<body style="font-family: system-ui, sans-serif; margin: 3rem auto; max-width: 28rem; text-align: center">'
        "<h1>One more step</h1><p>Press the button to continue.</p>"
        f'<form method="post" action="{html.escape(request.path, quote=True)}">{hidden}'
        '<button type="submit" style="font-size: 1.1rem; padding: .7rem 1.4rem">Continue</button></form>'
        "</body></html>"
    )
    return web.Response(text=body, content_type="text/html", headers={
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",  # the page's URL carries the token
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    })


async def _verify_link(request: web.Request, vtype: str, token: str, requested: str | None) -> web.StreamResponse:
    """Spend an email link and redirect, as GET /verify does."""
    _check_link(vtype, token)
    target = redirect_target(request, requested)
    pkce_flow = token.startswith("pkce_")
    try:
        if vtype not in EMAIL_TYPES:
            raise validation("Invalid email verification type")  # upstream verifyTokenHash
        outcome = await verification.verify(ctx_of(request), client(request), vtype=vtype, token_hash=token,
                                            issue_code=True)
    except APIError as exc:
        error = {"error_code": exc.error_code, "error_description": exc.message}
        if exc.status in OAUTH_ERRORS:
            error["error"] = OAUTH_ERRORS[exc.status]
        location = _with_query(target, error) if pkce_flow else target
        return _see_other(_with_fragment(location, _fragment({**error, "sb": ""})))
    if outcome.message is not None:
        location = _with_query(target, {"message": outcome.message}) if pkce_flow else target
        return _see_other(_with_fragment(location, _fragment({"message": outcome.message, "sb": ""})))
    if outcome.code is not None:
        return _see_other(_with_query(target, {"code": outcome.code}))
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
    # Appended to the target as it is, fragment and all (upstream AsRedirectURL).
    return _see_other(target + "#" + fragment)
