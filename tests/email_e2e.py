"""Helpers for the end-to-end mail tests: following links, reading redirects, PKCE pairs."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from datetime import timedelta
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx

from conftest import Server
from gotrue_lite import clock
from helpers import PASSWORD, TIMEOUT, bearer

HEX56 = re.compile(r"^[0-9a-f]{56}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# The implicit-flow fragment, keys in upstream's (sorted) order (API.md §5.6).
SESSION_FRAGMENT = re.compile(
    r"^access_token=[A-Za-z0-9._-]+&expires_at=\d+&expires_in=\d+&refresh_token=[a-z0-9]{12}"
    r"&sb=&token_type=bearer&type=(?P<type>[a-z_]+)$")
FREQUENCY = re.compile(r"^For security purposes, you can only request this after (\d+) seconds\.$")
LINK_INVALID = "Email link is invalid or has expired"
OTP_INVALID = "Token has expired or is invalid"


# One client for the whole run: a new httpx client per request builds a new TLS context each
# time (~0.1 s), which would dominate these tests.
HTTP = httpx.Client(timeout=TIMEOUT, follow_redirects=False)


def post(server: Server, path: str, body=None, **kwargs) -> httpx.Response:
    return HTTP.post(server.url + path, json=body, **kwargs)


def get(server: Server, path: str, **kwargs) -> httpx.Response:
    return HTTP.get(server.url + path, **kwargs)


def sign_in(server: Server, email: str, password: str = PASSWORD) -> httpx.Response:
    return post(server, "/token?grant_type=password", {"email": email, "password": password})


def get_user(server: Server, access_token: str) -> httpx.Response:
    return get(server, "/user", headers=bearer(access_token))


def put_user(server: Server, access_token: str, body, **kwargs) -> httpx.Response:
    headers = {**bearer(access_token), **kwargs.pop("headers", {})}
    return HTTP.put(server.url + "/user", json=body, headers=headers, **kwargs)


def follow(link: str, **kwargs) -> httpx.Response:
    """Open a mailed link like a browser would, without following the redirect it answers."""
    return HTTP.get(link, **kwargs)


def split_location(resp: httpx.Response) -> tuple[str, dict[str, str], str]:
    """(location without fragment, its query, its raw fragment) of a 303."""
    assert resp.status_code == 303, f"expected 303, got {resp.status_code}: {resp.text}"
    location = resp.headers["location"]
    base, _, fragment = location.partition("#")
    query = dict(parse_qsl(urlsplit(base).query, keep_blank_values=True))
    return base, query, fragment


def session_from_redirect(resp: httpx.Response, target: str, vtype: str) -> dict[str, str]:
    """The implicit-flow session in a 303's fragment; checks the target and the exact layout."""
    base, _, fragment = split_location(resp)
    assert base == target, resp.headers["location"]
    match = SESSION_FRAGMENT.match(fragment)
    assert match, fragment
    assert match["type"] == vtype, fragment
    values = {k: v[0] for k, v in parse_qs(fragment, keep_blank_values=True).items()}
    expires_at, expires_in = int(values["expires_at"]), int(values["expires_in"])
    assert expires_in > 0 and abs(expires_at - (clock.unix() + expires_in)) <= 5, values
    return values


def error_fragment(error_code: str, description: str, error: str | None = "access_denied") -> str:
    """The fragment of an error redirect (API.md §3.3), with upstream's encoding."""
    from urllib.parse import quote_plus

    parts = [f"error={error}"] if error else []
    parts += [f"error_code={error_code}", f"error_description={quote_plus(description)}", "sb="]
    return "&".join(parts)


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, s256 code_challenge), as auth-js makes them."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def token_hash(address: str, code: str) -> str:
    return hashlib.sha224((address + code).encode()).hexdigest()


def pass_cooldown(seconds: float = 61) -> None:
    """Move the server clock past GOTRUE_SMTP_MAX_FREQUENCY (default one minute)."""
    clock.offset += timedelta(seconds=seconds)


def signup_unconfirmed(server: Server, email: str, password: str = PASSWORD, query: str = "", **body) -> dict:
    resp = post(server, "/signup" + query, {"email": email, "password": password, **body})
    assert resp.status_code == 200, resp.text
    user = resp.json()
    assert "access_token" not in user and user["email"] == email and user.get("confirmation_sent_at"), user
    return user


def check_session(body: dict) -> dict:
    """helpers.assert_session, measured on the server's (possibly moved) clock."""
    from helpers import REFRESH_TOKEN

    assert isinstance(body.get("access_token"), str) and body["access_token"], body
    assert body.get("token_type") == "bearer", body
    assert type(body.get("expires_in")) is int and body["expires_in"] > 0, body
    assert type(body.get("expires_at")) is int, body
    assert abs(body["expires_at"] - (clock.unix() + body["expires_in"])) <= 5, body
    assert REFRESH_TOKEN.match(body.get("refresh_token") or ""), body
    assert isinstance(body.get("user"), dict) and body["user"].get("id"), body
    return body
