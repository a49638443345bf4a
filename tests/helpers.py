"""Small shared helpers for the HTTP behaviour tests: requests, assertions, JWTs, DB access."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from jose import jwk, jwt

from conftest import JWT_SECRET, Server, start_server

PASSWORD = "correct-horse-9"
V2 = {"X-Supabase-Api-Version": "2024-01-01"}
REFRESH_TOKEN = re.compile(r"^[a-z2-7]{12}$")
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
TIMEOUT = 60


# --- a default server shared by the tests of one module ------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared(request, tmp_path_factory, postgres_problem) -> Server:
    """One server per backend with the default test configuration, shared within a module.

    Tests using it must not depend on global state: they use fresh addresses (`new_email`).
    Tests needing other settings use `make_server` instead.
    """
    if request.param == "postgres" and postgres_problem:
        if os.environ.get("GOTRUE_LITE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"GOTRUE_LITE_REQUIRE_POSTGRES=1 but {postgres_problem}", pytrace=False)
        pytest.skip(postgres_problem)
    server = start_server(request.param, tmp_path_factory.mktemp(f"shared-{request.param}"), {})
    yield server
    server.stop()


# --- requests ----------------------------------------------------------------------------


def new_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post(server: Server, path: str, body: Any = None, **kwargs) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=TIMEOUT, **kwargs)


def signup(server: Server, email: str | None = None, password: str | None = PASSWORD, **body) -> httpx.Response:
    payload = dict(body)
    if email is not None:
        payload["email"] = email
    if password is not None:
        payload["password"] = password
    return post(server, "/signup", payload)


def signup_session(server: Server, email: str | None = None, password: str = PASSWORD, **body) -> dict:
    """Sign up a new (autoconfirmed) user and return the session; fails the test otherwise."""
    resp = signup(server, email or new_email(), password, **body)
    assert resp.status_code == 200, resp.text
    assert resp.json().get("access_token"), resp.text
    return resp.json()


def sign_in(server: Server, email: str, password: str = PASSWORD, **kwargs) -> httpx.Response:
    return post(server, "/token?grant_type=password", {"email": email, "password": password}, **kwargs)


def refresh(server: Server, token: Any, **kwargs) -> httpx.Response:
    return post(server, "/token?grant_type=refresh_token", {"refresh_token": token}, **kwargs)


def get_user(server: Server, access_token: str, **kwargs) -> httpx.Response:
    headers = {**bearer(access_token), **kwargs.pop("headers", {})}
    return httpx.get(server.url + "/user", headers=headers, timeout=TIMEOUT, **kwargs)


def put_user(server: Server, access_token: str, body: Any, **kwargs) -> httpx.Response:
    headers = {**bearer(access_token), **kwargs.pop("headers", {})}
    return httpx.put(server.url + "/user", json=body, headers=headers, timeout=TIMEOUT, **kwargs)


def logout(server: Server, access_token: str, scope: str | None = None, **kwargs) -> httpx.Response:
    query = "" if scope is None else f"?scope={scope}"
    headers = {**bearer(access_token), **kwargs.pop("headers", {})}
    return httpx.post(server.url + "/logout" + query, headers=headers, timeout=TIMEOUT, **kwargs)


def concurrently(server: Server, path: str, bodies: list[Any]) -> list[httpx.Response]:
    """POST every body at once (one connection each) and return the responses in order."""

    async def fire() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT, limits=limits) as client:
            return await asyncio.gather(*(client.post(path, json=body) for body in bodies))

    return asyncio.run(fire())


# --- assertions --------------------------------------------------------------------------


def assert_error(resp: httpx.Response, status: int, error_code: str, message: str | None = None) -> dict:
    """A legacy-envelope error (no version header sent): {code: int, error_code, msg}."""
    assert resp.status_code == status, f"expected {status} {error_code}, got {resp.status_code}: {resp.text}"
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert body.get("code") == status, body
    assert body.get("error_code") == error_code, body
    assert isinstance(body.get("msg"), str), body
    if message is not None:
        assert body["msg"] == message, body
    assert resp.headers.get("x-sb-error-code") == error_code, dict(resp.headers)
    return body


def assert_session(body: dict) -> None:
    """The token-response shape of API.md §2.3."""
    assert isinstance(body.get("access_token"), str) and body["access_token"], body
    assert body.get("token_type") == "bearer", body
    assert type(body.get("expires_in")) is int and body["expires_in"] > 0, body
    assert type(body.get("expires_at")) is int, body
    assert abs(body["expires_at"] - (time.time() + body["expires_in"])) <= 5, body
    assert REFRESH_TOKEN.match(body.get("refresh_token") or ""), body
    assert isinstance(body.get("user"), dict) and body["user"].get("id"), body


# --- JWTs --------------------------------------------------------------------------------


def claims_of(token: str, secret: str = JWT_SECRET) -> dict[str, Any]:
    return jwt.decode(token, secret, algorithms=["HS256"], options={"verify_aud": False})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge_hmac(header: dict, claims: dict, key: bytes) -> str:
    """A JWT with any header, HMAC-SHA256-signed with any bytes (for algorithm-confusion attempts)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def mint(claims: dict[str, Any], secret: str = JWT_SECRET, algorithm: str = "HS256", **kwargs) -> str:
    now = int(time.time())
    full = {"aud": "authenticated", "role": "authenticated", "iat": now, "exp": now + 3600, **claims}
    full = {k: v for k, v in full.items() if v is not None}
    return jwt.encode(full, secret, algorithm=algorithm, **kwargs)


