"""The /factors routes' plumbing (PHONE-MFA.md §7): authentication, anonymous users, path ids,
switched-off factor types and the aal rule of unenrol, in both error envelopes and under /auth/v1."""

from __future__ import annotations

import uuid

import pytest

from helpers import (  # noqa: F401 - shared is a fixture
    assert_both_envelopes, assert_error, claims_of, mint, new_email, route_request as request, shared,
    signup_session, sql, utcnow,
)

SOME_UUID = "1c6c7e6a-7b7e-4a8e-9f52-6a1b7d0e9b3a"
BAD_FACTOR_TYPE = "factor_type needs to be totp, phone, or webauthn"


@pytest.fixture(scope="module")
def user(shared):
    """A signed-in user of the shared server: its session response."""
    return signup_session(shared, new_email("mfa"))


@pytest.mark.parametrize("body, status, code, message", [
    # Phone and WebAuthn are off by default, as upstream (TOTP is on).
    ({"factor_type": "phone", "phone": "+15555550100"}, 422, "mfa_phone_enroll_not_enabled",
     "MFA enroll is disabled for Phone"),
    ({"factor_type": "webauthn"}, 422, "mfa_webauthn_enroll_not_enabled", "MFA enroll is disabled for WebAuthn"),
    ({"factor_type": "sms"}, 400, "validation_failed", BAD_FACTOR_TYPE),
    ({}, 400, "validation_failed", BAD_FACTOR_TYPE),
])
def test_enroll_factor(shared, user, body, status, code, message):
    assert_both_envelopes(shared, "POST", "/factors", status, code, message, token=user["access_token"], json=body)


def test_factor_routes_check_authentication_and_path_first(shared, user):
    token = user["access_token"]
    assert_both_envelopes(shared, "POST", "/factors", 401, "no_authorization",
                          "This endpoint requires a valid Bearer token", json={"factor_type": "totp"})
    assert_both_envelopes(shared, "POST", "/factors", 400, "bad_json",
                          "Could not parse request body as JSON: factor_type must be a string",
                          token=token, json={"factor_type": 1})
    for method, path in (("POST", f"/factors/{SOME_UUID}/challenge"), ("POST", f"/factors/{SOME_UUID}/verify"),
                         ("DELETE", f"/factors/{SOME_UUID}")):
        assert_both_envelopes(shared, method, path, 404, "mfa_factor_not_found", "Factor not found",
                              token=token, json={"code": "123456"})
        assert_both_envelopes(shared, method, path.replace(SOME_UUID, "not-a-uuid"), 404, "validation_failed",
                              "factor_id must be an UUID", token=token)


def test_anonymous_users_may_not_use_factors(shared, user):
    claims = claims_of(user["access_token"])
    anonymous = mint({"sub": claims["sub"], "session_id": claims["session_id"], "is_anonymous": True})
    message = "Anonymous user not allowed to perform these actions"
    assert_both_envelopes(shared, "POST", "/factors", 403, "no_authorization", message, token=anonymous,
                          json={"factor_type": "totp"})
    assert_both_envelopes(shared, "DELETE", f"/factors/{SOME_UUID}", 403, "no_authorization", message,
                          token=anonymous)


def test_enroll_needs_a_session(shared, user):
    without_session = mint({"sub": claims_of(user["access_token"])["sub"]})
    resp = request(shared, "POST", "/factors", token=without_session, json={"factor_type": "totp"})
    assert resp.status_code == 500
    assert resp.json()["msg"] == "A valid session and a registered user are required to enroll a factor"


def _insert_factor(server, user_id: str, factor_type: str, status: str) -> str:
    factor_id = str(uuid.uuid4())
    now = utcnow()
    sql(server, "INSERT INTO mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $6)", factor_id, user_id, f"f-{factor_id[:8]}", factor_type, status,
        now)
    return factor_id


@pytest.mark.parametrize("factor_type, challenge_code, verify_code, suffix", [
    ("phone", "mfa_phone_verify_not_enabled", "mfa_phone_verify_not_enabled", "Phone"),
    # upstream's VerifyFactor reports WebAuthn with the enroll code
    ("webauthn", "mfa_webauthn_verify_not_enabled", "mfa_webauthn_enroll_not_enabled", "WebAuthn"),
])
def test_factors_left_by_another_server(shared, user, factor_type, challenge_code, verify_code, suffix):
    """Factors of a type switched off (a Go server may have written them): challenge and verify
    say "disabled", unenroll works."""
    token, user_id = user["access_token"], user["user"]["id"]
    factor_id = _insert_factor(shared, user_id, factor_type, "unverified")
    message = f"MFA verification is disabled for {suffix}"
    assert_both_envelopes(shared, "POST", f"/factors/{factor_id}/challenge", 422, challenge_code, message,
                          token=token, json={})
    if factor_type != "webauthn":
        assert_both_envelopes(shared, "POST", f"/factors/{factor_id}/verify", 400, "validation_failed",
                              "Code needs to be non-empty", token=token, json={"challenge_id": SOME_UUID})
    assert_both_envelopes(shared, "POST", f"/factors/{factor_id}/verify", 422, verify_code, message,
                          token=token, json={"challenge_id": SOME_UUID, "code": "123456"})

    resp = request(shared, "DELETE", f"/factors/{factor_id}", token=token)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"id": factor_id}
    assert_error(request(shared, "DELETE", f"/factors/{factor_id}", token=token), 404, "mfa_factor_not_found",
                 "Factor not found")


def test_a_verified_factor_needs_aal2_to_unenroll(shared, user):
    factor_id = _insert_factor(shared, user["user"]["id"], "totp", "verified")
    try:
        assert_both_envelopes(shared, "DELETE", f"/factors/{factor_id}", 422, "insufficient_aal",
                              "AAL2 required to unenroll verified factor", token=user["access_token"])
    finally:
        sql(shared, "DELETE FROM mfa_factors WHERE id = $1", factor_id)
