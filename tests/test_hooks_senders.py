"""The sender hooks replace mail and SMS delivery: send_email gets the OTP and token hash (upstream's
email_data), send_sms the code; the test then verifies with what the hook received. Also the MFA
hooks: the phone factor's code through send_sms, and mfa_verification_attempt. Both stores."""

from __future__ import annotations

import contextlib
import hashlib
from datetime import timedelta

import httpx
import pyotp

from gotrue_lite import clock
from helpers import PASSWORD, assert_error, bearer, claims_of, new_email, post, rows, sign_in
from hook_server import Reply, hook_server  # noqa: F401 - a fixture

TIMEOUT = 60
UNCONFIRMED = {"GOTRUE_MAILER_AUTOCONFIRM": "false"}
PHONE = {"GOTRUE_EXTERNAL_PHONE_ENABLED": "true", "GOTRUE_SMS_AUTOCONFIRM": "false"}


@contextlib.contextmanager
def later(seconds: int = 61):
    """Past the per-address send cooldown."""
    clock.offset += timedelta(seconds=seconds)
    try:
        yield
    finally:
        clock.offset = timedelta(0)


def dev_mail(server) -> list:
    return httpx.get(server.url + "/_dev/mail", timeout=TIMEOUT).json()["messages"]


def sha224(text: str) -> str:
    return hashlib.sha224(text.encode()).hexdigest()


def call(server, method, path, token, body=None):
    return httpx.request(method, server.url + path, json=body, headers=bearer(token), timeout=TIMEOUT)


def test_send_email_delivers_the_sign_up_code_and_hash(hook_server, make_server, backend):
    hooks = hook_server()
    server = make_server(backend, **hooks.env("send_email"), **UNCONFIRMED)
    email = new_email()
    resp = post(server, "/signup", {"email": email, "password": PASSWORD},
                params={"redirect_to": "http://localhost:3000/welcome"})
    assert resp.status_code == 200, resp.text
    call_ = hooks.calls("send_email")[-1]
    assert call_.verified
    payload = call_.payload
    data = payload["email_data"]
    assert payload["metadata"]["name"] == "send-email"
    assert payload["user"]["email"] == email and payload["user"]["id"] == resp.json()["id"]
    assert data["email_action_type"] == "signup"
    assert data["site_url"] == server.url  # upstream sends the API's external URL here
    assert data["redirect_to"] == "http://localhost:3000/welcome"
    assert data["token_hash"] == sha224(email + data["token"])
    assert set(data) == {"token", "token_hash", "redirect_to", "email_action_type", "site_url", "token_new",
                         "token_hash_new", "old_email", "old_phone", "provider", "factor_type"}
    assert dev_mail(server) == []  # the hook is the mailer: nothing else was sent

    verified = post(server, "/verify", {"email": email, "token": data["token"], "type": "signup"})
    assert verified.status_code == 200, verified.text
    assert verified.json()["user"]["email_confirmed_at"]


def test_send_email_magic_link_recovery_and_token_hash(hook_server, make_server, backend):
    hooks = hook_server()
    server = make_server(backend, **hooks.env("send_email"))
    email = new_email()
    assert post(server, "/signup", {"email": email, "password": PASSWORD}).status_code == 200
    assert post(server, "/otp", {"email": email}).status_code == 200
    magic = hooks.calls("send_email")[-1].payload["email_data"]
    assert magic["email_action_type"] == "magiclink"
    resp = post(server, "/verify", {"token_hash": magic["token_hash"], "type": "magiclink"})
    assert resp.status_code == 200, resp.text
    assert claims_of(resp.json()["access_token"])["email"] == email

    with later():
        assert post(server, "/recover", {"email": email}).status_code == 200
    recovery = hooks.calls("send_email")[-1].payload["email_data"]
    assert recovery["email_action_type"] == "recovery"
    resp = post(server, "/verify", {"email": email, "token": recovery["token"], "type": "recovery"})
    assert resp.status_code == 200, resp.text


