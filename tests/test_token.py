"""POST /token: password and refresh_token grants, rotation and reuse, access-token claims (API.md §4, §5.4)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from jose import jwt

from gotrue_lite import clock
from helpers import (
    PASSWORD, assert_error, assert_session, ban, claims_of, concurrently, get_user, new_email, post,  # noqa: F401
    refresh, rsa_jwk, shared, sign_in, signup_session, sql,
)

INVALID_LOGIN = "Invalid login credentials"
NOT_VALID = "Refresh token is not valid"
ALREADY_USED = "Invalid Refresh Token: Already Used"


def form_token(server, **fields) -> httpx.Response:
    return httpx.post(server.url + "/token", data=fields, timeout=60)


def chain(server, length: int) -> tuple[dict, list[str]]:
    """A new user's session and its refresh tokens t0 → t1 → … (each refreshed once)."""
    session = signup_session(server)
    tokens = [session["refresh_token"]]
    for _ in range(length - 1):
        resp = refresh(server, tokens[-1])
        assert resp.status_code == 200, resp.text
        tokens.append(resp.json()["refresh_token"])
    assert len(set(tokens)) == length
    return session, tokens


# --- password grant --------------------------------------------------------------------------


def test_password_grant(shared):
    email = new_email()
    created = signup_session(shared, email)
    resp = sign_in(shared, email.upper())
    assert resp.status_code == 200, resp.text
    session = resp.json()
    assert_session(session)
    assert "weak_password" not in session
    assert session["user"]["id"] == created["user"]["id"]
    assert session["user"]["identities"][0]["provider"] == "email"
    assert session["refresh_token"] != created["refresh_token"]
    claims = claims_of(session["access_token"])
    assert claims["session_id"] != claims_of(created["access_token"])["session_id"]
    assert [entry["method"] for entry in claims["amr"]] == ["password"]


