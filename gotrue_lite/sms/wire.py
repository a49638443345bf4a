"""The HTTP conversation every SMS vendor shares: a form POST through the app's client, and
reading the answer as JSON the way upstream's Go decoder does (its errors become SmsError)."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from . import SmsError


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON, or SmsError with a Go-decoder-like reason (upstream hands
        the decoder's error to the client as the provider's text)."""
        text = self.body.decode("utf-8", "replace").strip()
        if not text:
            raise SmsError("EOF")
        try:
            # Go's Decoder reads the first value and leaves whatever follows it.
            return json.JSONDecoder().raw_decode(text)[0]
        except json.JSONDecodeError as exc:
            if exc.pos >= len(text):
                raise SmsError("unexpected EOF") from None
            raise SmsError(f"invalid character {text[exc.pos:exc.pos + 1]!r} looking for beginning "
                           f"of value") from None

    def object(self) -> dict:
        """The body as a JSON object (Go decodes into a struct: an array or a string fails)."""
        value = self.json()
        if value is None:  # Go leaves the struct empty for `null`
            return {}
        if not isinstance(value, dict):
            raise SmsError(f"json: cannot unmarshal {_json_kind(value)} into Go value")
        return value


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    return "number"


def text_of(value: Any) -> str:
    """A field Go prints with %v: absent or null prints as the zero value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def basic_auth(user: str, password: str) -> dict[str, str]:
    """The Authorization header of HTTP Basic auth (as Go's Request.SetBasicAuth writes it)."""
    token = base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
    return {"Authorization": f"Basic {token}"}


class Poster:
    """Form POSTs to one vendor through the shared client. `origin` replaces the vendor's own
    scheme and host (GOTRUE_LITE_SMS_API_URL) while the vendor's path is kept."""

    def __init__(self, http: aiohttp.ClientSession, timeout: float, origin: str = "") -> None:
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0))
        self._origin = origin.rstrip("/")

    def url(self, vendor_origin: str, path: str) -> str:
        return (self._origin or vendor_origin) + path

    async def form(self, url: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> Answer:
        # Go's url.Values.Encode: keys sorted, spaces as '+'.
        body = urlencode(sorted(fields.items())).encode("ascii")
        request_headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        try:
            async with self._http.post(url, data=body, headers=request_headers,
                                       timeout=self._timeout, allow_redirects=False) as response:
                return Answer(response.status, await response.read())
        except asyncio.TimeoutError:
            raise SmsError(f'Post "{url}": context deadline exceeded (Client.Timeout exceeded '
                           f'after {self._timeout.total:g}s)') from None
        except aiohttp.ClientError as exc:
            raise SmsError(f'Post "{url}": {exc}') from None


class Vendor:
    """What every vendor module shares: its settings and poster, the URL it posts to, upstream's
    credential check (`required`: setting, message when empty) and its channel check. Vendors
    that send our own code leave `verify` as it is: the flows check that code themselves."""

    name = ""
    label = ""  # as upstream's channel error names the vendor
    verifies_otp = False
    origin = ""
    path = ""
    channels: tuple[str, ...] = ("sms",)
    required: tuple[tuple[str, str], ...] = ()

    def __init__(self, cfg, poster: Poster) -> None:
        self._cfg = cfg
        self._poster = poster
        self._url = poster.url(self.origin, self.path_for(cfg))

    def path_for(self, cfg) -> str:
        return self.path

    @classmethod
    def missing(cls, cfg) -> str | None:
        """Upstream's words for the first credential that is not set, else None."""
        return next((message for attr, message in cls.required if not getattr(cfg, attr)), None)

    def check_channel(self, channel: str) -> None:
        if channel not in self.channels:
            raise SmsError(f'channel type "{channel}" is not supported for {self.label}')

    async def verify(self, phone: str, code: str) -> bool:
        return False
