"""Cross-cutting HTTP concerns: the error envelope, request ids, CORS and bearer authentication."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import uuid
from typing import Any

from aiohttp import web

from .. import logs
from ..auth import Client, Context, redirects
from ..auth.access import admin_of, load_subject, refuse_banned, subject_of
from ..errors import APIError, Conflict, DatabaseUnavailable
from ..models import Session, User
from ..tokens import TokenError

log = logging.getLogger("gotrue_lite.api")

CTX = web.AppKey("ctx", Context)
REQUEST_ID = web.RequestKey("request_id", str)
API_VERSION = "2024-01-01"
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BEARER = re.compile(r"^bearer (\S+)$", re.IGNORECASE)

CORS_HEADERS = ("Accept, Authorization, Content-Type, X-Client-IP, X-Client-Info, X-JWT-AUD, X-Use-Cookie, "
                "X-Supabase-Api-Version, apikey")
CORS_EXPOSE = "X-Total-Count, Link, X-Supabase-Api-Version"
_STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_entity_too_large"}


def ctx_of(request: web.Request) -> Context:
    return request.app[CTX]


def _wants_2024(request: web.Request) -> bool:
    value = request.headers.get("X-Supabase-Api-Version", "")
    return bool(_VERSION.match(value)) and value >= API_VERSION


def error_response(request: web.Request, status: int, error_code: str, message: str,
                   extra: dict[str, Any] | None = None) -> web.Response:
    if _wants_2024(request):
        body: dict[str, Any] = {"code": error_code, "message": message}
        headers = {"X-Supabase-Api-Version": API_VERSION}
    else:
        body = {"code": status, "error_code": error_code, "msg": message}
        headers = {}
        if status >= 500:
            body["error_id"] = request.get(REQUEST_ID, "")
    body.update(extra or {})
    headers["x-sb-error-code"] = error_code
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except APIError as exc:
        if exc.legacy is not None and not _wants_2024(request):
            status, body = exc.legacy
            return web.json_response(body, status=status, headers={"x-sb-error-code": exc.error_code})
        return error_response(request, exc.status, exc.error_code, exc.message, exc.extra)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(request, exc.status, _STATUS_CODES.get(exc.status, "unknown"), exc.reason)
    except Conflict:
        return error_response(request, 409, "conflict",
                              "Too many concurrent token refresh requests on the same session or refresh token")
    except DatabaseUnavailable as exc:
        log.error("database unavailable (request %s): %s", request.get(REQUEST_ID), exc)
        return error_response(request, 503, "unexpected_failure", "Database is unavailable, try again shortly")
    except Exception:
        log.exception("unhandled error (request %s)", request.get(REQUEST_ID))
        return error_response(request, 500, "unexpected_failure", "Unexpected failure, please check server logs")


def _cors(request: web.Request, response: web.StreamResponse) -> None:
    origin = request.headers.get("Origin")
    if not origin:
        return
    # All origins are allowed with credentials, so the origin is echoed rather than "*".
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE
    response.headers["Vary"] = "Origin"


@web.middleware
async def cors(request: web.Request, handler) -> web.StreamResponse:
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        extra = ctx_of(request).settings.cors.allowed_headers
        response = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE"
        response.headers["Access-Control-Allow-Headers"] = ", ".join((CORS_HEADERS, *extra))
        response.headers["Access-Control-Max-Age"] = "300"
        _cors(request, response)
        return response
    response = await handler(request)
    _cors(request, response)
    return response


@web.middleware
async def request_id(request: web.Request, handler) -> web.StreamResponse:
    header = ctx_of(request).settings.api.request_id_header
    rid = (request.headers.get(header) if header else None) or str(uuid.uuid4())
    request[REQUEST_ID] = rid
    token = logs.request_id.set(rid)  # every line logged while serving it names it
    try:
        response = await handler(request)
    finally:
        logs.request_id.reset(token)
    response.headers.setdefault("X-Request-Id", rid)
    if header:
        response.headers.setdefault(header, rid)  # echoed under the name the proxy sent it in
    return response


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: web.Request) -> str | None:
    settings = ctx_of(request).settings
    if settings.security.sb_forwarded_for_enabled:
        forwarded = request.headers.get("Sb-Forwarded-For", "").split(",")[0]
        if _valid_ip(forwarded):
            return _valid_ip(forwarded)
    for part in request.headers.get("X-Forwarded-For", "").split(","):
        ip = _valid_ip(part)
        if ip:
            return ip
    return _valid_ip(request.remote or "")


def request_aud(request: web.Request, claims: dict[str, Any] | None = None) -> str:
    """The audience asked for: X-JWT-AUD, else a non-admin token's aud, else GOTRUE_JWT_AUD."""
    settings = ctx_of(request).settings
    aud = request.headers.get("X-JWT-AUD", "")
    if not aud and claims and claims.get("role") not in settings.jwt.admin_roles:
        token_aud = claims.get("aud")
        if isinstance(token_aud, list) and token_aud and isinstance(token_aud[0], str):
            token_aud = token_aud[0]
        aud = token_aud if isinstance(token_aud, str) else ""
    return aud or settings.jwt.aud


