"""Per-client-IP request limits (SESSIONS.md §5.1): one middleware, keyed by route.

Upstream attaches `limitHandler(<limiter>)` to individual routes (internal/api/api.go) and calls
`performRateLimiting` (internal/api/middleware.go) which keys tollbooth by Sb-Forwarded-For or the
GOTRUE_RATE_LIMIT_HEADER value. Here one middleware looks up (method, route pattern without the
/auth/v1 prefix) — so both mounts share the buckets — and the handlers stay untouched.

Three routes pick their limiter from the request, and this middleware does that itself rather
than having the handlers call in, keeping every limit in one table:

- POST /token: by grant type, after an unknown grant has been left for the handler's 400
  (upstream Token in token.go). The grant may sit in a form or JSON body, so the body is peeked.
- POST /signup: the anonymous-sign-in limiter when neither email nor phone is given and
  anonymous sign-ins are enabled (disabled → the handler's 422, nothing taken), else the sign-up
  limiter (upstream's closure on the /signup route). The body is peeked.
- PUT /user (and MFA challenge/verify): upstream authenticates first (requireAuthentication), so
  a bad token never spends a token; the middleware authenticates, the handler then does again.

Peeking is safe because aiohttp keeps the body after the first read(): the handler parses the
very same bytes, and a body the middleware cannot parse raises the error the handler would raise
first anyway. None of this runs unless the request has a client key, i.e. unless per-IP limits
are configured at all.
"""

from __future__ import annotations

import ipaddress
import logging

from aiohttp import web

from ..ratelimit import EndpointLimits
from .middleware import authenticate, ctx_of, error_response
from .params import json_body, json_or_form
from .routes import route_key

log = logging.getLogger("gotrue_lite.api")

RATE_LIMITS = web.AppKey("rate_limits", EndpointLimits)

# (method, route pattern with path parameters written {}) -> limiter, taken before the handler.
_FIXED = {
    ("GET", "/verify"): "verify",
    ("POST", "/verify"): "verify",
    ("POST", "/otp"): "otp",
    ("POST", "/magiclink"): "magiclink",
    ("POST", "/recover"): "recover",
    ("POST", "/resend"): "resend",
    ("POST", "/sso"): "sso",
}
# ... taken once the bearer token has been authenticated.
_AUTHENTICATED = {
    ("PUT", "/user"): "user",
    ("POST", "/factors/{}/challenge"): "factor_challenge",
    ("POST", "/factors/{}/verify"): "factor_verify",
}
# Upstream's known grants besides web3 (which has its own limiter); others get a 400, untaken.
_TOKEN_GRANTS = frozenset({"password", "refresh_token", "id_token", "pkce"})

def _ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_key(request: web.Request) -> str | None:
    """Whom the per-IP limits count this request against; None: not limited (SESSIONS.md §5.1)."""
    settings = ctx_of(request).settings
    if settings.security.sb_forwarded_for_enabled:
        forwarded = request.headers.get("Sb-Forwarded-For", "")
        if forwarded:
            ip = _ip(forwarded.split(",", 1)[0].strip())
            if ip:
                return ip
            log.warning("invalid Sb-Forwarded-For header value, falling back to the rate limit header")
    header = settings.rate_limit.header
    if not header:
        # Upstream applies no per-IP limit at all then; [lite] rate_limit_peer_fallback opts in
        # to the socket peer (right when clients connect directly, wrong behind a proxy).
        return (request.remote or None) if settings.lite.rate_limit_peer_fallback else None
    value = request.headers.get(header, "")
    if not value:
        log.warning("request has no %s header, rate limiting is not applied", header)
        return None
    key = value.split(",", 1)[0].strip()
    if not key:
        log.warning("first %s header value is empty, rate limiting is not applied", header)
        return None
    return key


async def _limiter(request: web.Request, route: tuple[str, str]) -> str | None:
    if route == ("POST", "/token"):
        grant = request.query.get("grant_type") or (await json_or_form(request)).text("grant_type")
        if grant == "web3":
            return "web3"
        return "token" if grant in _TOKEN_GRANTS else None
    if route == ("POST", "/signup"):
        body = await json_body(request)
        if body.text("email") or body.text("phone"):
            return "signups"
        return "anonymous_sign_ins" if ctx_of(request).settings.external.anonymous_users.enabled else None
    name = _AUTHENTICATED.get(route)
    if name is not None:
        await authenticate(request)  # raises the handler's own 401/403
        return name
    return _FIXED.get(route)


_DYNAMIC = frozenset({("POST", "/token"), ("POST", "/signup")})
_LIMITED = _DYNAMIC | _FIXED.keys() | _AUTHENTICATED.keys()


@web.middleware
async def rate_limit(request: web.Request, handler) -> web.StreamResponse:
    route = route_key(request)
    if route in _LIMITED:
        key = client_key(request)
        if key is not None:
            name = await _limiter(request, route)
            if name is not None and not request.app[RATE_LIMITS].take(name, key):
                return error_response(request, 429, "over_request_rate_limit", "Request rate limit reached")
    return await handler(request)
