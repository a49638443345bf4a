"""A local auth-hook endpoint: an aiohttp app on 127.0.0.1 that checks each call's Standard
Webhooks signature with the `standardwebhooks` package (an independent implementation) and
answers as a real hook would, or as a broken one does.

    hooks = hook_server()                      # fixture; stopped after the test
    hooks.answer("custom_access_token", lambda p: {"claims": {**p["claims"], "tenant": "t1"}})
    server = make_server(backend, **hooks.env("custom_access_token"))
    ... hooks.calls("custom_access_token")[-1].payload ...

An answer function takes the verified payload and returns a JSON-able object (sent as 200
application/json), or a Reply for anything else (a status, raw bytes, another content type, a
stall). A call whose signature does not verify is recorded with `verified=False` and answered 401.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from loopback import listen

SECRET = "v1,whsec_" + base64.b64encode(b"hook-secret-0123456789abcdefghij").decode()
OTHER_SECRET = "v1,whsec_" + base64.b64encode(b"another-secret-0123456789abcdefg").decode()


@dataclass
class Reply:
    """A raw answer: status, body, content type, and how long to wait before answering."""

    status: int = 200
    body: bytes | str = b""
    content_type: str | None = "application/json"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    name: str
    payload: Any
    headers: dict[str, str]
    verified: bool


class HookServer:
    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self._answers: dict[str, Callable[[Any], Any]] = {}
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # --- what the test sees -----------------------------------------------------------

    def answer(self, name: str, fn: Callable[[Any], Any]) -> None:
        self._answers[name] = fn

    def calls(self, name: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if name is None or c.name == name]

    def uri(self, name: str) -> str:
        return f"{self.url}/{name}"

    def env(self, *names: str, secrets: str | None = None) -> dict[str, str]:
        """The settings that enable hooks `names`, pointing at this server."""
        out: dict[str, str] = {}
        for name in names:
            key = f"GOTRUE_HOOK_{name.upper()}_"
            out[key + "ENABLED"] = "true"
            out[key + "URI"] = self.uri(name)
            out[key + "SECRETS"] = secrets or self.secret
        return out

    # --- the endpoint -------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        body = await request.read()
        headers = dict(request.headers)
        try:
            payload = Webhook(self.secret.removeprefix("v1,")).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            payload, verified = json.loads(body or b"null"), False
        with self._lock:
            self._calls.append(Call(name, payload, headers, verified))
        if not verified:
            return web.json_response({"error": "bad signature"}, status=401)
        fn = self._answers.get(name, lambda _payload: {})
        result = fn(payload)
        if not isinstance(result, Reply):
            return web.json_response(result)
        if result.delay:
            await asyncio.sleep(result.delay)
        body_bytes = result.body.encode() if isinstance(result.body, str) else result.body
        response = web.Response(status=result.status, body=body_bytes, headers=result.headers)
        if result.content_type is None:
            response.headers.popall("Content-Type", None)
            response.content_type = ""  # aiohttp adds application/octet-stream otherwise
        else:
            response.headers["Content-Type"] = result.content_type
        return response

    def start(self) -> "HookServer":
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hook-server", daemon=True)
        self._thread.start()

        app = web.Application()
        app.router.add_post("/{name}", self._handle)
        self._runner, port = listen(self._loop, app)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None


@contextlib.contextmanager
def running(secret: str = SECRET) -> Iterator[HookServer]:
    server = HookServer(secret).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hook_server():
    servers: list[HookServer] = []

    def factory(secret: str = SECRET) -> HookServer:
        server = HookServer(secret).start()
        servers.append(server)
        return server

    try:
        yield factory
    finally:
        for server in servers:
            server.stop()
