"""A local stand-in for hCaptcha's and Turnstile's siteverify endpoints, speaking their wire format.

Both vendors take a form POST (secret, response, remoteip) and answer JSON: `success`, and on
refusal `error-codes` in the vendor's own words. Tokens are single-use like the real ones: a
token the test issued passes once, then counts as already seen. `mode` makes the vendor misbehave
(an HTML 502 from its edge, a body that is no JSON, a JSON 500, an answer that comes too late).
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

# The codes each vendor documents for the refusals this fake produces.
CODES = {
    "hcaptcha": {"secret": "invalid-input-secret", "no-secret": "missing-input-secret",
                 "no-response": "missing-input-response", "unknown": "invalid-input-response",
                 "seen": "already-seen-response", "remoteip": "invalid-remoteip", "bad": "bad-request"},
    "turnstile": {"secret": "invalid-input-secret", "no-secret": "missing-input-secret",
                  "no-response": "missing-input-response", "unknown": "invalid-input-response",
                  "seen": "timeout-or-duplicate", "remoteip": "bad-request", "bad": "bad-request"},
}


@dataclass
class Siteverify:
    vendor: str  # "hcaptcha" | "turnstile"
    secret: str
    mode: str = "normal"  # normal | html-502 | garbage | json-500 | slow
    slow_seconds: float = 3.0
    requests: list[dict] = field(default_factory=list)  # every POST: content_type, form
    _tokens: dict[str, bool] = field(default_factory=dict)  # token -> already used
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/siteverify"

    def issue(self) -> str:
        """A token as the widget in a user's browser would get one."""
        token = ("P1_" if self.vendor == "hcaptcha" else "0.") + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = False
        return token

    def _refusal(self, *reasons: str) -> dict:
        body = {"success": False, "error-codes": [CODES[self.vendor][r] for r in reasons]}
        if self.vendor == "turnstile":
            body["messages"] = []
        return body

    def answer(self, content_type: str, raw: bytes) -> dict:
        if content_type != "application/x-www-form-urlencoded":
            return self._refusal("bad")
        form = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
        with self._lock:
            self.requests.append({"content_type": content_type, "form": form})
        if not form.get("secret"):
            return self._refusal("no-secret")
        if form["secret"] != self.secret:
            return self._refusal("secret")
        token = form.get("response", "")
        if not token:
            return self._refusal("no-response")
        if form.get("remoteip"):
            try:
                ipaddress.ip_address(form["remoteip"])
            except ValueError:
                return self._refusal("remoteip")
        with self._lock:
            used = self._tokens.get(token)
            if used is None:
                return self._refusal("unknown")
            if used:
                return self._refusal("seen")
            self._tokens[token] = True
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        if self.vendor == "hcaptcha":
            return {"success": True, "challenge_ts": now, "hostname": "localhost", "credit": False}
        return {"success": True, "challenge_ts": now, "hostname": "localhost", "error-codes": [],
                "action": "", "cdata": "", "metadata": {"interactive": False}}

    def start(self) -> "Siteverify":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                mode = fake.mode  # as it was when the request came, not when a slow answer goes
                if mode == "slow":
                    # Too late to matter: the caller gave up; later tests' records stay clean.
                    time.sleep(fake.slow_seconds)
                    return self._send(200, "application/json", b'{"success": true}')
                if mode == "html-502":
                    fake.requests.append({"content_type": content_type, "form": {}})
                    return self._send(502, "text/html", b"<html><body>502 Bad Gateway</body></html>")
                if mode == "garbage":
                    fake.requests.append({"content_type": content_type, "form": {}})
                    return self._send(200, "application/json", b"success=true")
                if mode == "json-500":
                    fake.requests.append({"content_type": content_type, "form": {}})
                    body = {"success": False, "error-codes": ["internal-error"], "messages": []}
                    return self._send(500, "application/json", json.dumps(body).encode())
                body = fake.answer(content_type, raw)
                self._send(200, "application/json", json.dumps(body).encode())

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller stopped waiting (the slow mode)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
