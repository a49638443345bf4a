"""Phone sign-up, OTP sign-in, phone change, resend and reauthentication over HTTP, on both stores,
with the codes of GOTRUE_SMS_TEST_OTP (nothing is sent for those numbers) and with no provider."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gotrue_lite import clock
from helpers import PASSWORD, assert_error, assert_session, claims_of, post, put_user, rows, sql
from phone_e2e import (BAD_NUMBER, CODE, INVALID_CHANNEL, NO_PROVIDER, OTP_INVALID, PHONE_ENV, fresh_number,
                       outbox_code, sha224, spaced, untested_number, user_row)

@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def phone_server(request, tmp_path_factory, postgres_problem):
    if request.param == "postgres" and postgres_problem:
        pytest.skip(postgres_problem)
    from conftest import start_server

    server = start_server(request.param, tmp_path_factory.mktemp(f"phone-{request.param}"), PHONE_ENV)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _reset_clock():
    yield
    clock.offset = timedelta(0)


def count_users(server) -> int:
    return rows(server, "SELECT count(*) AS n FROM users")[0]["n"]


def audit_actions(server, user_id: str) -> list[str]:
    found = rows(server, "SELECT payload FROM audit_log_entries ORDER BY created_at")
    import json

    actions = []
    for row in found:
        payload = row["payload"] if isinstance(row["payload"], dict) else json.loads(row["payload"])
        if payload.get("actor_id") == user_id:
            actions.append(payload["action"])
    return actions


def verify(server, phone: str, code: str = CODE, vtype: str = "sms"):
    return post(server, "/verify", {"type": vtype, "phone": phone, "token": code})


def signed_up(server, phone: str | None = None) -> tuple[str, dict]:
    """A phone user confirmed through its code; returns the number and the session."""
    phone = phone or fresh_number()
    resp = post(server, "/signup", {"phone": spaced(phone), "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    resp = verify(server, phone)
    assert resp.status_code == 200, resp.text
    return phone, resp.json()


# --- sign-up and password sign-in ----------------------------------------------------------


def test_phone_signup_stores_the_normalised_number_and_a_hashed_code(phone_server):
    phone = fresh_number()
    resp = post(phone_server, "/signup", {"phone": spaced(phone), "password": PASSWORD, "data": {"name": "Ada"}})
    assert resp.status_code == 200, resp.text
    user = resp.json()
    assert "access_token" not in user and "message_id" not in user
    assert user["phone"] == phone and user["email"] == ""
    assert user.get("phone_confirmed_at") is None and user["confirmation_sent_at"]
    assert user["app_metadata"] == {"provider": "phone", "providers": ["phone"]}
    assert user["user_metadata"] == {"name": "Ada"}
    [identity] = user["identities"]
    assert identity["provider"] == "phone"
    # upstream's phone identity names no number
    assert identity["identity_data"] == {"sub": user["id"], "email_verified": False, "phone_verified": False,
                                         "name": "Ada"}

    row = user_row(phone_server, phone)
    assert row["confirmation_token"] == sha224(phone + CODE)
    [token] = rows(phone_server, "SELECT * FROM one_time_tokens WHERE user_id = $1", row["id"])
    assert token["token_type"] == "confirmation_token" and token["relates_to"] == phone
    assert token["token_hash"] == sha224(phone + CODE)

    # not confirmed yet: the password is right but the phone is not
    resp = post(phone_server, "/token?grant_type=password", {"phone": phone, "password": PASSWORD})
    assert_error(resp, 400, "phone_not_confirmed", "Phone not confirmed")


def test_verify_sms_confirms_the_phone_and_signs_in(phone_server):
    phone = fresh_number()
    post(phone_server, "/signup", {"phone": phone, "password": PASSWORD})
    assert_error(verify(phone_server, phone, "000000"), 403, "otp_expired", OTP_INVALID)
    resp = verify(phone_server, spaced(phone))
    assert resp.status_code == 200, resp.text
    session = resp.json()
    assert_session(session)
    assert session["user"]["phone"] == phone and session["user"]["phone_confirmed_at"]
    claims = claims_of(session["access_token"])
    assert [m["method"] for m in claims["amr"]] == ["otp"] and claims["phone"] == phone
    # ConfirmPhone leaves the identity's data alone
    assert session["user"]["identities"][0]["identity_data"]["phone_verified"] is False

    row = user_row(phone_server, phone)
    assert row["confirmation_token"] == "" and row["phone_confirmed_at"] is not None
    assert rows(phone_server, "SELECT * FROM one_time_tokens WHERE user_id = $1", row["id"]) == []
    actions = audit_actions(phone_server, row["id"])
    assert actions.index("user_confirmation_requested") < actions.index("user_signedup"), actions

    resp = post(phone_server, "/token?grant_type=password", {"phone": spaced(phone), "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    assert [m["method"] for m in claims_of(resp.json()["access_token"])["amr"]] == ["password"]


def test_phone_signup_again_leaks_nothing(phone_server):
    phone, _ = signed_up(phone_server)
    resp = post(phone_server, "/signup", {"phone": phone, "password": "another-pass-1"})
    assert resp.status_code == 200, resp.text
    fake = resp.json()
    assert fake["phone"] == phone and fake["id"] != user_row(phone_server, phone)["id"]
    assert fake["identities"] == [] and "access_token" not in fake


@pytest.mark.parametrize("body, status, code, message", [
    ({"phone": "+1 (555) 0100", "password": PASSWORD}, 400, "validation_failed", BAD_NUMBER),
    ({"phone": "0155501001", "password": PASSWORD}, 400, "validation_failed", BAD_NUMBER),
    ({"phone": "++15550100100", "password": PASSWORD}, 400, "validation_failed", BAD_NUMBER),
    ({"phone": "15550100100", "password": PASSWORD, "channel": "fax"}, 400, "validation_failed", INVALID_CHANNEL),
    ({"phone": "15550100100", "password": PASSWORD, "channel": "whatsapp"}, 400, "validation_failed",
     INVALID_CHANNEL),
    ({"phone": "15550100100", "password": PASSWORD, "code_challenge": "x" * 43, "code_challenge_method": "s256"},
     400, "validation_failed", "PKCE not supported for phone signups"),
    ({"phone": "15550100100"}, 400, "validation_failed", "Signup requires a valid password"),
])
def test_phone_signup_refusals_write_nothing(phone_server, body, status, code, message):
    before = count_users(phone_server)
    assert_error(post(phone_server, "/signup", body), status, code, message)
    assert count_users(phone_server) == before


def test_no_provider_answers_500_and_writes_nothing(make_server, backend):
    server = make_server(backend, **PHONE_ENV, **NO_PROVIDER)
    phone = untested_number()
    body = assert_error(post(server, "/signup", {"phone": phone, "password": PASSWORD}), 500,
                        "unexpected_failure", "Unable to get SMS provider")
    assert body.get("error_id")
    assert_error(post(server, "/otp", {"phone": phone}), 500, "unexpected_failure", "Unable to get SMS provider")
    assert count_users(server) == 0
    # a test number needs no provider; its phone change to an ordinary number does
    _, session = signed_up(server)
    new = untested_number()
    assert_error(put_user(server, session["access_token"], {"phone": new}), 500, "unexpected_failure",
                 "Unable to get SMS provider")
    assert rows(server, "SELECT id FROM users WHERE phone_change = $1", new) == []
    assert rows(server, "SELECT id FROM one_time_tokens WHERE relates_to = $1", new) == []


# --- POST /otp -------------------------------------------------------------------------------


def test_otp_signs_up_a_new_number_then_signs_in_with_the_code(phone_server):
    phone = fresh_number()
    resp = post(phone_server, "/otp", {"phone": spaced(phone), "data": {"plan": "free"}})
    assert resp.status_code == 200 and resp.json() == {}, resp.text  # a sign-up: {} even for test numbers
    row = user_row(phone_server, phone)
    assert row["phone_confirmed_at"] is None and row["encrypted_password"]
    resp = verify(phone_server, phone)
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["user_metadata"] == {"plan": "free"}

    # a confirmed number: the sign-in code, with the test OTP's message id
    clock.offset += timedelta(seconds=61)
    resp = post(phone_server, "/otp", {"phone": phone, "create_user": False})
    assert resp.status_code == 200 and resp.json() == {"message_id": "test-otp"}, resp.text
    assert "user_recovery_requested" in audit_actions(phone_server, row["id"])
    resp = verify(phone_server, phone)
    assert resp.status_code == 200, resp.text
    assert [m["method"] for m in claims_of(resp.json()["access_token"])["amr"]] == ["otp"]


def test_otp_cooldown_has_upstreams_429(phone_server):
    phone, _ = signed_up(phone_server)
    clock.offset += timedelta(seconds=61)
    assert post(phone_server, "/otp", {"phone": phone}).status_code == 200
    clock.offset += timedelta(seconds=20)
    resp = post(phone_server, "/otp", {"phone": phone})
    body = assert_error(resp, 429, "over_sms_send_rate_limit")
    assert body["msg"] in ("For security purposes, you can only request this after 39 seconds.",
                           "For security purposes, you can only request this after 40 seconds.")


@pytest.mark.parametrize("body, status, code, message", [
    ({"phone": "15559999999", "create_user": False}, 422, "otp_disabled", "Signups not allowed for otp"),
    ({"phone": "not a number", "create_user": False}, 422, "otp_disabled", "Signups not allowed for otp"),
    ({"phone": "not a number"}, 400, "validation_failed", BAD_NUMBER),
    ({"phone": "15550100100", "channel": "whatsapp"}, 400, "validation_failed", INVALID_CHANNEL),
    ({"phone": "15550100100", "email": "a@example.com"}, 400, "validation_failed",
     "Only an email address or phone number should be provided"),
    ({"phone": "15550100100", "code_challenge": "short", "code_challenge_method": "s256"}, 400, "validation_failed",
     "code challenge has to be between 43 and 128 characters"),
])
def test_otp_refusals(phone_server, body, status, code, message):
    before = count_users(phone_server)
    assert_error(post(phone_server, "/otp", body), status, code, message)
    assert count_users(phone_server) == before


# --- POST /verify parameters (upstream VerifyParams.Validate, before any lookup) ---------------


@pytest.mark.parametrize("body, status, code, message", [
    ({"phone": "15550100100", "token": "1"}, 400, "validation_failed", "Verify requires a verification type"),
    ({"type": "sms", "phone": "15550100100"}, 400, "validation_failed",
     "Verify requires either a token or a token hash"),
    ({"type": "sms", "phone": "15550100100", "token": "1", "token_hash": "x"}, 400, "validation_failed",
     "Verify requires either a token or a token hash"),
    ({"type": "sms", "phone": "+1 (555)", "token": "1"}, 400, "validation_failed", BAD_NUMBER),
    ({"type": "signup", "email": "not-an-email", "token": "1"}, 422, "validation_failed", "Invalid email format"),
    ({"type": "sms", "phone": "15550100100", "email": "a@example.com", "token": "1"}, 400, "validation_failed",
     "Only an email address or phone number should be provided on verify"),
    ({"type": "sms", "token_hash": "abc", "phone": "15550100100"}, 400, "validation_failed",
     "Only the token_hash and type should be provided"),
    ({"type": "sms", "token_hash": "abc"}, 400, "validation_failed", "Invalid email verification type"),
    ({"type": "nonsense", "token_hash": "abc"}, 400, "validation_failed", "Invalid email verification type"),
    ({"type": "sms", "phone": "15559999998", "token": "123456"}, 403, "otp_expired", OTP_INVALID),
    ({"type": "sms", "email": "nobody@example.com", "token": "123456"}, 403, "otp_expired", OTP_INVALID),
    ({"type": "nonsense", "email": "nobody@example.com", "token": "123456"}, 403, "otp_expired", OTP_INVALID),
])
def test_verify_parameter_errors_in_upstreams_order(phone_server, body, status, code, message):
    assert_error(post(phone_server, "/verify", body), status, code, message)


def test_verify_checks_the_number_even_with_phone_sign_in_disabled(make_server, backend):
    server = make_server(backend)  # GOTRUE_EXTERNAL_PHONE_ENABLED is off by default
    assert_error(verify(server, "+44 (20) 7946"), 400, "validation_failed", BAD_NUMBER)
    assert_error(verify(server, "15550100100"), 403, "otp_expired", OTP_INVALID)


def test_a_test_code_after_valid_until_is_refused(make_server, backend):
    phone = "15550107777"
    server = make_server(backend, GOTRUE_EXTERNAL_PHONE_ENABLED="true", GOTRUE_SMS_TEST_OTP=f"{phone}:{CODE}",
                         GOTRUE_SMS_TEST_OTP_VALID_UNTIL="2000-01-01T00:00:00Z")
    # past its validity the number is an ordinary one: a real code goes out (to the dev outbox)
    assert post(server, "/signup", {"phone": phone, "password": PASSWORD}).status_code == 200
    code = outbox_code(server, phone)
    assert code != CODE
    assert_error(verify(server, phone, CODE), 403, "otp_expired", OTP_INVALID)
    assert verify(server, phone, code).status_code == 200


def test_expired_code_is_refused(phone_server):
    phone = fresh_number()
    post(phone_server, "/signup", {"phone": phone, "password": PASSWORD})
    # the test OTP itself is always valid: forge an ordinary stored code to check expiry
    row = user_row(phone_server, phone)
    sql(phone_server, "UPDATE users SET confirmation_token = $1 WHERE id = $2", sha224(phone + "135790"), row["id"])
    clock.offset += timedelta(seconds=61)  # GOTRUE_SMS_OTP_EXP defaults to 60 s
    assert_error(verify(phone_server, phone, "135790"), 403, "otp_expired", OTP_INVALID)
    clock.offset = timedelta(0)
    resp = verify(phone_server, phone, "135790")
    assert resp.status_code == 200, resp.text


def test_banned_user_cannot_verify(phone_server):
    from helpers import ban

    phone = fresh_number()
    post(phone_server, "/signup", {"phone": phone, "password": PASSWORD})
    ban(phone_server, user_row(phone_server, phone)["id"])
    assert_error(verify(phone_server, phone), 403, "user_banned", "User is banned")


# --- phone change ---------------------------------------------------------------------------


def test_phone_change_texts_the_new_number_and_verifies_there(phone_server):
    old, session = signed_up(phone_server)
    new = fresh_number()
    resp = put_user(phone_server, session["access_token"], {"phone": spaced(new)})
    assert resp.status_code == 200, resp.text
    user = resp.json()
    assert user["phone"] == old and user["new_phone"] == new and user["phone_change_sent_at"]
    row = user_row(phone_server, old)
    assert row["phone_change"] == new and row["phone_change_token"] == sha224(new + CODE)
    [token] = rows(phone_server, "SELECT * FROM one_time_tokens WHERE user_id = $1", row["id"])
    assert token["token_type"] == "phone_change_token" and token["relates_to"] == new

    # the old number does not find the pending change
    assert_error(verify(phone_server, old, vtype="phone_change"), 403, "otp_expired", OTP_INVALID)
    resp = verify(phone_server, new, vtype="phone_change")
    assert resp.status_code == 200, resp.text
    changed = resp.json()["user"]
    assert changed["phone"] == new and "new_phone" not in changed
    identity = next(i for i in changed["identities"] if i["provider"] == "phone")
    assert identity["identity_data"]["phone"] == new and identity["identity_data"]["phone_verified"] is True
    assert user_row(phone_server, old) is None
    row = user_row(phone_server, new)
    assert row["phone_change"] == "" and row["phone_change_token"] == ""
    assert rows(phone_server, "SELECT * FROM one_time_tokens WHERE user_id = $1", row["id"]) == []
    assert post(phone_server, "/token?grant_type=password", {"phone": new, "password": PASSWORD}).status_code == 200


def test_phone_change_refusals(phone_server):
    _, session = signed_up(phone_server)
    taken, _ = signed_up(phone_server)
    token = session["access_token"]
    assert_error(put_user(phone_server, token, {"phone": taken}), 422, "phone_exists",
                 "A user with this phone number has already been registered")
    assert_error(put_user(phone_server, token, {"phone": "0123"}), 400, "validation_failed", BAD_NUMBER)
    assert_error(put_user(phone_server, token, {"phone": fresh_number(), "channel": "whatsapp"}), 400,
                 "validation_failed", INVALID_CHANNEL)


def test_phone_change_of_an_email_user_adds_a_phone_identity(make_server, backend):
    server = make_server(backend, **{**PHONE_ENV, "GOTRUE_MAILER_AUTOCONFIRM": "true"})
    resp = post(server, "/signup", {"email": "ada@example.com", "password": PASSWORD})
    token = resp.json()["access_token"]
    new = fresh_number()
    assert put_user(server, token, {"phone": new}).status_code == 200
    resp = verify(server, new, vtype="phone_change")
    assert resp.status_code == 200, resp.text
    user = resp.json()["user"]
    assert sorted(i["provider"] for i in user["identities"]) == ["email", "phone"]
    assert user["app_metadata"]["providers"] == ["email", "phone"]
    phone_identity = next(i for i in user["identities"] if i["provider"] == "phone")
    assert phone_identity["identity_data"] == {"sub": user["id"], "phone": new, "email_verified": False,
                                               "phone_verified": True}


def test_phone_change_with_autoconfirm_applies_at_once(make_server, backend):
    server = make_server(backend, GOTRUE_SMS_AUTOCONFIRM="true", GOTRUE_EXTERNAL_PHONE_ENABLED="true")
    phone = untested_number()  # autoconfirm texts nothing
    resp = post(server, "/signup", {"phone": phone, "password": PASSWORD})
    assert resp.status_code == 200 and resp.json()["access_token"], resp.text
    assert resp.json()["user"]["phone_confirmed_at"]
    new = untested_number()
    resp = put_user(server, resp.json()["access_token"], {"phone": new})
    assert resp.status_code == 200, resp.text
    assert resp.json()["phone"] == new and "new_phone" not in resp.json()
    # and with the user confirmed already, /signup again is the 422 of autoconfirm
    assert_error(post(server, "/signup", {"phone": new, "password": PASSWORD}), 422, "user_already_exists")


# --- resend and reauthenticate ------------------------------------------------------------------


def test_resend_sms_and_phone_change(phone_server):
    phone = fresh_number()
    post(phone_server, "/signup", {"phone": phone, "password": PASSWORD})
    resp = post(phone_server, "/resend", {"type": "sms", "phone": phone})
    assert_error(resp, 429, "over_sms_send_rate_limit")
    clock.offset += timedelta(seconds=61)
    resp = post(phone_server, "/resend", {"type": "sms", "phone": spaced(phone)})
    assert resp.status_code == 200 and resp.json() == {"message_id": "test-otp"}, resp.text
    session = verify(phone_server, phone).json()
    # confirmed now: nothing to resend
    clock.offset += timedelta(seconds=61)
    assert post(phone_server, "/resend", {"type": "sms", "phone": phone}).json() == {}

    new = fresh_number()
    assert put_user(phone_server, session["access_token"], {"phone": new}).status_code == 200
    # the pending number finds nobody; the current one finds the change
    assert post(phone_server, "/resend", {"type": "phone_change", "phone": new}).json() == {}
    clock.offset += timedelta(seconds=61)
    resp = post(phone_server, "/resend", {"type": "phone_change", "phone": phone})
    assert resp.status_code == 200 and resp.json() == {"message_id": "test-otp"}, resp.text
    assert verify(phone_server, new, vtype="phone_change").status_code == 200


@pytest.mark.parametrize("body, status, code, message", [
    ({"type": "sms"}, 400, "validation_failed", "Type provided requires a phone number"),
    ({"type": "sms", "phone": "0123"}, 400, "validation_failed", BAD_NUMBER),
    ({"type": "phone_change"}, 400, "validation_failed", "Missing email address or phone number"),
    ({"type": "sms", "phone": "15559999997"}, 200, None, None),
])
def test_resend_refusals(phone_server, body, status, code, message):
    resp = post(phone_server, "/resend", body)
    if code is None:
        assert resp.status_code == 200 and resp.json() == {}
    else:
        assert_error(resp, status, code, message)


def test_reauthenticate_by_sms_then_the_nonce_changes_the_password(make_server, backend):
    server = make_server(backend, **PHONE_ENV, GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION="true")
    phone, session = signed_up(server)
    token = session["access_token"]
    resp = server_get(server, "/reauthenticate", token)
    assert resp.status_code == 200 and resp.json() == {"message_id": "test-otp"}, resp.text
    row = user_row(server, phone)
    assert row["reauthentication_token"] == sha224(phone + CODE)
    assert "user_reauthenticate_requested" in audit_actions(server, row["id"])

    # the session is fresh: upstream asks for the nonce only after 24 hours
    clock.offset += timedelta(hours=25)
    assert_error(put_user(server, token, {"password": "new-password-1"}), 400, "reauthentication_needed")
    assert_error(put_user(server, token, {"password": "new-password-1", "nonce": "999999"}), 422,
                 "reauthentication_not_valid", "Nonce has expired or is invalid")
    clock.offset = timedelta(0)
    resp = server_get(server, "/reauthenticate", token)
    assert_error(resp, 429, "over_sms_send_rate_limit")
    clock.offset += timedelta(hours=25)
    # the stored nonce is past GOTRUE_SMS_OTP_EXP now
    assert_error(put_user(server, token, {"password": "new-password-1", "nonce": CODE}), 422,
                 "reauthentication_not_valid")
    sql(server, "UPDATE users SET reauthentication_sent_at = $1 WHERE id = $2", clock.now(), row["id"])
    resp = put_user(server, token, {"password": "new-password-1", "nonce": CODE})
    assert resp.status_code == 200, resp.text
    assert user_row(server, phone)["reauthentication_token"] == ""
    assert post(server, "/token?grant_type=password", {"phone": phone, "password": "new-password-1"}).status_code == 200


def test_reauthenticate_needs_a_confirmed_phone(phone_server):
    phone = fresh_number()
    post(phone_server, "/signup", {"phone": phone, "password": PASSWORD})
    row = user_row(phone_server, phone)
    sql(phone_server, "UPDATE users SET phone_confirmed_at = NULL WHERE id = $1", row["id"])
    from helpers import mint

    token = mint({"sub": row["id"], "aud": "authenticated", "role": "authenticated",
                  "exp": int(clock.now().timestamp()) + 600})
    resp = server_get(phone_server, "/reauthenticate", token)
    assert_error(resp, 422, "phone_not_confirmed", "Please verify your phone first.")


def server_get(server, path: str, token: str):
    import httpx

    return httpx.get(server.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=60)


# --- budget, template, settings ---------------------------------------------------------------


def test_settings_report_phone_and_the_provider(make_server, backend):
    server = make_server(backend, GOTRUE_EXTERNAL_PHONE_ENABLED="true", GOTRUE_SMS_PROVIDER="twilio",
                         GOTRUE_SMS_AUTOCONFIRM="true")
    import httpx

    body = httpx.get(server.url + "/settings").json()
    assert body["external"]["phone"] is True
    assert body["sms_provider"] == "twilio" and body["phone_autoconfirm"] is True
    plain = httpx.get(make_server(backend).url + "/settings").json()
    assert plain["external"]["phone"] is False and plain["sms_provider"] == "" and plain["phone_autoconfirm"] is False


def test_phone_provider_disabled_answers(make_server, backend):
    server = make_server(backend)
    assert_error(post(server, "/signup", {"phone": "15550100100", "password": PASSWORD}), 400,
                 "phone_provider_disabled", "Phone signups are disabled")
    assert_error(post(server, "/otp", {"phone": "15550100100"}), 400, "phone_provider_disabled",
                 "Unsupported phone provider")
    assert_error(post(server, "/otp", {"phone": "15550100100", "create_user": False}), 422, "otp_disabled")
    assert_error(post(server, "/resend", {"type": "sms", "phone": "15550100100"}), 400, "phone_provider_disabled",
                 "Phone logins are disabled")
    assert_error(post(server, "/token?grant_type=password", {"phone": "15550100100", "password": PASSWORD}), 422,
                 "phone_provider_disabled", "Phone logins are disabled")


@pytest.mark.parametrize("vtype", ["sms", "phone_change", "nonsense"])
def test_get_verify_with_a_non_email_type_redirects_upstreams_error(phone_server, vtype):
    import httpx

    resp = httpx.get(phone_server.url + "/verify", params={"type": vtype, "token": "abc"}, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    location = resp.headers["location"]
    assert location.startswith("http://localhost:3000#"), location
    assert "error_code=validation_failed" in location and "error_description=Invalid+email+verification+type" in location
