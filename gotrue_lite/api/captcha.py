"""The captcha guard on the routes upstream protects (GOTRUE_SECURITY_CAPTCHA_ENABLED).

Upstream attaches `verifyCaptcha` to routes in internal/api/api.go; here the routes are one table,
GUARDED, read by a middleware, so a new family guards its route with one line. Each entry says
whether upstream checks the captcha before the per-IP limit (the limit sits inside the /signup
route group and inside the /token handler) or after it (`limitHandler(…).With(verifyCaptcha)`):
the middleware runs twice, once on each side of the rate-limit middleware (app.py).

Not in the table, deliberately: /sso and /passkeys/authentication/options are guarded upstream
only behind requireSAMLEnabled / requirePasskeyEnabled, which gotrue-lite answers as disabled
before any captcha; add them here when those features land. /factors/{id}/challenge is not
guarded upstream.
"""

from __future__ import annotations

import logging

from aiohttp import web

from .. import captcha
from ..errors import APIError
from .middleware import authenticate_admin, client_ip, ctx_of
from .params import Params, json_body, json_or_form
from .routes import route_key

log = logging.getLogger("gotrue_lite.api")

BEFORE_LIMITS, AFTER_LIMITS = "before the per-IP limit", "after the per-IP limit"

TOKEN_ROUTE = ("POST", "/token")
# (method, route pattern as routes.route_key writes it) -> when upstream checks the captcha.
GUARDED = {
    ("POST", "/signup"): BEFORE_LIMITS,  # anonymous sign-ins too
    TOKEN_ROUTE: BEFORE_LIMITS,  # except the grants in EXEMPT_GRANTS
    ("POST", "/recover"): AFTER_LIMITS,
    ("POST", "/resend"): AFTER_LIMITS,
    ("POST", "/magiclink"): AFTER_LIMITS,
    ("POST", "/otp"): AFTER_LIMITS,
}
# Grants that continue something a captcha already let in (isIgnoreCaptchaRoute).
EXEMPT_GRANTS = frozenset({"pkce", "refresh_token", "id_token"})
# A form body (POST /token only) carries the token under this key, the usual spelling of a nested
# field in a form; upstream reads JSON only.
FORM_TOKEN_KEY = "gotrue_meta_security[captcha_token]"

NO_TOKEN = "captcha protection: request disallowed (no captcha_token found)"
UNAVAILABLE = "captcha verification process failed"


async def _is_admin(request: web.Request) -> bool:
    try:
        await authenticate_admin(request)
    except APIError:
        return False
    return True


def _token(body: Params) -> str:
    if body.raw(FORM_TOKEN_KEY) is not None:
        return body.text(FORM_TOKEN_KEY).strip()
    security = body.obj("gotrue_meta_security") or {}
    return Params(security).text("captcha_token").strip()


async def _exempt_grant(request: web.Request) -> bool:
    # The grant as the /token handler picks it: the query, else the body (a form, or JSON).
    grant = request.query.get("grant_type") or (await json_or_form(request)).text("grant_type")
    return grant in EXEMPT_GRANTS


async def require_captcha(request: web.Request, route: tuple[str, str]) -> None:
    """Refuse the request unless its captcha token is good (upstream's verifyCaptcha)."""
    ctx = ctx_of(request)
    if await _is_admin(request):
        return
    if route == TOKEN_ROUTE and await _exempt_grant(request):
        return
    # The body is read as the route's handler reads it: only /token takes forms.
    body = await (json_or_form(request) if route == TOKEN_ROUTE else json_body(request))
    token = _token(body)
    if not token:
        raise APIError(400, "captcha_failed", NO_TOKEN)
    try:
        verdict = await captcha.verify(ctx.http, ctx.settings, token, client_ip(request) or "")
    except captcha.CaptchaUnavailable as exc:
        log.error("captcha verification failed: %s", exc)
        raise APIError(500, "unexpected_failure", UNAVAILABLE) from None
    if not verdict.success:
        raise APIError(400, "captcha_failed",
                       f"captcha protection: request disallowed ({', '.join(verdict.error_codes)})")


def _guard(when: str):
    @web.middleware
    async def guard(request: web.Request, handler) -> web.StreamResponse:
        if ctx_of(request).settings.security.captcha_enabled:
            route = route_key(request)
            if GUARDED.get(route) == when:
                await require_captcha(request, route)
        return await handler(request)

    return guard


captcha_before_limits = _guard(BEFORE_LIMITS)
captcha_after_limits = _guard(AFTER_LIMITS)