def test_send_email_email_change_sends_both_codes_in_one_call(hook_server, make_server, backend):
    hooks = hook_server()
    server = make_server(backend, **hooks.env("send_email"), **UNCONFIRMED)
    email, new = new_email("old"), new_email("new")
    assert post(server, "/signup", {"email": email, "password": PASSWORD}).status_code == 200
    signup_code = hooks.calls("send_email")[-1].payload["email_data"]["token"]
    session = post(server, "/verify", {"email": email, "token": signup_code, "type": "signup"}).json()
    calls_before = len(hooks.calls("send_email"))
    resp = call(server, "PUT", "/user", session["access_token"], {"email": new})
    assert resp.status_code == 200, resp.text
    assert len(hooks.calls("send_email")) == calls_before + 1
    data = hooks.calls("send_email")[-1].payload["email_data"]
    assert data["email_action_type"] == "email_change"
    # upstream's placement: token / token_hash_new belong to the current address, token_new /
    # token_hash to the new one.
    assert data["token_hash_new"] == sha224(email + data["token"])
    assert data["token_hash"] == sha224(new + data["token_new"])
    first = post(server, "/verify", {"email": new, "token": data["token_new"], "type": "email_change"})
    assert first.status_code == 200, first.text
    assert "access_token" not in first.json()  # the current address must confirm too
    second = post(server, "/verify", {"email": email, "token": data["token"], "type": "email_change"})
    assert second.status_code == 200, second.text
    assert second.json()["user"]["email"] == new


def test_a_failing_send_email_hook_leaves_no_user(hook_server, make_server, backend):
    hooks = hook_server()
    hooks.answer("send_email", lambda p: {"error": {"http_code": 422, "message": "Mail provider quota reached"}})
    server = make_server(backend, **hooks.env("send_email"), **UNCONFIRMED)
    email = new_email()
    resp = post(server, "/signup", {"email": email, "password": PASSWORD})
    assert_error(resp, 422, "unknown", "Mail provider quota reached")
    assert rows(server, "SELECT id FROM users WHERE email = $1", email) == []
    hooks.answer("send_email", lambda p: Reply(body="nope", content_type=None))
    assert_error(post(server, "/signup", {"email": email, "password": PASSWORD}), 400,
                 "hook_payload_invalid_content_type", "Invalid Content-Type: Missing Content-Type header")
    assert rows(server, "SELECT id FROM users WHERE email = $1", email) == []