def test_password_grant_netlify_form(shared):
    email = new_email()
    user_id = signup_session(shared, email)["user"]["id"]
    resp = form_token(shared, grant_type="password", username=email, password=PASSWORD)
    assert resp.status_code == 200, resp.text
    session = resp.json()
    assert_session(session)
    assert session["user"]["id"] == user_id
    refreshed = form_token(shared, grant_type="refresh_token", refresh_token=session["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert_session(refreshed.json())
    assert_error(form_token(shared, grant_type="password", username=email, password="wrong-password"),
                 400, "invalid_credentials", INVALID_LOGIN)


def test_bad_credentials_are_indistinguishable(shared):
    email = new_email()
    signup_session(shared, email)
    answers = [
        sign_in(shared, email, "wrong-password"),
        sign_in(shared, new_email("unknown"), PASSWORD),
        sign_in(shared, new_email("unknown"), "wrong-password"),
        post(shared, "/token?grant_type=password", {"email": email}),
        sign_in(shared, email, "x" * 100),
    ]
    for resp in answers:
        assert_error(resp, 400, "invalid_credentials", INVALID_LOGIN)
    assert len({resp.content for resp in answers}) == 1


def test_password_grant_validation(shared):
    assert_error(post(shared, "/token?grant_type=password", {"password": PASSWORD}), 400, "validation_failed",
                 "missing email or phone")
    both = {"email": new_email(), "phone": "15550100", "password": PASSWORD}
    assert_error(post(shared, "/token?grant_type=password", both), 400, "validation_failed",
                 "Only an email address or phone number should be provided on login.")


def test_unconfirmed_email(shared):
    email = new_email()
    signup_session(shared, email)
    assert sql(shared, "UPDATE users SET email_confirmed_at = NULL WHERE email = $1", email) == 1
    assert_error(sign_in(shared, email), 400, "email_not_confirmed", "Email not confirmed")
    assert_error(sign_in(shared, email, "wrong-password"), 400, "invalid_credentials", INVALID_LOGIN)


def test_banned_user(shared):
    email = new_email()
    session = signup_session(shared, email)
    ban(shared, session["user"]["id"])
    assert_error(sign_in(shared, email), 400, "user_banned", "User is banned")
    assert_error(sign_in(shared, email, "wrong-password"), 400, "invalid_credentials", INVALID_LOGIN)
    assert_error(refresh(shared, session["refresh_token"]), 400, "user_banned", "Invalid Refresh Token: User Banned")
    assert_error(get_user(shared, session["access_token"]), 403, "user_banned")
    # a ban in the past is no ban
    ban(shared, session["user"]["id"], timedelta(days=-1))
    assert sign_in(shared, email).status_code == 200
    assert refresh(shared, session["refresh_token"]).status_code == 200


def test_weak_password_reported_after_the_policy_was_raised(make_server, backend):
    first = make_server(backend)
    email = new_email()
    signup_session(first, email, "abcdef12")
    assert "weak_password" not in sign_in(first, email, "abcdef12").json()
    stricter = make_server(backend, DATABASE_URL=first.db_url, GOTRUE_PASSWORD_MIN_LENGTH="20")
    resp = sign_in(stricter, email, "abcdef12")
    assert resp.status_code == 200, resp.text
    session = resp.json()
    assert_session(session)
    assert session["weak_password"] == {"message": "Password should be at least 20 characters.", "reasons": ["length"]}
    assert_error(sign_in(stricter, email, "abcdef13"), 400, "invalid_credentials", INVALID_LOGIN)
    assert "weak_password" not in refresh(stricter, session["refresh_token"]).json()


@pytest.mark.parametrize("query", ["?grant_type=client_credentials", "?grant_type=", "", "?grant_type=PASSWORD"])
def test_unknown_grant_type(shared, query):
    resp = post(shared, "/token" + query, {"email": new_email(), "password": PASSWORD})
    assert_error(resp, 400, "invalid_credentials", "unsupported_grant_type")


# --- refresh grant: input rules ----------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "abc", "abcdefghijk", "ABCDEFGHIJKL", "abcdefghijK2", "abcdefghij-_",
                                   "abcdefghijklm", "a" * 60, "abcdefghijk\u00e9"])
def test_refresh_token_format(shared, token):
    body = {} if token is None else {"refresh_token": token}
    assert_error(post(shared, "/token?grant_type=refresh_token", body), 400, "validation_failed", NOT_VALID)


def _signed_format_token() -> str:
    """A well-formed refresh token of the signed (v2) format for a session that does not exist."""
    raw = b"\x00" + uuid.uuid4().bytes + b"\x00" + os.urandom(16)
    raw += hashlib.sha256(raw).digest()[:4]
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize("token", ["aaaaaaaaaaaa", "abcdefgh2345", "000000000000", "signed"])
def test_unknown_refresh_token(shared, token):
    token = _signed_format_token() if token == "signed" else token
    assert_error(refresh(shared, token), 400, "refresh_token_not_found",
                 "Invalid Refresh Token: Refresh Token Not Found")


# --- refresh grant: rotation and reuse (SESSIONS.md §2.3) ---------------------------------------


def test_refresh_rotates_within_the_same_session(shared):
    session = signup_session(shared)
    resp = refresh(shared, session["refresh_token"])
    assert resp.status_code == 200, resp.text
    rotated = resp.json()
    assert_session(rotated)
    assert rotated["refresh_token"] != session["refresh_token"]
    before, after = claims_of(session["access_token"]), claims_of(rotated["access_token"])
    assert after["session_id"] == before["session_id"]
    assert after["sub"] == before["sub"] == rotated["user"]["id"]
    assert after["amr"] == before["amr"]
    assert rotated["user"]["identities"][0]["provider"] == "email"