def rsa_jwk(kid: str) -> dict:
    """A fresh private RSA JWK usable as the signing key in GOTRUE_JWT_KEYS."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    data = jwk.construct(pem, "RS256").to_dict()
    data = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in data.items()}
    return {**data, "kid": kid, "alg": "RS256", "use": "sig", "key_ops": ["sign", "verify"]}


# --- the database behind a server ----------------------------------------------------------


def db_of(server: Server):
    from gotrue_lite.api.middleware import CTX

    return server.app[CTX].db


def sql(server: Server, statement: str, *args: Any) -> int:
    return server.run(db_of(server).execute(statement, *args))


def rows(server: Server, query: str, *args: Any) -> list[dict[str, Any]]:
    return server.run(db_of(server).fetch_all(query, *args))


def process_env(**extra: str) -> dict[str, str]:
    """A minimal environment for a server or CLI subprocess: never the developer's GOTRUE_*
    (or DATABASE_URL, PORT, …)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def connection_refused(port: int) -> bool:
    """Nothing listens on the port. A connection reset means the listener is closing with this
    attempt in its backlog: not refused yet, so a caller polling this asks again."""
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionResetError:
        return False
    except ConnectionRefusedError:
        return True


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def ban(server: Server, user_id: str, for_: timedelta = timedelta(days=1)) -> None:
    assert sql(server, "UPDATE users SET banned_until = $1 WHERE id = $2", utcnow() + for_, user_id) == 1


def confirm_email(server: Server, email: str) -> None:
    assert sql(server, "UPDATE users SET email_confirmed_at = $1 WHERE email = $2", utcnow(), email) == 1


# One client for the route-by-route tests (test_unavailable.py, test_mfa_routes.py).
_ROUTE_HTTP = httpx.Client(timeout=60, follow_redirects=False)


def route_request(server: Server, method: str, path: str, *, token: str | None = None, prefix: str = "",
                  headers: dict | None = None, **kwargs) -> httpx.Response:
    hdrs = {**(bearer(token) if token else {}), **(headers or {})}
    return _ROUTE_HTTP.request(method, server.url + prefix + path, headers=hdrs, **kwargs)


def assert_both_envelopes(server: Server, method: str, path: str, status: int, code: str, message: str, **kwargs):
    """Legacy envelope at the root, 2024-01-01 envelope under /auth/v1 (where supabase-js calls)."""
    assert_error(route_request(server, method, path, **kwargs), status, code, message)
    headers = {**V2, **kwargs.pop("headers", {})}
    resp = route_request(server, method, path, prefix="/auth/v1", headers=headers, **kwargs)
    assert resp.status_code == status, resp.text
    assert resp.json() == {"code": code, "message": message}
    assert resp.headers.get("X-Supabase-Api-Version") == "2024-01-01"
    assert resp.headers.get("x-sb-error-code") == code
