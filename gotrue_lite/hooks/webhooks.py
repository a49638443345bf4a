"""Netlify GoTrue's event webhooks: a signed POST per event, whose answer may set the user's metadata."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from jose import jwt

from .. import metrics
from ..errors import APIError

log = logging.getLogger("gotrue_lite.webhooks")

VALIDATE, SIGNUP, LOGIN = "validate", "signup", "login"
SIGNATURE_HEADER = "X-Webhook-Signature"
# netlify is single-instance here: its instance id is the nil UUID, in the body and as `sub`.
INSTANCE_ID = "00000000-0000-0000-0000-000000000000"
ISSUER = "gotrue"
# Go reads the whole answer; a bound keeps a misbehaving endpoint from filling memory.
MAX_ANSWER = 1024 * 1024
_ACCEPTED = (200, 202, 204)
SERVER_KEYS = ("provider", "providers")


@dataclass(frozen=True)
class Changes:
    """What a webhook answered: each present metadata object replaces the user's (None: keep)."""

    app_metadata: dict[str, Any] | None = None
    user_metadata: dict[str, Any] | None = None

    def apply(self, app_metadata: dict[str, Any], user_metadata: dict[str, Any]) -> tuple[dict, dict]:
        """The user's metadata after this answer, as netlify replaces it; but the server's own
        app_metadata.provider and providers stay unless the answer names them (gotrue-lite
        derives them from the identities and would put them back at the next verification)."""
        app = app_metadata
        if self.app_metadata is not None:
            app = dict(self.app_metadata)
            for key in SERVER_KEYS:
                if key in app_metadata and key not in app:
                    app[key] = app_metadata[key]
        return app, user_metadata if self.user_metadata is None else dict(self.user_metadata)


def wanted(settings, event: str) -> bool:
    """Whether `event` goes out: a URL is configured and the event is listed (netlify's HasEvent)."""
    return bool(settings.webhook.url) and event in settings.webhook.events


def target(settings) -> str:
    """The URL to post to: a path is resolved against the site URL's scheme, user and host."""
    url = settings.webhook.url
    parts = urlsplit(url)
    if parts.scheme and parts.netloc:
        return url
    site = urlsplit(settings.site_url)
    return urlunsplit((site.scheme, site.netloc, "/" + parts.path.lstrip("/"), parts.query, parts.fragment))


def shown(url: str) -> str:
    """The URL as errors and logs name it: without credentials or query, which may hold secrets."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def payload(event: str, user_json: dict[str, Any]) -> bytes:
    return json.dumps({"event": event, "instance_id": INSTANCE_ID, "user": user_json},
                      separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, body: bytes) -> str:
    """The HS256 JWT netlify puts in X-Webhook-Signature: who signed, when, and the body's SHA-256."""
    claims = {"iss": ISSUER, "sub": INSTANCE_ID, "iat": int(time.time()),
              "sha256": hashlib.sha256(body).hexdigest()}
    return jwt.encode(claims, secret, algorithm="HS256")


async def trigger(http: aiohttp.ClientSession, settings, event: str, user_json: dict[str, Any]) -> Changes | None:
    """Send `event` for the user when configured; the answer's metadata, or None for nothing.

    Raises netlify's errors: 504 when every attempt timed out, 502 when no connection could be
    made, 500 when a connection failed midway or the answer is not JSON, 422 when no attempt was
    answered 200, 202 or 204 (a refusal)."""
    if not wanted(settings, event):
        return None
    try:
        changes = await _deliver(http, settings, event, user_json)
    except APIError:
        metrics.count("hook_calls", hook=f"webhook_{event}", outcome="error")
        raise
    metrics.count("hook_calls", hook=f"webhook_{event}", outcome="ok")
    return changes


async def _deliver(http: aiohttp.ClientSession, settings, event: str, user_json: dict[str, Any]) -> Changes | None:
    config = settings.webhook
    url = target(settings)
    body = payload(event, user_json)
    headers = {"Content-Type": "application/json", "X-Netlify-Event": f"identity_{event}"}
    timeout = aiohttp.ClientTimeout(total=config.timeout_sec)
    name = shown(url)
    for attempt in range(1, config.retries + 1):
        if config.secret:
            # Signed per attempt, as netlify does: iat is the time of this request.
            headers[SIGNATURE_HEADER] = signature(config.secret, body)
        started = time.monotonic()
        try:
            async with http.post(url, data=body, headers=headers, timeout=timeout) as response:
                status = response.status
                answer = await response.content.read(MAX_ANSWER + 1) if status in _ACCEPTED else b""
        except (asyncio.TimeoutError, TimeoutError):
            log.info("webhook %s to %s: attempt %d timed out", event, name, attempt)
            if attempt == config.retries:
                raise APIError(504, "unknown", "Failed to perform webhook in time frame "
                                               f"({config.timeout_sec:g} seconds)") from None
            continue
        except aiohttp.ClientConnectorError:
            raise APIError(502, "unknown", f"Failed to connect to {name}") from None
        except aiohttp.ClientError as exc:
            log.warning("webhook %s to %s failed: %s", event, name, type(exc).__name__)
            raise APIError(500, "unexpected_failure", f"Failed to trigger webhook to {name}") from None
        elapsed_ms = (time.monotonic() - started) * 1000
        if status in _ACCEPTED:
            log.info("webhook %s to %s: %d in %.0f ms", event, name, status, elapsed_ms)
            return _changes(answer)
        log.info("webhook %s to %s: attempt %d answered %d in %.0f ms", event, name, attempt, status, elapsed_ms)
    log.info("webhook %s to %s: failed after %d attempts", event, name, config.retries)
    raise APIError(422, "unknown", "Failed to handle signup webhook")


def _malformed(reason: str) -> APIError:
    return APIError(500, "unexpected_failure", f"Webhook returned malformed JSON: {reason}")


def _changes(answer: bytes) -> Changes | None:
    if len(answer) > MAX_ANSWER:
        raise APIError(500, "unexpected_failure", "Webhook returned malformed BODY: too large")
    if not answer:
        return None
    try:
        text = answer.decode("utf-8")
        # Go's json.Decoder reads the first value and leaves whatever follows it.
        document, _end = json.JSONDecoder().raw_decode(text.lstrip(" \t\r\n"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _malformed(str(exc).split(":")[0]) from None
    if document is None:
        return None
    if not isinstance(document, dict):
        raise _malformed(f"cannot unmarshal {type(document).__name__} into the webhook response")
    found = {}
    for key in ("app_metadata", "user_metadata"):
        value = document.get(key)
        if value is not None and not isinstance(value, dict):
            raise _malformed(f"cannot unmarshal {type(value).__name__} into {key}")
        found[key] = value
    if found["app_metadata"] is None and found["user_metadata"] is None:
        return None
    return Changes(**found)