def test_parent_presented_again_gets_the_same_child(shared):
    session, (t0, t1) = chain(shared, 2)
    for _ in range(2):
        resp = refresh(shared, t0)
        assert resp.status_code == 200, resp.text
        assert resp.json()["refresh_token"] == t1
        assert claims_of(resp.json()["access_token"])["session_id"] == claims_of(session["access_token"])["session_id"]
    # the child is still the active token and rotates normally
    resp = refresh(shared, t1)
    assert resp.status_code == 200
    assert resp.json()["refresh_token"] not in (t0, t1)


def test_reuse_of_an_older_token_revokes_the_session(shared):
    session, (t0, t1, t2) = chain(shared, 3)
    assert_error(refresh(shared, t0), 400, "refresh_token_already_used", ALREADY_USED)
    # the revocation was committed despite the error: even the active child is dead now
    assert_error(refresh(shared, t2), 400, "refresh_token_already_used", ALREADY_USED)
    assert_error(refresh(shared, t1), 400, "refresh_token_already_used", ALREADY_USED)
    # the session itself is kept: its access token still works until it expires
    assert get_user(shared, session["access_token"]).status_code == 200


def test_reuse_without_rotation_keeps_the_active_token(make_server, backend):
    server = make_server(backend, GOTRUE_SECURITY_REFRESH_TOKEN_ROTATION_ENABLED="false")
    _, (t0, _t1, t2) = chain(server, 3)
    assert_error(refresh(server, t0), 400, "refresh_token_already_used", ALREADY_USED)
    resp = refresh(server, t2)
    assert resp.status_code == 200, resp.text
    assert resp.json()["refresh_token"] not in (t0, t2)


def test_reuse_interval(make_server, backend):
    server = make_server(backend, GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL="10")
    session, (t0, t1, t2) = chain(server, 3)
    resp = refresh(server, t0)  # revoked, not the parent of the active token, but inside the window
    assert resp.status_code == 200, resp.text
    assert_session(resp.json())
    t3 = resp.json()["refresh_token"]
    assert t3 not in (t0, t1, t2)
    assert claims_of(resp.json()["access_token"])["session_id"] == claims_of(session["access_token"])["session_id"]
    resp = refresh(server, t2)  # the previously active token stays valid as well
    assert resp.status_code == 200, resp.text
    # outside the window the same reuse is an attack again
    clock.offset = timedelta(seconds=30)
    assert_error(refresh(server, t1), 400, "refresh_token_already_used", ALREADY_USED)


@pytest.mark.parametrize("count", [10, 50])
def test_concurrent_refreshes_of_one_token_share_one_child(shared, count):
    session = signup_session(shared)
    responses = concurrently(shared, "/token?grant_type=refresh_token",
                             [{"refresh_token": session["refresh_token"]}] * count)
    assert [r.status_code for r in responses] == [200] * count, [r.text for r in responses if r.status_code != 200]
    children = {r.json()["refresh_token"] for r in responses}
    assert len(children) == 1 and session["refresh_token"] not in children
    [child] = children
    assert refresh(shared, child).status_code == 200


# --- access tokens --------------------------------------------------------------------------


