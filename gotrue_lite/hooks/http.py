"""HTTP hooks: a POST signed per Standard Webhooks, with upstream's timeout, retries and answers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
import uuid

import aiohttp

from ..errors import APIError
from .answers import error_object

log = logging.getLogger("gotrue_lite.hooks")

# upstream hookshttp: 5 s for all attempts together, 3 attempts, 2 s between attempts that could
# not connect, 200 KB of answer at most.
TIMEOUT = 5.0
ATTEMPTS = 3
BACKOFF = 2.0
ANSWER_LIMIT = 200 * 1024


def sign(secrets: tuple[str, ...], msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header: one `v1,<base64 HMAC-SHA256>` per `v1,whsec_…` secret,
    over "<id>.<timestamp>.<body>" with the base64-decoded secret (Standard Webhooks).

    Separated by a space, as the Standard Webhooks spec and its libraries read them; upstream
    joins them with ", ", which leaves a comma on every signature but the last, so that a
    receiver using those libraries matches only the last secret (secret rotation breaks)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signatures = []
    for secret in secrets:
        if not secret.startswith("v1,"):
            continue  # v1a (asymmetric) secrets sign nothing; config refuses them on an enabled hook
        # Unpadded base64 is accepted, as the Standard Webhooks libraries do.
        key = base64.b64decode(secret.removeprefix("v1,").removeprefix("whsec_") + "==")
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(digest).decode())
    return " ".join(signatures)


def _timed_out() -> APIError:
    return APIError(422, "hook_timeout",
                    f"Failed to reach hook within maximum time of {TIMEOUT:f} seconds")


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


async def _read_limited(rsp: aiohttp.ClientResponse) -> bytes:
    body = bytearray()
    while True:
        chunk = await rsp.content.read(64 * 1024)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > ANSWER_LIMIT:
            raise APIError(422, "hook_payload_over_size_limit",
                           f"Payload size exceeded size limit of {ANSWER_LIMIT} bytes")


async def call(http: aiohttp.ClientSession, uri: str, secrets: tuple[str, ...], body: bytes) -> bytes | None:
    """The hook's answer (None for 204), or the APIError upstream answers the client with."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    for attempt in range(ATTEMPTS):
        msg_id, now = str(uuid.uuid4()), int(time.time())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(now),
            "webhook-signature": sign(secrets, msg_id, now, body),
            "Accept-Encoding": "identity",
        }
        left = deadline - loop.time()
        if left <= 0:
            raise _timed_out()
        try:
            async with http.post(uri, data=body, headers=headers, allow_redirects=False,
                                 timeout=aiohttp.ClientTimeout(total=left)) as rsp:
                status = rsp.status
                if status == 204:
                    return None
                if status in (200, 202):
                    content_type = rsp.headers.get("Content-Type", "")
                    if not content_type:
                        raise APIError(400, "hook_payload_invalid_content_type",
                                       "Invalid Content-Type: Missing Content-Type header")
                    if _media_type(content_type) != "application/json":
                        raise APIError(400, "hook_payload_invalid_content_type",
                                       f"Invalid JSON response. Received content-type: {content_type}")
                    answer = await _read_limited(rsp)
                    refused = error_object(answer)
                    if refused is not None:
                        raise refused
                    return answer
                if status in (429, 503):
                    if rsp.headers.get("retry-after"):
                        continue  # upstream retries at once when the hook names a retry time
                    raise APIError(500, "unexpected_failure", "Service currently unavailable due to hook")
                if status == 400:
                    raise APIError(500, "unexpected_failure", "Invalid payload sent to hook")
                if status == 401:
                    raise APIError(500, "unexpected_failure", "Hook requires authorization token")
                raise APIError(500, "unexpected_failure", f"Unexpected status code returned from hook: {status}")
        except asyncio.TimeoutError:
            raise _timed_out() from None
        except aiohttp.ClientError as exc:
            log.error("hook request failed on attempt %d: %s", attempt, type(exc).__name__)
            if attempt < ATTEMPTS - 1:
                left = deadline - loop.time()
                await asyncio.sleep(max(0.0, min(BACKOFF, left)))
                if left < BACKOFF:  # the 5 s ran out while waiting to try again
                    raise _timed_out() from None
                continue
            raise APIError(422, "hook_timeout_after_retry", "Failed to reach hook after maximum retries") from None
    raise APIError(500, "unexpected_failure", "Service currently unavailable due to hook")
