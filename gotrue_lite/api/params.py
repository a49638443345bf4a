"""Reading request bodies the way GoTrue does: JSON whatever the Content-Type, null = absent."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from ..errors import APIError, bad_json

MAX_BODY = 1024 * 1024
# Deeper JSON parses, but every later step that walks it (the database codecs, the JWT's
# user_metadata, the response) recurses once per level and would hit Python's recursion
# limit at a depth that depends on the call stack: a 500. Refuse it up front instead.
MAX_DEPTH = 512


class Params:
    """Typed access to a request body; a value of the wrong JSON type is a 400 bad_json."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __contains__(self, key: str) -> bool:
        return self._values.get(key) is not None

    def raw(self, key: str) -> Any:
        return self._values.get(key)

    def _typed(self, key: str, kind: type, name: str) -> Any:
        value = self._values.get(key)
        if value is None:
            return None
        if not isinstance(value, kind):
            raise bad_json(f"{key} must be {name}")
        return value

    def text(self, key: str) -> str:
        """A string field; absent and null read as ""."""
        return self._typed(key, str, "a string") or ""

    def opt_text(self, key: str) -> str | None:
        return self._typed(key, str, "a string")

    def boolean(self, key: str, default: bool | None = None) -> bool | None:
        value = self._typed(key, bool, "a boolean")
        return default if value is None else value

    def obj(self, key: str) -> dict[str, Any] | None:
        return self._typed(key, dict, "an object")


async def _read(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise APIError(413, "request_entity_too_large", "Request body too large")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise APIError(413, "request_entity_too_large", "Request body too large") from None
    except (RequestPayloadError, HttpProcessingError) as exc:
        # e.g. Content-Encoding: gzip over bytes that are no gzip stream: the client's fault.
        raise bad_json(f"cannot read the request body ({exc.__class__.__name__})") from None


async def json_body(request: web.Request, *, required: bool = True) -> Params:
    raw = await _read(request)
    if not raw.strip():
        if required:
            raise bad_json("request body is empty")
        return Params({})
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float)
        _check_strings(value)
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise bad_json(str(exc).split(":")[0] or "invalid JSON") from None
    if not isinstance(value, dict):
        raise bad_json("the body must be a JSON object")
    return Params(value)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


def _check_text(text: str) -> None:
    text.encode("utf-8")
    if "\x00" in text:
        # PostgreSQL text and jsonb cannot hold NUL; refuse it on every backend alike.
        raise ValueError("strings must not contain NUL characters")


def _check_strings(value: Any) -> None:
    """Lone surrogates (\\ud800) parse in Python but are not text: refuse them up front; and
    refuse nesting deeper than MAX_DEPTH."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise ValueError(f"nesting deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


async def json_or_form(request: web.Request) -> Params:
    """POST /token also takes form bodies (netlify's gotrue-js, OAuth clients)."""
    if request.content_type == "application/x-www-form-urlencoded":
        raw = await _read(request)
        try:
            pairs = parse_qsl(raw.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            raise bad_json("form body is not UTF-8") from None
        try:
            for key, value in pairs:
                _check_text(key)
                _check_text(value)
        except ValueError as exc:
            raise bad_json(str(exc)) from None
        return Params(dict(pairs))
    return await json_body(request)
