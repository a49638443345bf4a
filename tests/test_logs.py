"""The server's log as an operator reads it: `gotrue-lite serve` writes JSON lines (upstream's
fields, request ids) when not on a terminal, text on one, to GOTRUE_LOG_FILE when set; and at
debug level through every sign-in flow, no password, token, code or secret appears in it."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from conftest import _fresh_database, _pg_admin
from test_cli import SECRET, base_env, free_port, launch, log_lines, workdir  # noqa: F401 - fixtures

PASSWORD = "a-Password-never-logged-7"
NEW_PASSWORD = "another-Password-never-logged-8"


def _mail(url: str, **who: str) -> dict:
    resp = httpx.get(f"{url}/_dev/mail", params=who, timeout=30)
    assert resp.status_code == 200, resp.text
    messages = resp.json()["messages"]
    assert messages, f"nothing in the dev mailbox for {who}"
    return messages[0]


def _session(resp: httpx.Response, secrets: list[str]) -> dict:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    secrets += [body["access_token"], body["refresh_token"]]
    return body


def _through_every_flow(url: str, secrets: list[str]) -> None:
    """Sign-up with a confirmation link, password sign-in, refresh, recovery, e-mail and SMS
    one-time codes, a password change, logout; every secret handed out is added to `secrets`."""
    http = httpx.Client(base_url=url, timeout=30)
    email = f"logs-{uuid.uuid4().hex[:10]}@example.com"
    assert http.post("/signup", json={"email": email, "password": PASSWORD}).status_code == 200
    confirmation = _mail(url, email=email)
    (link,) = [link for link in confirmation["links"] if "/verify?" in link]
    link_token = parse_qs(urlsplit(link).query)["token"][0]
    secrets.append(link_token)
    opened = httpx.get(link, timeout=30)
    assert opened.status_code in (302, 303), opened.text
    fragment = parse_qs(urlsplit(opened.headers["Location"]).fragment)
    secrets += [fragment["access_token"][0], fragment["refresh_token"][0]]

    signed_in = _session(http.post("/token?grant_type=password", json={"email": email, "password": PASSWORD}), secrets)
    _session(http.post("/token?grant_type=refresh_token", json={"refresh_token": signed_in["refresh_token"]}),
             secrets)
    wrong = http.post("/token?grant_type=password", json={"email": email, "password": NEW_PASSWORD})
    assert wrong.status_code == 400

    assert http.post("/recover", json={"email": email}).status_code == 200
    code = _mail(url, email=email)["code"]
    secrets.append(code)
    recovered = _session(http.post("/verify", json={"type": "recovery", "email": email, "token": code}), secrets)
    changed = http.put("/user", json={"password": NEW_PASSWORD},
                       headers={"Authorization": f"Bearer {recovered['access_token']}"})
    assert changed.status_code == 200, changed.text

    other = f"otp-{uuid.uuid4().hex[:10]}@example.com"
    assert http.post("/otp", json={"email": other}).status_code == 200
    code = _mail(url, email=other)["code"]
    secrets.append(code)
    by_code = _session(http.post("/verify", json={"type": "email", "email": other, "token": code}), secrets)

    phone = f"1555{uuid.uuid4().int % 10 ** 7:07d}"
    assert http.post("/otp", json={"phone": phone}).status_code == 200
    code = _mail(url, phone=phone)["code"]
    secrets.append(code)
    _session(http.post("/verify", json={"type": "sms", "phone": phone, "token": code}), secrets)

    assert http.post("/logout", headers={"Authorization": f"Bearer {by_code['access_token']}"}).status_code == 204
    # A bad bearer token and a bad refresh token are logged as refusals, not echoed.
    bogus = f"{uuid.uuid4().hex[:12]}"
    secrets.append(bogus)
    assert http.post("/token?grant_type=refresh_token", json={"refresh_token": bogus}).status_code == 400
    assert http.get("/user", headers={"Authorization": "Bearer not.a-real.token-secret"}).status_code in (401, 403)
    secrets.append("not.a-real.token-secret")


def _appears(secret: str, text: str) -> bool:
    if secret.isdigit():  # a code: only as a number of its own, not inside a duration
        return re.search(rf"(?<!\d){secret}(?!\d)", text) is not None
    return secret in text


@pytest.fixture
def database(backend: str, tmp_path: Path):
    url, drop = _fresh_database(backend, tmp_path)
    yield url
    if drop:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)'))


def test_no_secret_in_a_debug_log_of_every_flow(workdir: Path, launch, database: str) -> None:
    port = free_port()
    env = base_env(PORT=str(port), LOG_LEVEL="debug", GOTRUE_JWT_SECRET=SECRET, DATABASE_URL=database,
                   GOTRUE_MAILER_AUTOCONFIRM="false", GOTRUE_EXTERNAL_PHONE_ENABLED="true",
                   GOTRUE_SMTP_LOGGING_ENABLED="true", GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION="false")
    server = launch(workdir, env, port)
    secrets = [PASSWORD, NEW_PASSWORD, SECRET]
    _through_every_flow(server.url, secrets)
    assert server.stop() == 0
    log = server.stderr
    lines = log_lines(log)
    assert sum(line.get("msg") == "request completed" for line in lines) >= 15, log
    assert any(line["level"] == "debug" for line in lines), "the test must run at debug level"
    leaked = [secret for secret in secrets if _appears(secret, log)]
    assert leaked == [], f"secrets in the log: {leaked}"


def test_request_lines_are_json_with_upstreams_fields(workdir: Path, launch) -> None:
    port = free_port()
    log_file = workdir.parent / "auth.log"
    env = base_env(PORT=str(port), GOTRUE_JWT_SECRET=SECRET, GOTRUE_LOG_FILE=str(log_file),
                   REQUEST_ID_HEADER="X-Correlation-Id", GOTRUE_MAILER_AUTOCONFIRM="true")
    server = launch(workdir, env, port)
    email = f"json-{uuid.uuid4().hex[:10]}@example.com"
    resp = httpx.post(f"{server.url}/signup", json={"email": email, "password": PASSWORD},
                      headers={"X-Correlation-Id": "edge-1234", "X-Forwarded-For": "203.0.113.9"}, timeout=30)
    assert resp.status_code == 200 and resp.headers["X-Correlation-Id"] == "edge-1234"
    bad = httpx.post(f"{server.url}/auth/v1/token?grant_type=password", json={"email": email, "password": "nope"},
                     timeout=30)
    assert bad.status_code == 400
    assert server.stop() == 0

    assert server.stderr == "", "with GOTRUE_LOG_FILE, stderr stays empty"
    lines = log_lines(log_file.read_text())
    assert any("listening on" in line["msg"] for line in lines)
    requests = [line for line in lines if line["msg"] == "request completed"]
    signup = next(line for line in requests if line["path"] == "/signup")
    assert signup["request_id"] == "edge-1234" and signup["method"] == "POST" and signup["status"] == 200
    assert signup["remote_addr"] == "203.0.113.9" and signup["level"] == "info" and signup["component"] == "api"
    assert isinstance(signup["duration"], int) and signup["duration"] > 0  # nanoseconds
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", signup["time"]), signup
    refused = next(line for line in requests if line["path"] == "/auth/v1/token")
    assert refused["level"] == "warning" and refused["status"] == 400
    assert refused["error_code"] == "invalid_credentials" and refused["grant_type"] == "password"
    assert refused["request_id"] == bad.headers["X-Request-Id"]
    assert not any(line.get("path") == "/health" for line in requests)  # as upstream, health checks are not logged


def test_text_on_a_terminal(workdir: Path) -> None:
    port = free_port()
    primary, secondary = pty.openpty()
    env = base_env(PORT=str(port), GOTRUE_JWT_SECRET=SECRET)
    proc = subprocess.Popen([sys.executable, "-m", "gotrue_lite", "serve"], cwd=workdir, env=env,
                            stdout=subprocess.DEVNULL, stderr=secondary)
    os.close(secondary)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/settings", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        proc.terminate()
        proc.wait(20)
        output = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(primary)
    text = output.decode()
    assert "listening on" in text, text
    line = next(line for line in text.splitlines() if "request completed" in line)
    assert not line.lstrip().startswith("{"), line
    assert "method=GET" in line and "path=/settings" in line and "status=200" in line and "request_id=" in line
