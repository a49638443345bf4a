"""Captcha verification: asks hCaptcha's or Turnstile's siteverify endpoint whether a token is good."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from .config import Settings

# The vendors' documented endpoints; [lite] captcha_verify_url replaces them (tests, self-hosted
# verifiers that speak the same format).
SITEVERIFY_URLS = {
    "hcaptcha": "https://hcaptcha.com/siteverify",
    "turnstile": "https://challenges.cloudflare.com/turnstile/v0/siteverify",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the verifier said about one token."""

    success: bool
    error_codes: tuple[str, ...] = ()


class CaptchaUnavailable(Exception):
    """The verifier could not be asked, did not answer in time, or answered something unreadable."""


def siteverify_url(settings: "Settings") -> str:
    return settings.lite.captcha_verify_url or SITEVERIFY_URLS[settings.security.captcha_provider]


def _member(document: dict[str, Any], name: str) -> Any:
    # Go's encoding/json matches object keys case-insensitively, preferring an exact match.
    if name in document:
        return document[name]
    for key, value in document.items():
        if key.lower() == name:
            return value
    return None


def _verdict(body: bytes) -> Verdict:
    """Read a siteverify answer as upstream's decoder does: the first JSON value in the body, which
    must be an object (or null) whose `success` is a boolean and `error-codes` a list of strings."""
    try:
        text = body.decode("utf-8")
        document, _ = json.JSONDecoder().raw_decode(text.lstrip(" \t\r\n"))
    except (UnicodeDecodeError, ValueError):
        raise CaptchaUnavailable("failed to decode captcha response: not JSON") from None
    if document is None:
        return Verdict(False)
    if not isinstance(document, dict):
        raise CaptchaUnavailable("failed to decode captcha response: not a JSON object")
    success = _member(document, "success")
    codes = _member(document, "error-codes")
    hostname = _member(document, "hostname")
    if success is not None and not isinstance(success, bool):
        raise CaptchaUnavailable("failed to decode captcha response: success is not a boolean")
    if codes is not None and not (isinstance(codes, list) and all(isinstance(c, (str, type(None))) for c in codes)):
        raise CaptchaUnavailable("failed to decode captcha response: error-codes is not a list of strings")
    if hostname is not None and not isinstance(hostname, str):
        raise CaptchaUnavailable("failed to decode captcha response: hostname is not a string")
    return Verdict(bool(success), tuple(c or "" for c in codes or ()))


async def verify(http: aiohttp.ClientSession, settings: "Settings", token: str, remote_ip: str) -> Verdict:
    """POST the token to the provider's siteverify endpoint in its form format.

    Like upstream (internal/security/captcha.go) the HTTP status is not looked at: vendors answer
    refusals with a JSON body, and a body that is no such JSON is what makes the check fail.
    """
    security = settings.security
    form = {"secret": security.captcha_secret, "response": token, "remoteip": remote_ip}
    # Go's http.Client reads a negative timeout as none (0 became 10 s when the settings loaded).
    seconds = security.captcha_timeout.total_seconds()
    timeout = aiohttp.ClientTimeout(total=seconds if seconds > 0 else None)
    try:
        # The URL is the operator's, not a user's: redirects are followed, as Go's client does.
        async with http.post(siteverify_url(settings), data=form, timeout=timeout) as response:
            body = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise CaptchaUnavailable(f"failed to verify captcha response: {exc.__class__.__name__}") from None
    return _verdict(body)
