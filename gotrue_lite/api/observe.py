"""Each request's log line (upstream's structured request logger) and metrics; its trace span."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from .. import metrics
from ..logs import FIELDS
from .middleware import client_ip
from .routes import route_template

log = logging.getLogger("gotrue_lite.api")

# nginx's code for "the client closed the connection before the answer": the handler was cancelled.
CLIENT_CLOSED = 499


def _level(status: int) -> int:
    # upstream's LogLevelForHttp
    if status >= 500:
        return logging.ERROR
    if status >= 400:
        return logging.WARNING
    return logging.INFO


def _log(request: web.Request, status: int, seconds: float, response: web.StreamResponse | None) -> None:
    level = _level(status)
    if request.path == "/health" or not log.isEnabledFor(level):
        return  # upstream leaves health checks out of the log
    # The path only, never the query: query strings carry one-time tokens (/verify?token=…).
    fields: dict[str, Any] = {
        "method": request.method, "path": request.path, "remote_addr": client_ip(request),
        "status": status, "duration": int(seconds * 1e9),  # nanoseconds, as upstream
    }
    if request.path.endswith("/token"):
        fields["grant_type"] = request.query.get("grant_type", "")
    error_code = response.headers.get("x-sb-error-code") if response is not None else None
    if error_code:
        fields["error_code"] = error_code
    log.log(level, "request completed", extra={FIELDS: fields})


@web.middleware
async def observe(request: web.Request, handler) -> web.StreamResponse:
    started = time.perf_counter()
    response: web.StreamResponse | None = None
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # a redirect raised past the error envelope
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_CLOSED
        raise
    finally:
        seconds = time.perf_counter() - started
        _log(request, status, seconds, response)
        if metrics.enabled():
            _measure(request, status, seconds, response)


def _measure(request: web.Request, status: int, seconds: float, response: web.StreamResponse | None) -> None:
    metrics.request(route_template(request), request.method, status, seconds)
    if status == 429:
        # Every rate limit answers 429 with its own error code: counted here, in one place.
        limit = (response.headers.get("x-sb-error-code") if response is not None else None) or "unknown"
        metrics.count("rate_limited", limit=limit)
        if limit == "over_email_send_rate_limit":
            metrics.count("email_rate_limited")