def client(request: web.Request, claims: dict[str, Any] | None = None) -> Client:
    """Who is asking, and for which audience."""
    return Client(ip=client_ip(request), user_agent=request.headers.get("User-Agent") or None,
                  aud=request_aud(request, claims))


def bearer_claims(request: web.Request) -> dict[str, Any]:
    """The verified claims of the request's bearer token, or upstream's 401/403."""
    match = _BEARER.match(request.headers.get("Authorization", ""))
    if not match:
        raise APIError(401, "no_authorization", "This endpoint requires a valid Bearer token")
    try:
        claims = ctx_of(request).keys.verify(match.group(1))
    except TokenError as exc:
        raise APIError(403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {exc}") from None
    return claims


def audience_matches(claims: dict[str, Any], aud: str) -> bool:
    token_aud = claims.get("aud")
    if isinstance(token_aud, list):
        return aud in token_aud
    return token_aud == aud


async def authenticate(request: web.Request) -> tuple[User, Session | None, dict[str, Any]]:
    """The signed-in user behind the bearer token, with its session (SESSIONS.md §1.4)."""
    claims = bearer_claims(request)
    user, session = await load_subject(ctx_of(request), *subject_of(claims))
    refuse_banned(user)
    return user, session, claims


async def authenticated_user_json(request: web.Request) -> tuple[bytes, dict[str, Any]]:
    """authenticate() for reading only: the user's JSON document, from recent_users when this
    user and session were read moments ago."""
    claims = bearer_claims(request)
    ctx = ctx_of(request)
    user_id, session_id, bad_session_id = subject_of(claims)
    recent = ctx.recent_users
    if recent is not None and bad_session_id is None:
        found = recent.get(user_id, session_id)
        if found is not None:
            refuse_banned(found.user)
            return found.body, claims
    version = recent.version() if recent is not None else 0
    user, session = await load_subject(ctx, user_id, session_id, bad_session_id)
    body = json.dumps(user.to_json()).encode()
    if recent is not None:
        recent.keep(version, user, session, body)
    refuse_banned(user)
    return body, claims


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _printable(candidate: str | None) -> str | None:
    """A candidate with control characters is never a target: urlsplit drops CR, LF and TAB
    before it parses (so such a URL can look like SITE_URL), and the Location header or a mail
    carrying it would be split (header injection)."""
    return None if candidate is None or _CONTROL.search(candidate) else candidate


def redirect_target(request: web.Request, requested: str | None = None) -> str:
    """redirect_to (header, else query), else Referer, each only if allowed, else SITE_URL."""
    candidate = requested or request.headers.get("redirect_to") or request.query.get("redirect_to")
    return redirects.resolve(ctx_of(request).settings, _printable(candidate),
                             _printable(request.headers.get("Referer")))


async def authenticate_admin(request: web.Request) -> tuple[User | None, dict[str, Any]]:
    """An admin request: a valid token whose role is one of GOTRUE_JWT_ADMIN_ROLES (§4.5)."""
    claims = bearer_claims(request)
    ctx = ctx_of(request)
    admin = await admin_of(ctx, claims)
    if claims.get("role") not in ctx.settings.jwt.admin_roles:
        raise APIError(403, "not_admin", "User not allowed")
    return admin, claims
