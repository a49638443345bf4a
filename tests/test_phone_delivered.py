"""Phone flows end to end with real codes, read from the text that was actually delivered: to a
local server speaking Twilio's wire format (tests/sms_vendors.py), or to the dev outbox. Provider
refusals, templates, code length and lifetime, the SMS budget. Both stores."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest

from gotrue_lite import clock
from helpers import PASSWORD, assert_error, claims_of, post, put_user, rows
from phone_e2e import CODE, OTP_INVALID, fresh_number, outbox, outbox_code, sha224, spaced, untested_number, user_row
from sms_vendors import sms_vendor  # noqa: F401 - fixture

PHONE = {"GOTRUE_EXTERNAL_PHONE_ENABLED": "true", "GOTRUE_MAILER_AUTOCONFIRM": "false"}


@pytest.fixture(autouse=True)
def _reset_clock():
    yield
    clock.offset = timedelta(0)


@pytest.fixture
def twilio(sms_vendor, make_server, backend):
    """A server texting through the fake Twilio; (server, vendor)."""
    def start(**env):
        vendor = sms_vendor("twilio")
        return make_server(backend, **PHONE, **vendor.env(), **env), vendor
    return start


def verify(server, phone: str, code: str, vtype: str = "sms"):
    return post(server, "/verify", {"type": vtype, "phone": phone, "token": code})


def later(seconds: int = 61) -> None:
    clock.offset += timedelta(seconds=seconds)


def count_users(server) -> int:
    return rows(server, "SELECT count(*) AS n FROM users")[0]["n"]


# --- through the vendor ---------------------------------------------------------------------


def test_sign_up_and_otp_sign_in_with_the_texted_codes(twilio):
    server, vendor = twilio()
    phone = untested_number()
    resp = post(server, "/signup", {"phone": spaced(phone), "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    sms = vendor.last(phone)
    assert sms.channel == "sms" and sms.fields["To"] == f"+{phone}"
    assert re.fullmatch(r"Your code is \d{6}", sms.text), sms.text  # the default GOTRUE_SMS_TEMPLATE
    assert user_row(server, phone)["confirmation_token"] == sha224(phone + sms.code)
    assert_error(verify(server, phone, "000000" if sms.code != "000000" else "111111"), 403, "otp_expired",
                 OTP_INVALID)
    resp = verify(server, phone, sms.code)
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["phone_confirmed_at"]
    assert_error(verify(server, phone, sms.code), 403, "otp_expired", OTP_INVALID)  # used up

    later()
    resp = post(server, "/otp", {"phone": phone, "create_user": False})
    assert resp.status_code == 200, resp.text
    sign_in = vendor.last(phone)
    assert len(vendor.to(phone)) == 2 and resp.json() == {"message_id": sign_in.id}  # the vendor's id
    resp = verify(server, phone, sign_in.code)
    assert resp.status_code == 200, resp.text
    assert [m["method"] for m in claims_of(resp.json()["access_token"])["amr"]] == ["otp"]


def test_phone_change_resend_and_reauthentication_codes(twilio):
    server, vendor = twilio(GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION="true")
    phone, new = untested_number(), untested_number()
    post(server, "/signup", {"phone": phone, "password": PASSWORD})
    session = verify(server, phone, vendor.last(phone).code).json()
    token = session["access_token"]

    assert put_user(server, token, {"phone": new}).status_code == 200
    first = vendor.last(new)
    later()
    resp = post(server, "/resend", {"type": "phone_change", "phone": phone})
    assert resp.status_code == 200 and resp.json() == {"message_id": vendor.last(new).id}
    second = vendor.last(new)
    assert len(vendor.to(new)) == 2 and len(vendor.to(phone)) == 1
    if first.code != second.code:
        # the resent code replaced the first one
        assert_error(verify(server, new, first.code, "phone_change"), 403, "otp_expired", OTP_INVALID)
    resp = verify(server, new, second.code, "phone_change")
    assert resp.status_code == 200 and resp.json()["user"]["phone"] == new, resp.text
    token = resp.json()["access_token"]

    resp = httpx.get(server.url + "/reauthenticate", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200 and resp.json() == {"message_id": vendor.last(new).id}, resp.text
    nonce = vendor.last(new).code
    later(25 * 3600 - 61)  # the session is more than a day old: the password change needs the nonce
    sql_fresh_nonce(server, new)
    assert_error(put_user(server, token, {"password": "changed-pass-1", "nonce": "0"}), 422,
                 "reauthentication_not_valid")
    assert put_user(server, token, {"password": "changed-pass-1", "nonce": nonce}).status_code == 200
    assert post(server, "/token?grant_type=password", {"phone": new, "password": "changed-pass-1"}).status_code == 200


def sql_fresh_nonce(server, phone: str) -> None:
    """The nonce lives GOTRUE_SMS_OTP_EXP (60 s); the clock jumped a day: move its sent-at along."""
    from helpers import sql

    sql(server, "UPDATE users SET reauthentication_sent_at = $1 WHERE phone = $2", clock.now(), phone)


def test_provider_refusals_are_422_and_write_nothing(twilio):
    server, vendor = twilio()
    phone, other = untested_number(), untested_number()
    vendor.fail("invalid_to")
    body = assert_error(post(server, "/signup", {"phone": phone, "password": PASSWORD}), 422, "sms_send_failed")
    assert body["msg"].startswith("Error sending confirmation OTP to provider: Invalid 'To' Phone Number"), body
    assert count_users(server) == 0
    assert_error(post(server, "/otp", {"phone": phone}), 422, "sms_send_failed")
    assert count_users(server) == 0 and vendor.messages == []

    vendor.fail(None)
    post(server, "/signup", {"phone": phone, "password": PASSWORD})
    token = verify(server, phone, vendor.last(phone).code).json()["access_token"]
    before = user_row(server, phone)
    later()
    vendor.fail("server_error")
    body = assert_error(post(server, "/otp", {"phone": phone}), 422, "sms_send_failed")
    assert body["msg"].startswith("Error sending confirmation OTP to provider: "), body
    body = assert_error(put_user(server, token, {"phone": other}), 422, "sms_send_failed")
    assert body["msg"].startswith("Error sending phone_change OTP to provider: "), body
    resp = httpx.get(server.url + "/reauthenticate", headers={"Authorization": f"Bearer {token}"})
    body = assert_error(resp, 422, "sms_send_failed")
    assert body["msg"].startswith("Error sending reauthentication OTP to provider: "), body
    after = user_row(server, phone)
    for column in ("confirmation_token", "confirmation_sent_at", "phone_change", "phone_change_token",
                   "phone_change_sent_at", "reauthentication_token", "reauthentication_sent_at"):
        assert after[column] == before[column], column
    assert rows(server, "SELECT * FROM one_time_tokens WHERE user_id = $1", after["id"]) == []
    assert len(vendor.to(phone)) == 1


def test_whatsapp_through_twilio(twilio):
    server, vendor = twilio()
    phone = untested_number()
    resp = post(server, "/otp", {"phone": phone, "channel": "whatsapp"})
    assert resp.status_code == 200, resp.text
    sms = vendor.last(phone)
    assert sms.channel == "whatsapp" and sms.fields["To"] == f"whatsapp:+{phone}"
    assert verify(server, phone, sms.code).status_code == 200


@pytest.mark.parametrize("template, expected", [
    ("{{ .Code }} is your Acme code", "{code} is your Acme code"),  # Go, as upstream's setting
    ("Acme: {{ Code }}", "Acme: {code}"),  # Jinja
])
def test_sms_template_and_code_length(twilio, template, expected):
    server, vendor = twilio(GOTRUE_SMS_TEMPLATE=template, GOTRUE_SMS_OTP_LENGTH="8")
    phone = untested_number()
    post(server, "/signup", {"phone": phone, "password": PASSWORD})
    sms = vendor.last(phone)
    assert re.fullmatch(r"\d{8}", sms.code) and sms.text == expected.format(code=sms.code)
    assert verify(server, phone, sms.code).status_code == 200


def test_a_broken_template_is_upstreams_500(twilio):
    server, vendor = twilio(GOTRUE_SMS_TEMPLATE="Code {{ .Code ")
    phone = untested_number()
    assert_error(post(server, "/signup", {"phone": phone, "password": PASSWORD}), 500, "unexpected_failure",
                 "error generating sms template")
    assert count_users(server) == 0 and vendor.messages == []


def test_code_lifetime(twilio):
    server, vendor = twilio(GOTRUE_SMS_OTP_EXP="30")
    phone = untested_number()
    post(server, "/signup", {"phone": phone, "password": PASSWORD})
    code = vendor.last(phone).code
    later(31)
    assert_error(verify(server, phone, code), 403, "otp_expired", OTP_INVALID)
    later(30)
    assert post(server, "/resend", {"type": "sms", "phone": phone}).status_code == 200
    assert verify(server, phone, vendor.last(phone).code).status_code == 200


def test_sms_budget_counts_real_texts_only(twilio):
    server, vendor = twilio(GOTRUE_RATE_LIMIT_SMS_SENT="2", GOTRUE_SMS_TEST_OTP=f"{fresh_number()}:{CODE}")
    for _ in range(2):
        assert post(server, "/otp", {"phone": untested_number()}).status_code == 200
    phone = untested_number()
    assert_error(post(server, "/otp", {"phone": phone}), 429, "over_sms_send_rate_limit", "SMS rate limit exceeded")
    assert user_row(server, phone) is None and len(vendor.messages) == 2
    # a test number sends nothing and spends nothing
    test_phone = server.settings.sms.test_otp and next(iter(server.settings.sms.test_otp))
    assert post(server, "/otp", {"phone": test_phone}).status_code == 200


def test_sms_autoconfirm_skips_the_budget(twilio):
    server, vendor = twilio(GOTRUE_RATE_LIMIT_SMS_SENT="1", GOTRUE_SMS_AUTOCONFIRM="true")
    phones = [untested_number() for _ in range(3)]
    for phone in phones:
        resp = post(server, "/otp", {"phone": phone})  # signs up confirmed, then texts the sign-in code
        assert resp.status_code == 200 and resp.json() == {"message_id": vendor.last(phone).id}, resp.text
    assert len(vendor.messages) == 3
    assert verify(server, phones[2], vendor.last(phones[2]).code).status_code == 200


# --- through the dev outbox -------------------------------------------------------------------


def test_dev_outbox_keeps_the_codes_of_every_flow(make_server, backend):
    server = make_server(backend, **PHONE, GOTRUE_SMS_MAX_FREQUENCY="1ms")
    phone, new = untested_number(), untested_number()
    resp = post(server, "/signup", {"phone": phone, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    [entry] = outbox(server, phone)
    assert entry["kind"] == "sms" and entry["to"] == phone and entry["text"] == f"Your code is {entry['code']}"
    token = verify(server, phone, entry["code"]).json()["access_token"]
    assert post(server, "/otp", {"phone": phone}).json() == {"message_id": outbox(server, phone)[0]["id"]}
    assert verify(server, phone, outbox_code(server, phone)).status_code == 200
    assert put_user(server, token, {"phone": new}).status_code == 200
    assert verify(server, new, outbox_code(server, new), "phone_change").status_code == 200
    assert len(outbox(server, phone)) == 2 and len(outbox(server, new)) == 1


def test_a_code_signs_in_once_even_when_raced(twilio):
    from helpers import concurrently

    server, vendor = twilio()
    phone = untested_number()
    post(server, "/signup", {"phone": phone, "password": PASSWORD})
    body = {"type": "sms", "phone": phone, "token": vendor.last(phone).code}
    statuses = sorted(r.status_code for r in concurrently(server, "/verify", [body] * 4))
    assert statuses == [200, 403, 403, 403], statuses
    assert len(rows(server, "SELECT id FROM sessions")) == 1


# --- every vendor -------------------------------------------------------------------------------


@pytest.mark.parametrize("name, refusal", [
    ("twilio", "auth"), ("twilio_verify", "invalid_to"), ("messagebird", "no_balance"), ("textlocal", "auth"),
    ("vonage", "throttled"),
])
def test_each_vendor_signs_up_and_in_and_refuses_with_its_own_words(sms_vendor, make_server, backend, name,
                                                                     refusal):
    vendor = sms_vendor(name)
    server = make_server(backend, **PHONE, **vendor.env(), GOTRUE_SMS_MAX_FREQUENCY="1ms")
    phone = untested_number()
    assert post(server, "/signup", {"phone": phone, "password": PASSWORD}).status_code == 200
    resp = verify(server, phone, vendor.last(phone).code)
    assert resp.status_code == 200, resp.text
    resp = post(server, "/otp", {"phone": phone})
    assert resp.status_code == 200, resp.text
    assert len(vendor.to(phone)) == 2
    assert verify(server, phone, vendor.last(phone).code).status_code == 200

    vendor.fail(refusal)
    other = untested_number()
    body = assert_error(post(server, "/signup", {"phone": other, "password": PASSWORD}), 422, "sms_send_failed")
    prefix = "Error sending confirmation OTP to provider: "
    assert body["msg"].startswith(prefix) and len(body["msg"]) > len(prefix), body
    assert user_row(server, other) is None


# --- twilio_verify: the code is Twilio's, and Twilio checks it ------------------------------------


def test_twilio_verify_checks_every_code_at_twilio(sms_vendor, make_server, backend):
    vendor = sms_vendor("twilio_verify")
    server = make_server(backend, **PHONE, **vendor.env(), GOTRUE_SMS_MAX_FREQUENCY="1ms",
                         GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION="true")
    phone, new = untested_number(), untested_number()
    assert post(server, "/signup", {"phone": phone, "password": PASSWORD, "channel": "whatsapp"}).status_code == 200
    sms = vendor.last(phone)
    assert sms.channel == "whatsapp" and sms.fields["To"] == f"+{phone}"  # no whatsapp: prefix with Verify
    wrong = "000000" if sms.code != "000000" else "111111"
    assert_error(verify(server, phone, wrong), 403, "otp_expired", OTP_INVALID)
    resp = verify(server, phone, sms.code)
    assert resp.status_code == 200, resp.text
    assert vendor.checks[-2:] == [(f"+{phone}", wrong, "pending"), (f"+{phone}", sms.code, "approved")]
    token = resp.json()["access_token"]

    assert put_user(server, token, {"phone": new}).status_code == 200
    resp = verify(server, new, vendor.last(new).code, "phone_change")
    assert resp.status_code == 200 and resp.json()["user"]["phone"] == new, resp.text
    assert vendor.checks[-1] == (f"+{new}", vendor.last(new).code, "approved")
    token = resp.json()["access_token"]

    resp = httpx.get(server.url + "/reauthenticate", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    nonce = vendor.last(new).code
    later(25 * 3600)
    # upstream: a refused nonce with Twilio Verify is 403 otp_expired
    assert_error(put_user(server, token, {"password": "verify-pass-1", "nonce": wrong}), 403, "otp_expired")
    assert put_user(server, token, {"password": "verify-pass-1", "nonce": nonce}).status_code == 200
    assert vendor.checks[-1] == (f"+{new}", nonce, "approved")


def test_otp_with_autoconfirm_confirms_an_unconfirmed_number_then_texts_the_code(twilio):
    server, vendor = twilio(GOTRUE_SMS_AUTOCONFIRM="true")
    phone = untested_number()
    assert post(server, "/signup", {"phone": phone, "password": PASSWORD}).status_code == 200
    from helpers import sql

    sql(server, "UPDATE users SET phone_confirmed_at = NULL WHERE phone = $1", phone)  # from before autoconfirm
    # /signup keeps refusing it (gotrue-lite does not confirm it on a stranger's word) ...
    assert_error(post(server, "/signup", {"phone": phone, "password": "other-pass-1"}), 422, "user_already_exists")
    assert user_row(server, phone)["phone_confirmed_at"] is None
    # ... /otp confirms it and texts a code, which must still be verified
    resp = post(server, "/otp", {"phone": phone})
    assert resp.status_code == 200 and resp.json() == {"message_id": vendor.last(phone).id}, resp.text
    assert verify(server, phone, vendor.last(phone).code).status_code == 200
    assert post(server, "/token?grant_type=password", {"phone": phone, "password": PASSWORD}).status_code == 200
