"""Phone factors (PHONE-MFA.md §8-§9): enrol a number, the challenge sends the code by SMS (dev
outbox, Twilio and Twilio Verify fakes speaking the vendors' wire format), verify steps up."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from gotrue_lite import clock
from helpers import assert_error, bearer, claims_of, rows, signup_session
from sms_vendors import sms_vendor  # noqa: F401 - a fixture

TIMEOUT = 60
PHONE_ON = {"GOTRUE_MFA_PHONE_ENROLL_ENABLED": "true", "GOTRUE_MFA_PHONE_VERIFY_ENABLED": "true"}


def call(server, method: str, path: str, token: str, body=None, headers=None) -> httpx.Response:
    return httpx.request(method, server.url + path, json=body, headers={**bearer(token), **(headers or {})},
                         timeout=TIMEOUT)


def outbox_code(server, phone: str) -> str:
    messages = httpx.get(server.url + "/_dev/mail", params={"phone": phone}, timeout=TIMEOUT).json()["messages"]
    return messages[0]["code"]


def enroll_phone(server, token: str, phone: str, **body) -> dict:
    resp = call(server, "POST", "/factors", token, {"factor_type": "phone", "phone": phone, **body})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_phone_factor_through_the_dev_outbox(make_server, backend):
    server = make_server(backend, **PHONE_ON, GOTRUE_MFA_PHONE_TEMPLATE="Login code: {{ .Code }}",
                         GOTRUE_MFA_PHONE_OTP_LENGTH="8")
    session = signup_session(server)
    token = session["access_token"]
    factor = enroll_phone(server, token, "+1 555 010 0777", friendly_name="mobile")
    # The number as typed comes back; it is stored normalised.
    assert factor == {"id": factor["id"], "type": "phone", "friendly_name": "mobile", "phone": "+1 555 010 0777"}
    assert rows(server, "SELECT phone, status FROM mfa_factors WHERE id = $1", factor["id"]) == [
        {"phone": "15550100777", "status": "unverified"}]

    # Phone challenges read a body: an empty one is bad JSON.
    assert_error(httpx.post(server.url + f"/factors/{factor['id']}/challenge", headers=bearer(token),
                            timeout=TIMEOUT), 400, "bad_json")
    assert_error(call(server, "POST", f"/factors/{factor['id']}/challenge", token, {"channel": "whatsapp"}), 400,
                 "validation_failed")
    resp = call(server, "POST", f"/factors/{factor['id']}/challenge", token, {"channel": "sms"})
    assert resp.status_code == 200, resp.text
    ch = resp.json()
    assert ch["type"] == "phone"
    messages = httpx.get(server.url + "/_dev/mail", params={"phone": "15550100777"}, timeout=TIMEOUT).json()["messages"]
    code = messages[0]["code"]
    assert len(code) == 8 and messages[0]["text"] == f"Login code: {code}"
    # The code is kept in plain text (no encryption configured), never hashed, as upstream.
    assert rows(server, "SELECT otp_code FROM mfa_challenges WHERE id = $1", ch["id"]) == [{"otp_code": code}]

    # Another challenge within GOTRUE_MFA_PHONE_MAX_FREQUENCY (1 minute) is refused.
    resp = call(server, "POST", f"/factors/{factor['id']}/challenge", token, {})
    assert_error(resp, 429, "over_sms_send_rate_limit")
    assert resp.json()["msg"].startswith("For security purposes, you can only request this after ")

    # Wrong codes do not burn the challenge.
    wrong = "0" * 8 if code != "0" * 8 else "1" * 8
    assert_error(call(server, "POST", f"/factors/{factor['id']}/verify", token, {"challenge_id": ch["id"], "code": wrong}),
                 422, "mfa_verification_failed", "Invalid MFA Phone code entered")
    resp = call(server, "POST", f"/factors/{factor['id']}/verify", token, {"challenge_id": ch["id"], "code": code})
    assert resp.status_code == 200, resp.text
    claims = claims_of(resp.json()["access_token"])
    assert claims["aal"] == "aal2" and [e["method"] for e in claims["amr"]] == ["mfa/phone", "password"]
    assert_error(call(server, "POST", f"/factors/{factor['id']}/verify", token, {"challenge_id": ch["id"], "code": code}),
                 422, "mfa_ip_address_mismatch")

    # A verified number cannot be enrolled twice; a pending one is replaced.
    stepped = resp.json()["access_token"]
    assert_error(call(server, "POST", "/factors", stepped, {"factor_type": "phone", "phone": "15550100777",
                                                           "friendly_name": "again"}),
                 422, "mfa_verified_factor_exists")
    pending = enroll_phone(server, stepped, "15550100888", friendly_name="other")
    replaced = enroll_phone(server, stepped, "15550100888", friendly_name="other2")
    ids = {r["id"] for r in rows(server, "SELECT id FROM mfa_factors WHERE user_id = $1", session["user"]["id"])}
    assert pending["id"] not in ids and replaced["id"] in ids

    # Bad numbers.
    assert_error(call(server, "POST", "/factors", stepped, {"factor_type": "phone"}), 400, "validation_failed",
                 "Phone number required to enroll Phone factor")
    assert_error(call(server, "POST", "/factors", stepped, {"factor_type": "phone", "phone": "12ab"}), 400,
                 "validation_failed", "Invalid phone number format (E.164 required)")


def test_phone_challenge_expires_and_is_refused_when_disabled(make_server, backend):
    server = make_server(backend, **PHONE_ON)
    session = signup_session(server)
    token = session["access_token"]
    factor = enroll_phone(server, token, "15550100999")
    ch = call(server, "POST", f"/factors/{factor['id']}/challenge", token, {}).json()
    code = outbox_code(server, "15550100999")
    try:
        clock.offset = timedelta(seconds=301)
        assert_error(call(server, "POST", f"/factors/{factor['id']}/verify", token,
                          {"challenge_id": ch["id"], "code": code}), 422, "mfa_challenge_expired")
    finally:
        clock.offset = timedelta(0)
    off = make_server(backend, DATABASE_URL=server.db_url)
    assert_error(call(off, "POST", f"/factors/{factor['id']}/challenge", token, {}), 422,
                 "mfa_phone_verify_not_enabled", "MFA verification is disabled for Phone")
    assert_error(call(off, "POST", "/factors", token, {"factor_type": "phone", "phone": "15550100998"}), 422,
                 "mfa_phone_enroll_not_enabled", "MFA enroll is disabled for Phone")


def test_phone_factor_through_twilio(make_server, backend, sms_vendor):
    vendor = sms_vendor("twilio")
    server = make_server(backend, **PHONE_ON, **vendor.env())
    token = signup_session(server)["access_token"]
    factor = enroll_phone(server, token, "+15550101234")
    ch = call(server, "POST", f"/factors/{factor['id']}/challenge", token, {"channel": "whatsapp"})
    assert ch.status_code == 200, ch.text
    sent = vendor.last("15550101234")
    assert sent.channel == "whatsapp"
    resp = call(server, "POST", f"/factors/{factor['id']}/verify", token, {"challenge_id": ch.json()["id"],
                                                                          "code": sent.code})
    assert resp.status_code == 200, resp.text

    # The vendor refusing is upstream's 500, and no challenge is written.
    other = signup_session(server)["access_token"]
    second = enroll_phone(server, other, "+15550101235")
    vendor.fail("auth")
    assert_error(call(server, "POST", f"/factors/{second['id']}/challenge", other, {}), 500, "unexpected_failure",
                 "error sending message")
    assert rows(server, "SELECT id FROM mfa_challenges WHERE factor_id = $1", second["id"]) == []


def test_phone_factor_through_twilio_verify(make_server, backend, sms_vendor):
    vendor = sms_vendor("twilio_verify")
    server = make_server(backend, **PHONE_ON, **vendor.env())
    token = signup_session(server)["access_token"]
    factor = enroll_phone(server, token, "+15550102345")
    ch = call(server, "POST", f"/factors/{factor['id']}/challenge", token, {}).json()
    code = vendor.last("15550102345").code
    wrong = "000000" if code != "000000" else "111111"
    assert_error(call(server, "POST", f"/factors/{factor['id']}/verify", token, {"challenge_id": ch["id"], "code": wrong}),
                 403, "otp_expired", "Token has expired or is invalid")
    resp = call(server, "POST", f"/factors/{factor['id']}/verify", token, {"challenge_id": ch["id"], "code": code})
    assert resp.status_code == 200, resp.text
    assert claims_of(resp.json()["access_token"])["aal"] == "aal2"


def test_a_broken_phone_template_stops_the_start():
    from gotrue_lite.config import ConfigError, load_settings

    env = {"GOTRUE_MFA_PHONE_ENROLL_ENABLED": "true", "GOTRUE_MFA_PHONE_TEMPLATE": "Code {{ .Code "}
    with pytest.raises(ConfigError, match="GOTRUE_MFA_PHONE_TEMPLATE"):
        load_settings(None, env, dotenv=False)
    # Only read while phone MFA is on, as upstream.
    assert load_settings(None, {"GOTRUE_MFA_PHONE_TEMPLATE": "Code {{ .Code "}, dotenv=False).mfa.phone_template
