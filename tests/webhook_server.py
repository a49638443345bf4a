"""A Netlify-style webhook endpoint on 127.0.0.1, as a site's identity function would be: it checks
the X-Webhook-Signature JWT with PyJWT (not the server's python-jose) and the body's SHA-256, then
answers each event as the test tells it (roles to add, a refusal, a stall, garbage)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any, Callable

import jwt as pyjwt
from aiohttp import web

from loopback import listen

SECRET = "webhook-secret-0123456789abcdefghij"
NIL_UUID = "00000000-0000-0000-0000-000000000000"

# An answer: (status, body) with body a dict (sent as JSON), bytes (sent as is) or None (empty).
Answer = tuple[int, Any]


@dataclass
class Received:
    event: str  # the body's event
    header_event: str | None  # X-Netlify-Event
    user: dict[str, Any]
    instance_id: str
    claims: dict[str, Any] | None  # the verified signature's claims; None: unsigned
    content_type: str


def add_roles(*roles: str) -> Callable[[Received], Answer]:
    """What a site's identity-signup function does: roles into app_metadata, a mark in user_metadata."""
    def answer(received: Received) -> Answer:
        return 200, {"app_metadata": {"roles": list(roles)},
                     "user_metadata": {**received.user["user_metadata"], "vetted": True}}
    return answer


class WebhookServer:
    def __init__(self, secret: str | None = SECRET) -> None:
        self.secret = secret
        self.received: list[Received] = []
        self.refused: list[str] = []  # why a request was refused (a bad signature, say)
        self.answers: dict[str, Callable[[Received], Answer] | list[Answer]] = {}
        self.stall = 0.0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-webhook", daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def events(self) -> list[str]:
        return [r.event for r in self.received]

    def env(self, events: str = "validate,signup,login", **extra: str) -> dict[str, str]:
        env = {"GOTRUE_WEBHOOK_URL": self.url, "GOTRUE_WEBHOOK_EVENTS": events}
        if self.secret:
            env["GOTRUE_WEBHOOK_SECRET"] = self.secret
        return {**env, **extra}

    def start(self) -> "WebhookServer":
        self._thread.start()
        app = web.Application()
        app.router.add_post("/identity", self._handle)

        self._runner, port = listen(self._loop, app)
        self.url = f"http://127.0.0.1:{port}/identity"
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._answer(request)
        except Exception as exc:  # noqa: BLE001 - the test reports what broke, not a bare 500
            self.refused.append(f"the fake endpoint broke: {exc!r}")
            raise

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        claims = None
        if self.secret:
            token = request.headers.get("X-Webhook-Signature", "")
            try:
                claims = pyjwt.decode(token, self.secret, algorithms=["HS256"], issuer="gotrue",
                                      options={"require": ["iss", "sub", "iat"]})
            except pyjwt.PyJWTError as exc:
                self.refused.append(f"signature: {exc}")
                return web.json_response({"error": "bad signature"}, status=401)
            if claims.get("sha256") != hashlib.sha256(raw).hexdigest():
                self.refused.append("the body's SHA-256 is not the signed one")
                return web.json_response({"error": "body altered"}, status=401)
        body = json.loads(raw)
        received = Received(body["event"], request.headers.get("X-Netlify-Event"), body["user"],
                            body["instance_id"], claims, request.headers.get("Content-Type", ""))
        self.received.append(received)
        if self.stall:
            await asyncio.sleep(self.stall)
        answer = self.answers.get(received.event)
        if answer is None:
            status, payload = 204, None
        elif isinstance(answer, list):
            status, payload = answer.pop(0) if len(answer) > 1 else answer[0]
        else:
            status, payload = answer(received)
        if payload is None:
            return web.Response(status=status)
        if isinstance(payload, bytes):
            return web.Response(status=status, body=payload, content_type="application/json")
        return web.json_response(payload, status=status)