def test_access_token_claims(shared):
    email = new_email()
    session = signup_session(shared, email, data={"color": "blue"})
    token = session["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256" and header.get("typ") == "JWT"
    assert "kid" not in header
    claims = claims_of(token)
    user = session["user"]
    assert "iss" not in claims  # upstream: only with GOTRUE_JWT_ISSUER set
    assert claims["sub"] == user["id"]
    assert claims["aud"] == "authenticated"  # a string, never a list
    assert type(claims["iat"]) is int and type(claims["exp"]) is int
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 10
    assert claims["exp"] == session["expires_at"]
    assert claims["email"] == email
    assert claims["phone"] == ""
    assert claims["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert claims["user_metadata"] == {"color": "blue", "email_verified": True}
    assert claims["role"] == "authenticated"
    assert claims["aal"] == "aal1"
    [amr] = claims["amr"]
    assert amr["method"] == "password" and type(amr["timestamp"]) is int
    assert abs(amr["timestamp"] - time.time()) < 10
    assert claims["is_anonymous"] is False
    assert isinstance(claims["session_id"], str) and len(claims["session_id"]) == 36
    assert "nbf" not in claims and "jti" not in claims
    refreshed = claims_of(refresh(shared, session["refresh_token"]).json()["access_token"])
    assert refreshed["amr"] == claims["amr"]


def test_iss_only_when_the_issuer_is_set(make_server, backend):
    """upstream: tokens.Service puts config.JWT.Issuer into RegisteredClaims (json iss,omitempty),
    and WellKnownOpenID shows it as issuer; nothing derives it from API_EXTERNAL_URL."""
    server = make_server(backend, API_EXTERNAL_URL="https://auth.acme.test/auth/v1",
                         GOTRUE_JWT_ISSUER="https://auth.acme.test/auth/v1/")
    session = signup_session(server)
    assert claims_of(session["access_token"])["iss"] == "https://auth.acme.test/auth/v1/"
    assert claims_of(refresh(server, session["refresh_token"]).json()["access_token"])["iss"] == \
        "https://auth.acme.test/auth/v1/"
    discovery = httpx.get(server.url + "/.well-known/openid-configuration", timeout=60).json()
    assert discovery["issuer"] == "https://auth.acme.test/auth/v1/"
    assert discovery["jwks_uri"] == "https://auth.acme.test/auth/v1/.well-known/jwks.json"


def test_no_iss_and_an_empty_discovery_issuer_by_default(shared):
    session = signup_session(shared)
    assert "iss" not in claims_of(session["access_token"])
    assert "iss" not in claims_of(refresh(shared, session["refresh_token"]).json()["access_token"])
    discovery = httpx.get(shared.url + "/.well-known/openid-configuration", timeout=60).json()
    # upstream serves the empty issuer as it is, the endpoints relative to it
    assert (discovery["issuer"], discovery["token_endpoint"]) == ("", "/oauth/token")


def test_jwt_exp_setting(make_server, backend):
    server = make_server(backend, GOTRUE_JWT_EXP="600")
    session = signup_session(server)
    claims = claims_of(session["access_token"])
    assert claims["exp"] - claims["iat"] == 600
    assert 590 <= session["expires_in"] <= 600
    refreshed = refresh(server, session["refresh_token"]).json()
    assert 590 <= refreshed["expires_in"] <= 600


def test_rs256_signing_key(make_server, backend):
    key = rsa_jwk("rsa-test-1")
    server = make_server(backend, GOTRUE_JWT_KEYS=json.dumps([key]))
    session = signup_session(server)
    token = session["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == "rsa-test-1"
    jwks = httpx.get(server.url + "/.well-known/jwks.json", timeout=60).json()
    [public] = [k for k in jwks["keys"] if k["kid"] == "rsa-test-1"]
    assert "d" not in public and "p" not in public
    claims = jwt.decode(token, public, algorithms=["RS256"], options={"verify_aud": False})
    assert claims["sub"] == session["user"]["id"]
    assert claims["aud"] == "authenticated"
    assert get_user(server, token).status_code == 200
    rotated = refresh(server, session["refresh_token"]).json()
    assert jwt.get_unverified_header(rotated["access_token"])["kid"] == "rsa-test-1"


# --- session limits ---------------------------------------------------------------------------


def test_sessions_timebox(make_server, backend):
    server = make_server(backend, GOTRUE_SESSIONS_TIMEBOX="1s")
    session = signup_session(server)
    first = refresh(server, session["refresh_token"])
    assert first.status_code == 200, first.text
    clock.offset = timedelta(seconds=5)
    assert_error(refresh(server, first.json()["refresh_token"]), 400, "session_expired",
                 "Invalid Refresh Token: Session Expired")
