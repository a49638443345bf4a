"""MFA over HTTP (PHONE-MFA.md Part B): TOTP enrol/challenge/verify/unenrol, assurance levels,
limits and switches, and the attacks of issue 16, on both stores."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pyotp
import pytest

from gotrue_lite import clock
from helpers import (
    PASSWORD, assert_error, bearer, claims_of, get_user, new_email, post, put_user, refresh, rows, sign_in,
    signup_session, sql, utcnow,
)
import httpx

TIMEOUT = 60


def call(server, method: str, path: str, token: str, body=None, **kwargs) -> httpx.Response:
    return httpx.request(method, server.url + path, json=body, headers=bearer(token), timeout=TIMEOUT, **kwargs)


def enroll_totp(server, token: str, **body) -> dict:
    resp = call(server, "POST", "/factors", token, {"factor_type": "totp", **body})
    assert resp.status_code == 200, resp.text
    return resp.json()


def challenge(server, token: str, factor_id: str, **kwargs) -> httpx.Response:
    return call(server, "POST", f"/factors/{factor_id}/challenge", token, **kwargs)


def verify(server, token: str, factor_id: str, challenge_id: str, code: str, **kwargs) -> httpx.Response:
    return call(server, "POST", f"/factors/{factor_id}/verify", token,
                {"challenge_id": challenge_id, "code": code}, **kwargs)


def totp_now(secret: str) -> str:
    return pyotp.TOTP(secret).at(clock.now())


def step_up(server, session: dict) -> tuple[dict, dict]:
    """Enrol and verify a TOTP factor: (enrolment, aal2 session)."""
    factor = enroll_totp(server, session["access_token"], friendly_name="app")
    ch = challenge(server, session["access_token"], factor["id"]).json()
    resp = verify(server, session["access_token"], factor["id"], ch["id"], totp_now(factor["totp"]["secret"]))
    assert resp.status_code == 200, resp.text
    return factor, resp.json()


def test_totp_enrol_verify_and_levels(server):
    email = new_email()
    session = signup_session(server, email)
    token = session["access_token"]
    assert claims_of(token)["aal"] == "aal1"

    factor = enroll_totp(server, token, friendly_name="phone app", issuer="Example Co")
    secret = factor["totp"]["secret"]
    assert factor["type"] == "totp" and factor["friendly_name"] == "phone app"
    assert len(secret) == 32 and secret == secret.upper() and "=" not in secret
    assert factor["totp"]["uri"] == (f"otpauth://totp/Example%20Co:{email}?algorithm=SHA1&digits=6&issuer=Example%20Co"
                                     f"&period=30&secret={secret}")
    assert factor["totp"]["qr_code"].startswith("<?xml") and "<svg" in factor["totp"]["qr_code"]
    [row] = rows(server, "SELECT status, secret, factor_type FROM mfa_factors WHERE id = $1", factor["id"])
    assert row == {"status": "unverified", "secret": secret, "factor_type": "totp"}

    ch = challenge(server, token, factor["id"])
    assert ch.status_code == 200, ch.text
    body = ch.json()
    assert body["type"] == "totp" and abs(body["expires_at"] - (int(time.time()) + 300)) <= 2

    assert_error(verify(server, token, factor["id"], body["id"], "000000" if totp_now(secret) != "000000" else "111111"),
                 422, "mfa_verification_failed", "Invalid TOTP code entered")
    resp = verify(server, token, factor["id"], body["id"], totp_now(secret))
    assert resp.status_code == 200, resp.text
    stepped = resp.json()
    claims = claims_of(stepped["access_token"])
    assert claims["aal"] == "aal2"
    assert [e["method"] for e in claims["amr"]] == ["totp", "password"]
    assert claims["session_id"] == claims_of(token)["session_id"]
    assert stepped["refresh_token"] != session["refresh_token"]
    assert stepped["user"]["factors"][0]["status"] == "verified"
    [srow] = rows(server, "SELECT aal, factor_id FROM sessions WHERE id = $1", claims["session_id"])
    assert srow == {"aal": "aal2", "factor_id": factor["id"]}

    # The challenge is single use.
    assert_error(verify(server, token, factor["id"], body["id"], totp_now(secret)), 422, "mfa_ip_address_mismatch",
                 "Challenge and verify IP addresses mismatch.")
    # Refresh keeps aal2.
    again = refresh(server, stepped["refresh_token"]).json()
    assert claims_of(again["access_token"])["aal"] == "aal2"
    # A new sign-in starts at aal1 and is told the next level is aal2 (through the factor list).
    fresh = sign_in(server, email).json()
    assert claims_of(fresh["access_token"])["aal"] == "aal1"
    assert [f["status"] for f in fresh["user"]["factors"]] == ["verified"]
