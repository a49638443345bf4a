"""The SMS vendors' modules against local fakes that speak each vendor's wire format
(tests/sms_vendors.py): what goes over the wire, each answer and error shape, timeouts, and the
choice of sender from the settings."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from urllib.parse import parse_qsl

import pytest

from conftest import BASE_ENV
from gotrue_lite.config import load_settings
from gotrue_lite.outbound import new_client
from gotrue_lite.sms import SmsError
from gotrue_lite.sms.factory import build
from sms_vendors import FakeVendor, sms_vendor  # noqa: F401

PHONE = "15551234567"


def settings_for(tmp_path, **env):
    return load_settings(environ={**BASE_ENV, "GOTRUE_API_HOST": "127.0.0.1", **env}, dotenv=False, cwd=tmp_path)


async def _with_sms(settings, action):
    async with new_client() as http:
        return await action(build(settings, http))


def send(tmp_path, env: dict, phone: str = PHONE, message: str = "Your code is 123456",
         channel: str = "sms", otp: str = "123456") -> str:
    """What the flows do: ctx.sms.send(...) with the Sms built from these settings."""
    return asyncio.run(_with_sms(settings_for(tmp_path, **env), lambda sms: sms.send(phone, message, channel, otp)))


def refused(tmp_path, env: dict, **kwargs) -> str:
    with pytest.raises(SmsError) as caught:
        send(tmp_path, env, **kwargs)
    return str(caught.value)


def raw_body(vendor: FakeVendor) -> list[tuple[str, str]]:
    """The form of the last request, in the order it was posted."""
    return parse_qsl(vendor.requests[-1].raw.decode("ascii"), keep_blank_values=True, strict_parsing=True)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- twilio -------------------------------------------------------------------------------------


def test_twilio_sms_goes_to_the_messages_api_with_basic_auth_and_upstreams_fields(sms_vendor, tmp_path):
    vendor = sms_vendor("twilio")
    sid = send(tmp_path, vendor.env(), message="Your code is 123456")
    (message,) = vendor.messages
    assert sid == message.id and sid.startswith("SM")
    path, headers, form, raw = vendor.requests[-1]
    assert path == f"/2010-04-01/Accounts/{vendor.account_sid}/Messages.json"
    assert headers["Authorization"] == basic(vendor.account_sid, vendor.auth_token)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    # Go's url.Values.Encode: keys sorted; the number gets its '+'; From is the service SID.
    assert raw_body(vendor) == [("Body", "Your code is 123456"), ("Channel", "sms"),
                                ("From", vendor.sender), ("To", "+" + PHONE)]
    assert message.phone == PHONE and message.channel == "sms" and message.code == "123456"


def test_twilio_wrong_credentials_give_twilios_authenticate_error(sms_vendor, tmp_path):
    vendor = sms_vendor("twilio")
    env = {**vendor.env(), "GOTRUE_SMS_TWILIO_AUTH_TOKEN": "wrong"}
    assert refused(tmp_path, env) == "Authenticate More information: https://www.twilio.com/docs/errors/20003"
    assert vendor.messages == []


@pytest.mark.parametrize("shape, text", [
    ("invalid_to", f"Invalid 'To' Phone Number: +{PHONE} More information: https://www.twilio.com/docs/errors/21211"),
    ("rate_limited", "Too Many Requests More information: https://www.twilio.com/docs/errors/20429"),
    ("server_error", "An internal server error has occurred More information: https://www.twilio.com/docs/errors/20500"),
    ("failed", "twilio error: Unknown error 30008 for message SM"),
    ("undelivered", "twilio error: Unknown error 30008 for message SM"),
    ("html", "invalid character '<' looking for beginning of value"),
    ("not_json", "invalid character 'q' looking for beginning of value"),
])
def test_twilio_error_shapes_become_upstreams_texts(sms_vendor, tmp_path, shape, text):
    vendor = sms_vendor("twilio")
    vendor.fail(shape)
    message = refused(tmp_path, vendor.env())
    if shape in ("failed", "undelivered"):
        assert message.startswith(text) and len(message) == len(text) + 32  # the message's SID
    else:
        assert message == text
    assert vendor.messages == []


def test_twilio_whatsapp_prefixes_a_numeric_sender_and_the_recipient(sms_vendor, tmp_path):
    vendor = sms_vendor("twilio", sender="+1 555 000 1111")
    send(tmp_path, vendor.env(), channel="whatsapp", message="Your code is 654321", otp="654321")
    assert raw_body(vendor) == [("Body", "Your code is 654321"), ("Channel", "whatsapp"),
                                ("From", "whatsapp:+1 555 000 1111"), ("To", f"whatsapp:+{PHONE}")]
    (message,) = vendor.messages
    assert message.channel == "whatsapp" and message.code == "654321"


def test_twilio_whatsapp_keeps_a_messaging_service_sender_unprefixed(sms_vendor, tmp_path):
    vendor = sms_vendor("twilio")  # MG… service SID
    send(tmp_path, vendor.env(), channel="whatsapp")
    assert dict(raw_body(vendor))["From"] == vendor.sender
    assert dict(raw_body(vendor))["To"] == f"whatsapp:+{PHONE}"


def test_twilio_whatsapp_with_a_content_sid_sends_the_template_and_the_code_not_the_text(sms_vendor, tmp_path):
    vendor = sms_vendor("twilio", sender="15550001111", content_sid="HX" + "9" * 32)
    send(tmp_path, vendor.env(), channel="whatsapp", message="Your code is 777111", otp="777111")
    assert raw_body(vendor) == [("Channel", "whatsapp"), ("ContentSid", vendor.content_sid),
                                ("ContentVariables", '{"1": "777111"}'), ("From", "whatsapp:15550001111"),
                                ("To", f"whatsapp:+{PHONE}")]
    (message,) = vendor.messages
    assert message.code == "777111" and message.text == ""
    # A content SID only matters for WhatsApp: an SMS still carries its text.
    send(tmp_path, vendor.env(), channel="sms", message="Your code is 123456")
    assert dict(raw_body(vendor)) == {"Body": "Your code is 123456", "Channel": "sms", "From": "15550001111",
                                      "To": f"+{PHONE}"}


def test_twilio_refuses_an_unknown_channel_without_calling_twilio(sms_vendor, tmp_path):
    vendor = sms_vendor("twilio")
    assert refused(tmp_path, vendor.env(), channel="pigeon") == 'channel type "pigeon" is not supported for Twilio'
    assert vendor.requests == []


def test_form_encoding_is_gos(sms_vendor, tmp_path):
    # url.Values.Encode: keys sorted, space as '+', everything but [A-Za-z0-9-_.~] escaped.
    vendor = sms_vendor("twilio")
    send(tmp_path, vendor.env(), message="Code: 123456 & more = ü~")
    path, headers, form, raw = vendor.requests[-1]
    assert raw == (b"Body=Code%3A+123456+%26+more+%3D+%C3%BC~&Channel=sms&From=" + vendor.sender.encode()
                   + b"&To=%2B" + PHONE.encode())
    assert form["Body"] == "Code: 123456 & more = ü~"


# --- twilio_verify ------------------------------------------------------------------------------


def verify(tmp_path, env: dict, code: str, phone: str = PHONE) -> bool:
    return asyncio.run(_with_sms(settings_for(tmp_path, **env), lambda sms: sms.verify(phone, code)))


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_twilio_verify_starts_a_verification_and_twilio_checks_the_code(sms_vendor, tmp_path, channel):
    vendor = sms_vendor("twilio_verify")
    # The template's text and our code are not sent: Twilio writes and checks its own.
    sid = send(tmp_path, vendor.env(), message="Your code is 111111", otp="111111", channel=channel)
    (message,) = vendor.messages
    assert sid == message.id and sid.startswith("VE") and message.channel == channel
    path, headers, form, raw = vendor.requests[-1]
    assert path == f"/v2/Services/{vendor.service_sid}/Verifications"
    assert headers["Authorization"] == basic(vendor.account_sid, vendor.auth_token)
    assert raw_body(vendor) == [("Channel", channel), ("To", "+" + PHONE)]  # no whatsapp: prefix
    assert message.text == f"Your verification code is: {message.code}"

    assert verify(tmp_path, vendor.env(), "000000" if message.code != "000000" else "999999") is False
    assert verify(tmp_path, vendor.env(), message.code) is True
    path, headers, form, raw = vendor.requests[-1]
    assert path == f"/v2/Services/{vendor.service_sid}/VerificationCheck"
    assert headers["Authorization"] == basic(vendor.account_sid, vendor.auth_token)
    assert raw_body(vendor) == [("Code", message.code), ("To", "+" + PHONE)]
    # Approved once: Twilio has forgotten the verification (404), which is a refusal too.
    assert verify(tmp_path, vendor.env(), message.code) is False
    assert [status for _, _, status in vendor.checks] == ["pending", "approved", "404"]


def test_twilio_verify_says_it_checks_codes_itself(sms_vendor, tmp_path):
    vendor = sms_vendor("twilio_verify")

    async def check(sms):
        return sms.configured, sms.verifies_otp, sms.sender.name

    assert asyncio.run(_with_sms(settings_for(tmp_path, **vendor.env()), check)) == (True, True, "twilio_verify")


@pytest.mark.parametrize("shape, text", [
    ("auth", "Authenticate More information: https://www.twilio.com/docs/errors/20003"),
    ("invalid_to", f"Invalid parameter `To`: +{PHONE} More information: https://www.twilio.com/docs/errors/60200"),
    ("max_attempts", "Max send attempts reached More information: https://www.twilio.com/docs/errors/60203"),
    ("server_error", "An internal server error has occurred More information: https://www.twilio.com/docs/errors/20500"),
    ("html", "invalid character '<' looking for beginning of value"),
])
def test_twilio_verify_send_error_shapes(sms_vendor, tmp_path, shape, text):
    vendor = sms_vendor("twilio_verify")
    vendor.fail(shape)
    assert refused(tmp_path, vendor.env()) == text
    assert vendor.messages == []


def test_twilio_verify_wrong_service_is_twilios_404(sms_vendor, tmp_path):
    vendor = sms_vendor("twilio_verify")
    env = {**vendor.env(), "GOTRUE_SMS_TWILIO_VERIFY_MESSAGE_SERVICE_SID": "VA" + "0" * 32}
    assert refused(tmp_path, env) == (f"The requested resource /Services/VA{'0' * 32}/Verifications was not found "
                                      "More information: https://www.twilio.com/docs/errors/20404")


@pytest.mark.parametrize("shape", ["auth", "max_attempts", "not_found", "server_error", "html"])
def test_twilio_verify_check_failures_are_refusals_and_logged(sms_vendor, tmp_path, caplog, shape):
    vendor = sms_vendor("twilio_verify")
    send(tmp_path, vendor.env())
    code = vendor.last(PHONE).code
    vendor.fail(shape)
    with caplog.at_level(logging.INFO, logger="gotrue_lite.sms"):
        assert verify(tmp_path, vendor.env(), code) is False
    assert any(r.getMessage().startswith(f"twilio_verify: code for +{PHONE} not accepted: ") for r in caplog.records)


def test_twilio_verify_check_that_stalls_is_a_refusal_after_the_timeout(sms_vendor, tmp_path):
    vendor = sms_vendor("twilio_verify")
    send(tmp_path, vendor.env())
    vendor.stall(30)
    started = time.monotonic()
    assert verify(tmp_path, {**vendor.env(), "GOTRUE_INTERNAL_HTTP_TIMEOUT": "500ms"}, vendor.last(PHONE).code) is False
    assert time.monotonic() - started < 10


# --- messagebird ----------------------------------------------------------------------------------


def test_messagebird_sends_with_its_access_key_and_upstreams_fields(sms_vendor, tmp_path):
    vendor = sms_vendor("messagebird")
    message_id = send(tmp_path, vendor.env(), message="Your code is 123456 ✓")
    (message,) = vendor.messages
    assert message_id == message.id and len(message_id) == 32
    path, headers, form, raw = vendor.requests[-1]
    assert path == "/messages" and headers["Authorization"] == f"AccessKey {vendor.access_key}"
    assert raw_body(vendor) == [("body", "Your code is 123456 ✓"), ("datacoding", "unicode"),
                                ("originator", "Acme"), ("recipients", PHONE), ("type", "sms")]
    assert message.code == "123456"


@pytest.mark.parametrize("shape, text", [
    ("auth", "Request not allowed (incorrect access_key)"),
    ("no_recipients", "no (correct) recipients found"),
    ("no_balance", "Not enough balance"),
    ("empty_errors", "%!v(PANIC=Error method: runtime error: index out of range [0] with length 0)"),
    ("not_sent", "messagebird error: total sent count is 0"),
    # Any status but 400/401/403/422 is read as a message, so a 500 is "nothing sent".
    ("server_error", "messagebird error: total sent count is 0"),
    ("html", "invalid character '<' looking for beginning of value"),
])
def test_messagebird_error_shapes(sms_vendor, tmp_path, shape, text):
    vendor = sms_vendor("messagebird")
    vendor.fail(shape)
    assert refused(tmp_path, vendor.env()) == text
    assert vendor.messages == []


def test_messagebird_wrong_key_is_refused_by_the_fake(sms_vendor, tmp_path):
    vendor = sms_vendor("messagebird")
    env = {**vendor.env(), "GOTRUE_SMS_MESSAGEBIRD_ACCESS_KEY": "test_wrong"}
    assert refused(tmp_path, env) == "Request not allowed (incorrect access_key)"


# --- textlocal ------------------------------------------------------------------------------------


def test_textlocal_sends_the_key_in_the_form_and_returns_no_id(sms_vendor, tmp_path):
    vendor = sms_vendor("textlocal")
    assert send(tmp_path, vendor.env(), phone="919876543210") == ""  # upstream reads no id on success
    (message,) = vendor.messages
    path, headers, form, raw = vendor.requests[-1]
    assert path == "/send" and "Authorization" not in headers
    assert raw_body(vendor) == [("apikey", vendor.api_key), ("message", "Your code is 123456"),
                                ("numbers", "919876543210"), ("sender", "ACMEIN")]
    assert message.phone == "919876543210" and message.code == "123456"


@pytest.mark.parametrize("shape, text", [
    ("auth", "textlocal error: Invalid login details (code: 3) message "),
    ("no_recipients", "textlocal error: No recipients specified (code: 4) message "),
    ("template", "textlocal error: Invalid template (code: 80) template message: Your code is 123456"),
    ("failure_with_message", "textlocal error: You cannot send message at this time (code: 192) message "),
    ("empty_errors", "textlocal error: status 'failure' without errors message "),
    ("html", "invalid character '<' looking for beginning of value"),
])
def test_textlocal_error_shapes(sms_vendor, tmp_path, shape, text):
    vendor = sms_vendor("textlocal")
    vendor.fail(shape)
    message = refused(tmp_path, vendor.env())
    if shape == "failure_with_message":
        # The id Textlocal gave the refused message ends the text.
        assert message.startswith(text) and message[len(text):].isdigit()
    else:
        assert message == text
    assert vendor.messages == []


# --- vonage ---------------------------------------------------------------------------------------


def test_vonage_sends_key_and_secret_in_the_form(sms_vendor, tmp_path):
    vendor = sms_vendor("vonage")
    message_id = send(tmp_path, vendor.env())
    (message,) = vendor.messages
    assert message_id == message.id and len(message_id) == 16
    path, headers, form, raw = vendor.requests[-1]
    assert path == "/sms/json" and "Authorization" not in headers
    assert raw_body(vendor) == [("api_key", vendor.api_key), ("api_secret", vendor.api_secret), ("from", "Acme"),
                                ("text", "Your code is 123456"), ("to", PHONE)]


def test_vonage_marks_non_ascii_text_unicode(sms_vendor, tmp_path):
    vendor = sms_vendor("vonage")
    send(tmp_path, vendor.env(), message="Ваш код 123456")
    assert dict(raw_body(vendor))["type"] == "unicode"
    assert vendor.last(PHONE).text == "Ваш код 123456"


@pytest.mark.parametrize("shape, text", [
    ("auth", "vonage error: Bad Credentials (status: 4) for message "),
    ("throttled", "vonage error: Throttled (status: 1) for message "),
    ("invalid_number", "vonage error: Invalid to param (status: 3) for message "),
    ("empty", "vonage error: Internal Error"),
    ("html", "invalid character '<' looking for beginning of value"),
])
def test_vonage_error_shapes(sms_vendor, tmp_path, shape, text):
    vendor = sms_vendor("vonage")
    vendor.fail(shape)
    assert refused(tmp_path, vendor.env()) == text
    assert vendor.messages == []


@pytest.mark.parametrize("vendor_name", ["messagebird", "textlocal", "vonage"])
def test_sms_only_vendors_refuse_whatsapp_without_calling_out(sms_vendor, tmp_path, vendor_name):
    vendor = sms_vendor(vendor_name)
    label = {"messagebird": "Messagebird", "textlocal": "TextLocal", "vonage": "Vonage"}[vendor_name]
    assert refused(tmp_path, vendor.env(), channel="whatsapp") == f'channel type "whatsapp" is not supported for {label}'
    assert vendor.requests == []


@pytest.mark.parametrize("vendor_name", ["twilio", "twilio_verify", "messagebird", "textlocal", "vonage"])
def test_every_vendor_times_out_into_an_sms_error(sms_vendor, tmp_path, vendor_name):
    vendor = sms_vendor(vendor_name)
    vendor.stall(30)
    started = time.monotonic()
    message = refused(tmp_path, {**vendor.env(), "GOTRUE_INTERNAL_HTTP_TIMEOUT": "500ms"})
    assert time.monotonic() - started < 10
    assert message.startswith(f'Post "{vendor.url}/') and "context deadline exceeded" in message


# --- the settings: which sender, incomplete credentials, the base URL, the timeout -------------


@pytest.mark.parametrize("vendor_name, env, problem", [
    ("twilio", {"GOTRUE_SMS_TWILIO_ACCOUNT_SID": ""}, "missing Twilio account SID"),
    ("twilio", {"GOTRUE_SMS_TWILIO_AUTH_TOKEN": ""}, "missing Twilio auth token"),
    ("twilio", {"GOTRUE_SMS_TWILIO_MESSAGE_SERVICE_SID": ""}, "missing Twilio message service SID or Twilio phone number"),
    ("twilio_verify", {"GOTRUE_SMS_TWILIO_VERIFY_ACCOUNT_SID": ""}, "missing Twilio account SID"),
    ("twilio_verify", {"GOTRUE_SMS_TWILIO_VERIFY_AUTH_TOKEN": ""}, "missing Twilio auth token"),
    ("twilio_verify", {"GOTRUE_SMS_TWILIO_VERIFY_MESSAGE_SERVICE_SID": ""},
     "missing Twilio message service SID or Twilio phone number"),
    ("messagebird", {"GOTRUE_SMS_MESSAGEBIRD_ACCESS_KEY": ""}, "missing Messagebird access key"),
    ("messagebird", {"GOTRUE_SMS_MESSAGEBIRD_ORIGINATOR": ""}, "missing Messagebird originator"),
    ("textlocal", {"GOTRUE_SMS_TEXTLOCAL_API_KEY": ""}, "missing Textlocal API key"),
    ("textlocal", {"GOTRUE_SMS_TEXTLOCAL_SENDER": ""}, "missing Textlocal sender"),
    ("vonage", {"GOTRUE_SMS_VONAGE_API_KEY": ""}, "missing Vonage API key"),
    ("vonage", {"GOTRUE_SMS_VONAGE_API_SECRET": ""}, "missing Vonage API secret"),
    ("vonage", {"GOTRUE_SMS_VONAGE_FROM": ""}, "missing Vonage 'from' parameter"),
])
def test_incomplete_credentials_leave_no_provider(sms_vendor, tmp_path, caplog, vendor_name, env, problem):
    vendor = sms_vendor(vendor_name)
    settings = settings_for(tmp_path, **{**vendor.env(), **env})

    async def check(sms):
        assert not sms.configured and sms.problem == problem
        with pytest.raises(SmsError, match="^Unable to get SMS provider$"):
            await sms.send(PHONE, "Your code is 123456", "sms", "123456")

    with caplog.at_level(logging.WARNING, logger="gotrue_lite.sms"):
        asyncio.run(_with_sms(settings, check))
    assert vendor.requests == []
    assert any(problem in r.getMessage() for r in caplog.records)


def test_an_unknown_provider_is_no_provider(tmp_path):
    async def check(sms):
        assert not sms.configured and sms.problem == "sms Provider carrier-pigeon could not be found"

    asyncio.run(_with_sms(settings_for(tmp_path, GOTRUE_SMS_PROVIDER="carrier-pigeon"), check))


def test_without_the_base_url_setting_the_vendors_own_origin_is_used(tmp_path):
    env = {"GOTRUE_SMS_PROVIDER": "twilio", "GOTRUE_SMS_TWILIO_ACCOUNT_SID": "AC1",
           "GOTRUE_SMS_TWILIO_AUTH_TOKEN": "t", "GOTRUE_SMS_TWILIO_MESSAGE_SERVICE_SID": "MG1"}

    async def check(sms):
        return sms.sender._url

    assert asyncio.run(_with_sms(settings_for(tmp_path, **env), check)) == \
        "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"


def test_the_base_url_setting_keeps_a_gateways_path_prefix(sms_vendor, tmp_path):
    vendor = sms_vendor("twilio", prefix="/gateway")
    send(tmp_path, {**vendor.env(), "GOTRUE_LITE_SMS_API_URL": vendor.url + "/gateway/"})
    assert vendor.requests[-1][0] == f"/gateway/2010-04-01/Accounts/{vendor.account_sid}/Messages.json"
    assert len(vendor.messages) == 1


def test_a_stalling_vendor_gives_an_sms_error_after_the_timeout_not_a_hang(sms_vendor, tmp_path):
    vendor = sms_vendor("twilio")
    vendor.stall(30)
    started = time.monotonic()
    message = refused(tmp_path, {**vendor.env(), "GOTRUE_INTERNAL_HTTP_TIMEOUT": "1s"})
    assert time.monotonic() - started < 10
    url = f"{vendor.url}/2010-04-01/Accounts/{vendor.account_sid}/Messages.json"
    assert message.startswith(f'Post "{url}": context deadline exceeded')


def test_an_unreachable_vendor_gives_an_sms_error(sms_vendor, tmp_path):
    vendor = sms_vendor("twilio")
    env = vendor.env()
    vendor.stop()
    message = refused(tmp_path, env)
    assert message.startswith(f'Post "{vendor.url}/2010-04-01/Accounts/') and "Cannot connect" in message


@pytest.mark.parametrize("env, name", [
    ({"GOTRUE_INTERNAL_HTTP_TIMEOUT": "10"}, "GOTRUE_INTERNAL_HTTP_TIMEOUT"),  # Go wants a unit
    ({"GOTRUE_LITE_SMS_API_URL": "127.0.0.1:8025"}, "GOTRUE_LITE_SMS_API_URL"),
    ({"GOTRUE_LITE_SMS_API_URL": "ftp://gateway.test"}, "GOTRUE_LITE_SMS_API_URL"),
])
def test_bad_timeout_or_base_url_stops_the_start(tmp_path, env, name):
    from gotrue_lite.config import ConfigError

    with pytest.raises(ConfigError, match=name):
        settings_for(tmp_path, **env)


def test_secrets_of_the_vendors_stay_out_of_the_settings_repr(tmp_path):
    env = {"GOTRUE_SMS_TWILIO_AUTH_TOKEN": "tw-secret-1", "GOTRUE_SMS_TWILIO_VERIFY_AUTH_TOKEN": "tv-secret-2",
           "GOTRUE_SMS_MESSAGEBIRD_ACCESS_KEY": "mb-secret-3", "GOTRUE_SMS_TEXTLOCAL_API_KEY": "tl-secret-4",
           "GOTRUE_SMS_VONAGE_API_SECRET": "vo-secret-5"}
    text = repr(settings_for(tmp_path, **env))
    assert not [value for value in env.values() if value in text]