def test_send_sms_delivers_phone_codes(hook_server, make_server, backend):
    hooks = hook_server()
    # No SMS vendor is configured: the hook is the sender.
    server = make_server(backend, **hooks.env("send_sms"), **PHONE)
    phone = "15550001234"
    resp = post(server, "/signup", {"phone": f"+{phone}", "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    payload = hooks.calls("send_sms")[-1].payload
    assert hooks.calls("send_sms")[-1].verified
    assert payload["metadata"]["name"] == "send-sms"
    assert payload["user"]["phone"] == phone
    assert set(payload["sms"]) == {"otp", "phone"} and payload["sms"]["phone"] == phone
    code = payload["sms"]["otp"]
    assert rows(server, "SELECT confirmation_token FROM users WHERE phone = $1", phone)[0]["confirmation_token"] \
        == sha224(phone + code)
    verified = post(server, "/verify", {"phone": phone, "token": code, "type": "sms"})
    assert verified.status_code == 200, verified.text

    # OTP sign-in, on any channel: the hook decides how to deliver.
    with later():
        assert post(server, "/otp", {"phone": phone, "channel": "whatsapp"}).status_code == 200
    code = hooks.calls("send_sms")[-1].payload["sms"]["otp"]
    signed_in = post(server, "/verify", {"phone": phone, "token": code, "type": "sms"})
    assert signed_in.status_code == 200, signed_in.text


def test_a_failing_send_sms_hook_leaves_no_user(hook_server, make_server, backend):
    hooks = hook_server()
    hooks.answer("send_sms", lambda p: Reply(status=500, body="{}"))
    server = make_server(backend, **hooks.env("send_sms"), **PHONE)
    assert_error(post(server, "/signup", {"phone": "15550004321", "password": PASSWORD}), 500,
                 "unexpected_failure", "Unexpected status code returned from hook: 500")
    assert rows(server, "SELECT id FROM users WHERE phone = $1", "15550004321") == []


def test_phone_factor_codes_go_through_send_sms(hook_server, make_server, backend):
    hooks = hook_server()
    server = make_server(backend, **hooks.env("send_sms"), GOTRUE_MFA_PHONE_ENROLL_ENABLED="true",
                         GOTRUE_MFA_PHONE_VERIFY_ENABLED="true")
    session = post(server, "/signup", {"email": new_email(), "password": PASSWORD}).json()
    token = session["access_token"]
    factor = call(server, "POST", "/factors", token, {"factor_type": "phone", "phone": "+15550100555"}).json()
    challenge = call(server, "POST", f"/factors/{factor['id']}/challenge", token, {})
    assert challenge.status_code == 200, challenge.text
    sms = hooks.calls("send_sms")[-1].payload["sms"]
    assert sms["sms_type"] == "mfa" and sms["phone"] == "15550100555"
    resp = call(server, "POST", f"/factors/{factor['id']}/verify", token,
                {"challenge_id": challenge.json()["id"], "code": sms["otp"]})
    assert resp.status_code == 200, resp.text
    assert claims_of(resp.json()["access_token"])["aal"] == "aal2"

    hooks.answer("send_sms", lambda p: Reply(status=500, body="{}"))
    stepped = resp.json()["access_token"]
    with later():
        assert_error(call(server, "POST", f"/factors/{factor['id']}/challenge", stepped, {}), 500,
                     "unexpected_failure", "error invoking hook")


def test_mfa_verification_attempt_can_reject(hook_server, make_server, backend):
    hooks = hook_server()
    seen = []

    def judge(payload):
        seen.append(payload)
        return {"decision": "reject", "message": "Too many MFA attempts"} if not payload["valid"] else {
            "decision": "continue"}

    hooks.answer("mfa_verification_attempt", judge)
    server = make_server(backend, **hooks.env("mfa_verification_attempt"))
    email = new_email()
    session = post(server, "/signup", {"email": email, "password": PASSWORD}).json()
    token = session["access_token"]
    factor = call(server, "POST", "/factors", token, {"factor_type": "totp"}).json()
    totp = pyotp.TOTP(factor["totp"]["secret"])
    ch = call(server, "POST", f"/factors/{factor['id']}/challenge", token).json()
    good = call(server, "POST", f"/factors/{factor['id']}/verify", token,
                {"challenge_id": ch["id"], "code": totp.at(clock.now())})
    assert good.status_code == 200, good.text
    assert seen[-1]["valid"] is True and seen[-1]["factor_id"] == factor["id"]
    assert seen[-1]["factor_type"] == "totp" and seen[-1]["user_id"] == session["user"]["id"]
    assert seen[-1]["metadata"]["name"] == "mfa-verification"

    token = good.json()["access_token"]
    ch = call(server, "POST", f"/factors/{factor['id']}/challenge", token).json()
    bad = call(server, "POST", f"/factors/{factor['id']}/verify", token,
               {"challenge_id": ch["id"], "code": "000000" if totp.at(clock.now()) != "000000" else "111111"})
    assert_error(bad, 403, "mfa_verification_rejected", "Too many MFA attempts")
    # A rejection logs the user out everywhere (upstream).
    assert rows(server, "SELECT id FROM sessions WHERE user_id = $1", session["user"]["id"]) == []
    assert sign_in(server, email).status_code == 200


def test_mfa_notifications_go_through_send_email(hook_server, make_server, backend):
    hooks = hook_server()
    server = make_server(backend, **hooks.env("send_email"),
                         GOTRUE_MAILER_NOTIFICATIONS_MFA_FACTOR_ENROLLED_ENABLED="true")
    email = new_email()
    session = post(server, "/signup", {"email": email, "password": PASSWORD}).json()
    token = session["access_token"]
    factor = call(server, "POST", "/factors", token, {"factor_type": "totp"}).json()
    ch = call(server, "POST", f"/factors/{factor['id']}/challenge", token).json()
    code = pyotp.TOTP(factor["totp"]["secret"]).at(clock.now())
    assert call(server, "POST", f"/factors/{factor['id']}/verify", token,
                {"challenge_id": ch["id"], "code": code}).status_code == 200
    data = hooks.calls("send_email")[-1].payload["email_data"]
    assert data["email_action_type"] == "mfa_factor_enrolled_notification"
    assert data["factor_type"] == "totp" and data["token"] == "" and data["token_hash"] == ""
    assert dev_mail(server) == []


def test_send_sms_for_a_phone_change_shows_the_new_number(hook_server, make_server, backend):
    hooks = hook_server()
    server = make_server(backend, **hooks.env("send_sms"), GOTRUE_EXTERNAL_PHONE_ENABLED="true")
    session = post(server, "/signup", {"email": new_email(), "password": PASSWORD}).json()
    resp = httpx.put(server.url + "/user", json={"phone": "+15550107777"}, headers=bearer(session["access_token"]),
                     timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text
    payload = hooks.calls("send_sms")[-1].payload
    assert payload["sms"]["phone"] == "15550107777" and payload["user"]["new_phone"] == "15550107777"
    verified = post(server, "/verify", {"phone": "15550107777", "token": payload["sms"]["otp"],
                                        "type": "phone_change"})
    assert verified.status_code == 200, verified.text
    assert verified.json()["user"]["phone"] == "15550107777"
