"""Tests for gotrue_lite.config: sources and precedence, parsers, validation, the sample file."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat, PublicFormat, NoEncryption

from gotrue_lite.config import ConfigError, Rate, Settings, load_settings, parse_duration
from helpers import b64url

REPO = Path(__file__).resolve().parent.parent


def load(tmp_path, env=None, toml=None, dotenv=None, **kwargs):
    """Load with only what the test supplies: never the machine's environment or files."""
    if toml is not None:
        (tmp_path / "gotrue_lite.toml").write_text(toml, encoding="utf-8")
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv, encoding="utf-8")
    return load_settings(environ=env or {}, cwd=tmp_path, **kwargs)


def error_of(tmp_path, **kwargs) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- defaults -------------------------------------------------------------------------------


def test_defaults(tmp_path):
    s = load(tmp_path)
    assert isinstance(s, Settings)
    # No SMTP host, loopback: the development defaults (see test_development_defaults).
    assert s.site_url == "http://localhost:9999/_dev/welcome"
    assert s.mailer.autoconfirm is True
    assert s.log_level == logging.INFO
    assert (s.api.host, s.api.port) == ("127.0.0.1", 9999)
    assert s.api.external_url == "http://localhost:9999"
    assert s.api.max_request_duration == timedelta(seconds=10)
    assert s.db.url == "sqlite:///gotrue_lite.db"
    assert s.db.driver == "sqlite"
    assert s.db.sqlite_path == str(tmp_path.resolve() / "gotrue_lite.db")
    assert s.db.namespace == "auth"
    assert s.jwt.secret is None
    assert s.jwt.exp == 3600
    assert s.jwt.aud == s.jwt.default_group_name == "authenticated"
    assert s.jwt.admin_roles == ("service_role", "supabase_admin")
    assert s.jwt.issuer == ""  # upstream: no iss unless GOTRUE_JWT_ISSUER is set
    assert s.jwt.keys == ()
    assert s.jwt.valid_methods == ("HS256",)
    assert s.external.email.enabled and s.external.email.magic_link_enabled
    assert not s.external.phone.enabled and not s.external.anonymous_users.enabled
    assert s.external.flow_state_expiry_duration == timedelta(seconds=300)
    assert set(s.external.providers) >= {"github", "google", "apple", "linkedin_oidc", "x", "vercel_marketplace"}
    assert s.external.providers["github"].enabled is False
    assert s.mailer.otp_exp == 86400 and s.mailer.otp_length == 6
    assert s.mailer.secure_email_change_enabled is True
    assert s.mailer.urlpaths.recovery == "/verify"
    assert s.mailer.subjects["magic_link"] == ""
    assert s.mailer.notifications["password_changed"] is False
    assert s.mailer.template_max_age == timedelta(minutes=10)
    assert s.smtp.port == 587 and s.smtp.max_frequency == timedelta(minutes=1)
    assert s.sms.otp_exp == 60 and s.sms.template == "Your code is {{ .Code }}"
    assert s.sms.test_otp_valid_until is None
    assert s.password.min_length == 6
    assert s.security.refresh_token_rotation_enabled is True
    assert s.security.refresh_token_reuse_interval == 0
    assert s.security.captcha_provider == "hcaptcha"
    assert (s.sessions.timebox, s.sessions.inactivity_timeout, s.sessions.allow_low_aal) == (None, None, None)
    assert s.rate_limit.email_sent == Rate(30.0, timedelta(hours=1), False)
    assert s.rate_limit.token_refresh == 150.0
    assert s.mfa.challenge_expiry_duration == 300 and s.mfa.rate_limit_challenge_and_verify == 15.0
    assert s.hooks["send_email"].enabled is False
    assert s.lite.dev_mailbox is True and s.lite.secret_file == ""
    assert s.config_file is None


def test_settings_are_frozen_dataclasses(tmp_path):
    s = load(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.api.port = 1  # type: ignore[misc]
    changed = dataclasses.replace(s, api=dataclasses.replace(s.api, port=1234))
    assert changed.api.port == 1234 and s.api.port == 9999


def test_secrets_stay_out_of_repr(tmp_path):
    s = load(tmp_path, env={"GOTRUE_JWT_SECRET": "x" * 40, "GOTRUE_SMTP_PASS": "hunter2-password"})
    assert s.jwt.secret == "x" * 40 and s.smtp.password == "hunter2-password"
    assert "x" * 40 not in repr(s) and "hunter2" not in repr(s)


# --- sources and precedence -----------------------------------------------------------------


def test_precedence_defaults_toml_dotenv_environment(tmp_path):
    toml = 'site_url = "http://toml.test"\n[jwt]\nexp = 100\naud = "toml"\nadmin_group_name = "toml"\n'
    dotenv = "GOTRUE_JWT_EXP=200\nGOTRUE_JWT_AUD=dotenv\n"
    s = load(tmp_path, env={"GOTRUE_JWT_EXP": "300"}, toml=toml, dotenv=dotenv)
    assert s.jwt.exp == 300  # environment beats .env and file
    assert s.jwt.aud == "dotenv"  # .env beats file
    assert s.jwt.admin_group_name == "toml"  # file beats default
    assert s.site_url == "http://toml.test"
    assert s.jwt.default_group_name == "authenticated"  # default


def test_precedence_is_per_logical_setting(tmp_path):
    s = load(tmp_path, env={"PORT": "8000"}, toml="[api]\nport = 9998\n")
    assert s.api.port == 8000
    s = load(tmp_path, dotenv="GOTRUE_API_PORT=7000\n", toml="[api]\nport = 9998\n")
    assert s.api.port == 7000
    s = load(tmp_path, env={"DATABASE_URL": "postgres://db/x"}, toml='[db]\nurl = "sqlite:///a.db"\n')
    assert s.db.driver == "postgres"


def test_dotenv_can_be_switched_off(tmp_path):
    (tmp_path / ".env").write_text("GOTRUE_JWT_EXP=200\n")
    assert load_settings(environ={}, cwd=tmp_path, dotenv=False).jwt.exp == 3600
    assert load_settings(environ={}, cwd=tmp_path).jwt.exp == 200


def test_dotenv_syntax(tmp_path):
    dotenv = "\n".join([
        "# a comment",
        "",
        "export GOTRUE_SITE_URL=http://dotenv.test  # trailing comment",
        "GOTRUE_JWT_AUD = 'single # not a comment'",
        'GOTRUE_SMS_TEMPLATE="Code: {{ .Code }}\\nbye"',
        "GOTRUE_JWT_ADMIN_GROUP_NAME=a#b",
        "GOTRUE_MAILER_SUBJECTS_INVITE=\"line one",
        "line two\"",
        "GOTRUE_SMTP_PASS='p$ss\"word'",
    ])
    s = load(tmp_path, dotenv=dotenv)
    assert s.site_url == "http://dotenv.test"
    assert s.jwt.aud == "single # not a comment"
    assert s.sms.template == "Code: {{ .Code }}\nbye"
    assert s.jwt.admin_group_name == "a#b"
    assert s.mailer.subjects["invite"] == "line one\nline two"
    assert s.smtp.password == 'p$ss"word'


def test_dotenv_malformed_line(tmp_path):
    message = error_of(tmp_path, dotenv="GOTRUE_JWT_EXP=1\nthis is not an assignment\n")
    assert "line 2" in message


def test_config_file_choice(tmp_path):
    other = tmp_path / "other.toml"
    other.write_text('site_url = "http://other.test"\n')
    load(tmp_path, toml='site_url = "http://default.test"\n')
    assert load(tmp_path).site_url == "http://default.test"
    assert load(tmp_path, env={"GOTRUE_LITE_CONFIG": "other.toml"}).site_url == "http://other.test"
    s = load_settings(other, environ={}, cwd=tmp_path)
    assert s.site_url == "http://other.test" and s.config_file == str(other)
    assert error_of(tmp_path, config_file=tmp_path / "missing.toml").startswith("GOTRUE_LITE_CONFIG:")
    assert error_of(tmp_path, env={"GOTRUE_LITE_CONFIG": "nope.toml"}).startswith("GOTRUE_LITE_CONFIG:")


def test_invalid_toml(tmp_path):
    assert error_of(tmp_path, toml="[api\n").startswith("GOTRUE_LITE_CONFIG:")


def test_toml_mapping(tmp_path):
    toml = """
rate_limit_email_sent = "10/1h"
[api]
external_url = "https://auth.example.com"
[db]
url = "postgres://u@h/d"
namespace = "custom"
[mailer.subjects]
confirmation = "Welcome"
[mailer.notifications]
password_changed_enabled = true
[external]
redirect_url = "http://after.test"
[external.github]
enabled = true
client_id = ["one", "two"]
[lite]
verify_confirmation_page = true
[sms]
test_otp = { "+49 123" = "123456" }
[smtp]
password = "from-file"
"""
    s = load(tmp_path, toml=toml)
    assert s.rate_limit.email_sent == Rate(10.0, timedelta(hours=1), True)
    assert (s.api.external_url, s.jwt.issuer) == ("https://auth.example.com", "")
    assert (s.db.driver, s.db.namespace) == ("postgres", "custom")
    assert s.mailer.subjects["confirmation"] == "Welcome"
    assert s.mailer.notifications["password_changed"] is True
    assert s.external.redirect_url == "http://after.test"
    assert s.external.providers["github"].enabled is True
    assert s.external.providers["github"].client_id == ("one", "two")
    assert s.lite.verify_confirmation_page is True
    assert s.sms.test_otp == {"49123": "123456"}
    assert s.smtp.password == "from-file"


def test_toml_env_syntax_strings_and_native_values_agree(tmp_path):
    native = load(tmp_path, toml="[mailer]\nautoconfirm = true\notp_exp = 60\n[smtp]\nmax_frequency = \"2m\"\n")
    strings = load(tmp_path, toml='[mailer]\nautoconfirm = "true"\notp_exp = "60"\n[smtp]\nmax_frequency = "2m"\n')
    assert native.mailer == strings.mailer and native.smtp == strings.smtp


def test_toml_error_names_the_env_variable(tmp_path):
    message = error_of(tmp_path, toml='[jwt]\nexp = "10x"\n')
    assert message.startswith(f"{JWT_EXP_EXPECTED}, got '10x'")
    assert "jwt.exp" in message
    assert error_of(tmp_path, toml="[api]\nport = true\n").startswith("PORT:")


def test_unknown_names_are_ignored_and_logged(tmp_path, caplog):
    with caplog.at_level(logging.DEBUG, logger="gotrue_lite.config"):
        load(tmp_path, env={"GOTRUE_TYPO_SETTING": "1", "HOME": "/x"}, toml="[nope]\nkey = 1\n")
    text = caplog.text
    assert "GOTRUE_TYPO_SETTING" in text and "nope.key" in text and "HOME" not in text


# --- aliases --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["API_EXTERNAL_URL", "GOTRUE_API_API_EXTERNAL_URL", "GOTRUE_API_EXTERNAL_URL"])
def test_external_url_spellings(tmp_path, name):
    assert load(tmp_path, env={name: "https://a.test"}).api.external_url == "https://a.test"


@pytest.mark.parametrize("name", ["DATABASE_URL", "GOTRUE_DB_DATABASE_URL", "GOTRUE_DB_URL"])
def test_database_url_spellings(tmp_path, name):
    assert load(tmp_path, env={name: "postgresql://h/d"}).db.driver == "postgres"


@pytest.mark.parametrize("name", ["DB_NAMESPACE", "GOTRUE_DB_DB_NAMESPACE", "GOTRUE_DB_NAMESPACE"])
def test_namespace_spellings(tmp_path, name):
    assert load(tmp_path, env={name: "other"}).db.namespace == "other"


def test_other_aliases(tmp_path):
    s = load(tmp_path, env={"GOTRUE_API_PORT": "1234", "LOG_LEVEL": "debug", "REQUEST_ID_HEADER": "X-Req"})
    assert (s.api.port, s.log_level, s.api.request_id_header) == (1234, logging.DEBUG, "X-Req")
    s = load(tmp_path, env={"GOTRUE_API_REQUEST_ID_HEADER": "X-Other", "GOTRUE_LOG_LEVEL": "WARNING"})
    assert (s.api.request_id_header, s.log_level) == ("X-Other", logging.WARNING)


def test_go_spelling_wins_over_alias(tmp_path):
    s = load(tmp_path, env={"GOTRUE_LOG_LEVEL": "error", "LOG_LEVEL": "debug"})
    assert s.log_level == logging.ERROR
    s = load(tmp_path, env={"API_EXTERNAL_URL": "https://go.test", "GOTRUE_API_EXTERNAL_URL": "https://alias.test"})
    assert s.api.external_url == "https://go.test"


def test_smtp_pass_and_redirecturl_go_names(tmp_path):
    s = load(tmp_path, env={"GOTRUE_SMTP_PASS": "pw", "GOTRUE_EXTERNAL_REDIRECTURL": "http://r.test"})
    assert (s.smtp.password, s.external.redirect_url) == ("pw", "http://r.test")


# --- parsers --------------------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ("1", True), ("t", True), ("T", True), ("TRUE", True), ("true", True), ("True", True),
    ("0", False), ("f", False), ("F", False), ("FALSE", False), ("false", False), ("False", False),
])
def test_bool_values(tmp_path, text, expected):
    assert load(tmp_path, env={"GOTRUE_DISABLE_SIGNUP": text}).disable_signup is expected


@pytest.mark.parametrize("text", ["yes", "on", "tRUE", "2", " true"])
def test_bool_rejects_others(tmp_path, text):
    message = error_of(tmp_path, env={"GOTRUE_DISABLE_SIGNUP": text})
    assert message.startswith("GOTRUE_DISABLE_SIGNUP: expected a boolean")


def test_empty_non_string_counts_as_unset(tmp_path):
    s = load(tmp_path, env={"GOTRUE_JWT_EXP": "", "GOTRUE_EXTERNAL_EMAIL_ENABLED": "", "PORT": ""},
             toml="[api]\nport = 9000\n")
    assert (s.jwt.exp, s.external.email.enabled, s.api.port) == (3600, True, 9000)
    # Strings keep an empty value.
    assert load(tmp_path, env={"GOTRUE_JWT_ISSUER": ""}).jwt.issuer == ""


def test_int_base_zero(tmp_path):
    assert load(tmp_path, env={"GOTRUE_PASSWORD_MIN_LENGTH": "0x10"}).password.min_length == 16
    assert load(tmp_path, env={"GOTRUE_PASSWORD_MIN_LENGTH": "010"}).password.min_length == 8
    assert error_of(tmp_path, env={"GOTRUE_PASSWORD_MIN_LENGTH": "8.5"}).startswith("GOTRUE_PASSWORD_MIN_LENGTH:")


JWT_EXP_EXPECTED = ("GOTRUE_JWT_EXP: expected a whole number of seconds, such as 3600 (read as Go reads "
                    "an int: no units, so 1h or 60m are refused)")


def test_jwt_exp_is_read_as_go_reads_an_int(tmp_path, caplog):
    # envconfig → strconv.ParseInt(value, 0, 64): base prefixes, a sign, no units, 64-bit range.
    assert load(tmp_path, env={"GOTRUE_JWT_EXP": "600"}).jwt.exp == 600
    assert load(tmp_path, env={"GOTRUE_JWT_EXP": "0x258"}).jwt.exp == 600
    assert load(tmp_path, env={"GOTRUE_JWT_EXP": "01130"}).jwt.exp == 600  # octal, as in Go
    assert load(tmp_path, env={"GOTRUE_JWT_EXP": "0"}).jwt.exp == 3600  # 0 → 3600 (ApplyDefaults)
    with caplog.at_level(logging.WARNING, logger="gotrue_lite.config"):
        assert load(tmp_path, env={"GOTRUE_JWT_EXP": "-5"}).jwt.exp == -5  # Go takes it too
    assert "GOTRUE_JWT_EXP is negative (-5)" in caplog.text
    assert load(tmp_path, toml="[jwt]\nexp = 7200\n").jwt.exp == 7200
    for text in ("1h", "60m", "3600s", "1.5", "9223372036854775808"):
        assert error_of(tmp_path, env={"GOTRUE_JWT_EXP": text}) == f"{JWT_EXP_EXPECTED}, got {text!r}"
    assert error_of(tmp_path, toml='[jwt]\nexp = "1h"\n').startswith(JWT_EXP_EXPECTED)


def test_integer_seconds(tmp_path):
    # The other integer-of-seconds settings still take a whole-second duration as a convenience.
    assert load(tmp_path, env={"GOTRUE_MAILER_OTP_EXP": "10m"}).mailer.otp_exp == 600
    assert error_of(tmp_path, env={"GOTRUE_MAILER_OTP_EXP": "10x"}) == (
        "GOTRUE_MAILER_OTP_EXP: expected an integer number of seconds, got '10x'"
    )
    assert error_of(tmp_path, env={"GOTRUE_MAILER_OTP_EXP": "-5"}).startswith("GOTRUE_MAILER_OTP_EXP:")
    s = load(tmp_path, env={"GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL": "10", "GOTRUE_SMS_OTP_EXP": "120"})
    assert (s.security.refresh_token_reuse_interval, s.sms.otp_exp) == (10, 120)


@pytest.mark.parametrize("text,expected", [
    ("0", timedelta(0)),
    ("-0", timedelta(0)),
    ("300ms", timedelta(milliseconds=300)),
    ("1.5h", timedelta(minutes=90)),
    ("1h30m", timedelta(minutes=90)),
    ("2h45m10.5s", timedelta(hours=2, minutes=45, seconds=10.5)),
    (".5s", timedelta(milliseconds=500)),
    ("5.s", timedelta(seconds=5)),
    ("1500us", timedelta(microseconds=1500)),
    ("10µs", timedelta(microseconds=10)),
    ("10μs", timedelta(microseconds=10)),
    ("2000ns", timedelta(microseconds=2)),
    ("-1m", timedelta(minutes=-1)),
    ("+3s", timedelta(seconds=3)),
])
def test_duration_parser(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "1d", "1.5", "h", "1h 30m", ".s", "-", "1hh", "abc", "00"])
def test_duration_rejects(tmp_path, text):
    with pytest.raises(ValueError):
        parse_duration(text)
    if text.strip():
        message = error_of(tmp_path, env={"GOTRUE_SMTP_MAX_FREQUENCY": text})
        assert message.startswith("GOTRUE_SMTP_MAX_FREQUENCY: expected a Go duration")


def test_duration_settings(tmp_path):
    s = load(tmp_path, env={"GOTRUE_SESSIONS_TIMEBOX": "24h", "GOTRUE_SESSIONS_INACTIVITY_TIMEOUT": "1.5h",
                            "GOTRUE_API_MAX_REQUEST_DURATION": "0"})
    assert s.sessions.timebox == timedelta(hours=24)
    assert s.sessions.inactivity_timeout == timedelta(minutes=90)
    assert s.api.max_request_duration == timedelta(0)


@pytest.mark.parametrize("name", ["GOTRUE_SESSIONS_TIMEBOX", "GOTRUE_SESSIONS_INACTIVITY_TIMEOUT",
                                  "GOTRUE_SESSIONS_ALLOW_LOW_AAL"])
@pytest.mark.parametrize("value", ["0", "-1h"])
def test_session_durations_must_be_positive(tmp_path, name, value):
    assert error_of(tmp_path, env={name: value}).startswith(name + ":")


def test_lists(tmp_path):
    s = load(tmp_path, env={"GOTRUE_URI_ALLOW_LIST": "http://a.test/**, http://b.test ,,",
                            "GOTRUE_JWT_ADMIN_ROLES": "service_role"})
    assert s.uri_allow_list == ("http://a.test/**", "http://b.test")
    assert s.jwt.admin_roles == ("service_role",)
    s = load(tmp_path, toml='[sessions]\ntags = ["web", " app "]\n')
    assert s.sessions.tags == ("web", "app")
    # An empty list means "none", as in Go.
    assert load(tmp_path, env={"GOTRUE_JWT_ADMIN_ROLES": ""}).jwt.admin_roles == ()


def test_maps(tmp_path):
    s = load(tmp_path, env={"GOTRUE_SMS_TEST_OTP": "+49 151 1234:123456, 15550001:654321"})
    assert s.sms.test_otp == {"491511234": "123456", "15550001": "654321"}
    message = error_of(tmp_path, env={"GOTRUE_SMS_TEST_OTP": "1555:12:34"})
    assert message.startswith("GOTRUE_SMS_TEST_OTP: expected key:value pairs")
    assert "12:34" not in message  # test codes are secrets: not echoed
    assert error_of(tmp_path, env={"GOTRUE_SMS_TEST_OTP": "15550001"}).startswith("GOTRUE_SMS_TEST_OTP:")


def test_test_otp_valid_until(tmp_path):
    s = load(tmp_path, env={"GOTRUE_SMS_TEST_OTP_VALID_UNTIL": "2030-01-02T03:04:05Z"})
    assert s.sms.test_otp_valid_until == datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    s = load(tmp_path, toml="[sms]\ntest_otp_valid_until = 2030-01-02T03:04:05+01:00\n")
    assert s.sms.test_otp_valid_until == datetime(2030, 1, 2, 2, 4, 5, tzinfo=timezone.utc)
    assert error_of(tmp_path, env={"GOTRUE_SMS_TEST_OTP_VALID_UNTIL": "2030-01-02"}).startswith(
        "GOTRUE_SMS_TEST_OTP_VALID_UNTIL:")


@pytest.mark.parametrize("text,expected", [
    ("30", Rate(30.0, timedelta(hours=1), False)),
    ("2.5", Rate(2.5, timedelta(hours=1), False)),
    ("0", Rate(0.0, timedelta(hours=1), False)),
    ("10/1h", Rate(10.0, timedelta(hours=1), True)),
    ("5/30s", Rate(5.0, timedelta(seconds=30), True)),
])
def test_rates(tmp_path, text, expected):
    assert load(tmp_path, env={"GOTRUE_RATE_LIMIT_EMAIL_SENT": text}).rate_limit.email_sent == expected


@pytest.mark.parametrize("text", ["many", "10/", "10/0", "10/5", "-1", "x/1h"])
def test_rates_reject(tmp_path, text):
    assert error_of(tmp_path, env={"GOTRUE_RATE_LIMIT_SMS_SENT": text}).startswith("GOTRUE_RATE_LIMIT_SMS_SENT:")


def test_rate_toml_number(tmp_path):
    s = load(tmp_path, toml="[rate_limit]\nsms_sent = 5\ntoken_refresh = 10\n")
    assert s.rate_limit.sms_sent == Rate(5.0, timedelta(hours=1), False)
    assert s.rate_limit.token_refresh == 10.0


def test_floats(tmp_path):
    s = load(tmp_path, env={"GOTRUE_RATE_LIMIT_VERIFY": "12.5", "GOTRUE_MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY": "3"})
    assert (s.rate_limit.verify, s.mfa.rate_limit_challenge_and_verify) == (12.5, 3.0)
    assert error_of(tmp_path, env={"GOTRUE_RATE_LIMIT_OTP": "lots"}).startswith("GOTRUE_RATE_LIMIT_OTP:")


@pytest.mark.parametrize("text,level", [
    ("panic", logging.CRITICAL), ("fatal", logging.CRITICAL), ("error", logging.ERROR),
    ("warn", logging.WARNING), ("Warning", logging.WARNING), ("INFO", logging.INFO),
    ("debug", logging.DEBUG), ("trace", logging.DEBUG),
])
def test_log_levels(tmp_path, text, level):
    assert load(tmp_path, env={"GOTRUE_LOG_LEVEL": text}).log_level == level


def test_unknown_log_level(tmp_path):
    assert error_of(tmp_path, env={"LOG_LEVEL": "loud"}).startswith("LOG_LEVEL:")


def test_required_characters(tmp_path):
    s = load(tmp_path, env={"GOTRUE_PASSWORD_REQUIRED_CHARACTERS": "abc:ABC:0123456789:!\\:@"})
    assert s.password.required_characters == ("abc", "ABC", "0123456789", "!:@")


def test_smtp_headers(tmp_path, caplog):
    s = load(tmp_path, env={"GOTRUE_SMTP_HEADERS": '{"X-Type": ["$messageType"], "X-Two": ["a", "b"]}'})
    assert s.smtp.headers == {"X-Type": ("$messageType",), "X-Two": ("a", "b")}
    with caplog.at_level(logging.WARNING, logger="gotrue_lite.config"):
        s = load(tmp_path, env={"GOTRUE_SMTP_HEADERS": "{not json"})
    assert s.smtp.headers == {}
    assert "GOTRUE_SMTP_HEADERS" in caplog.text


def test_providers_from_env(tmp_path):
    s = load(tmp_path, env={
        "GOTRUE_EXTERNAL_GOOGLE_ENABLED": "true",
        "GOTRUE_EXTERNAL_GOOGLE_CLIENT_ID": "web-id,ios-id",
        "GOTRUE_EXTERNAL_GOOGLE_SECRET": "shh",
        "GOTRUE_EXTERNAL_GOOGLE_REDIRECT_URI": "http://localhost:9999/callback",
        "GOTRUE_EXTERNAL_LINKEDIN_OIDC_SKIP_NONCE_CHECK": "1",
        "GOTRUE_EXTERNAL_KEYCLOAK_URL": "https://kc.test/realms/x",
    })
    google = s.external.providers["google"]
    assert google.enabled and google.client_id == ("web-id", "ios-id") and google.secret == "shh"
    assert google.redirect_uri == "http://localhost:9999/callback"
    assert s.external.providers["linkedin_oidc"].skip_nonce_check is True
    assert s.external.providers["keycloak"].url == "https://kc.test/realms/x"


# --- JWT keys -------------------------------------------------------------------------------


def int_b64(number: int) -> str:
    return b64url(number.to_bytes((number.bit_length() + 7) // 8, "big"))


def rsa_jwk(kid: str, sign: bool) -> dict:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private, public = key.private_numbers(), key.public_key().public_numbers()
    return {
        "kty": "RSA", "alg": "RS256", "kid": kid, "key_ops": ["sign", "verify"] if sign else ["verify"],
        "n": int_b64(public.n), "e": int_b64(public.e), "d": int_b64(private.d),
        "p": int_b64(private.p), "q": int_b64(private.q), "dp": int_b64(private.dmp1),
        "dq": int_b64(private.dmq1), "qi": int_b64(private.iqmp),
    }


def ec_jwk(kid: str, sign: bool, curve=ec.SECP256R1(), alg="ES256", crv="P-256", size=32) -> dict:
    key = ec.generate_private_key(curve)
    numbers = key.private_numbers()
    point = numbers.public_numbers
    return {
        "kty": "EC", "alg": alg, "kid": kid, "crv": crv, "key_ops": ["sign", "verify"] if sign else ["verify"],
        "x": b64url(point.x.to_bytes(size, "big")), "y": b64url(point.y.to_bytes(size, "big")),
        "d": b64url(numbers.private_value.to_bytes(size, "big")),
    }


def ed_jwk(kid: str, sign: bool) -> dict:
    key = ed25519.Ed25519PrivateKey.generate()
    return {
        "kty": "OKP", "alg": "EdDSA", "kid": kid, "crv": "Ed25519", "key_ops": ["sign"] if sign else ["verify"],
        "x": b64url(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)),
        "d": b64url(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())),
    }


def keys_env(*keys) -> dict:
    return {"GOTRUE_JWT_KEYS": json.dumps(list(keys))}


def test_jwt_keys_rs256_and_es256(tmp_path):
    rsa_key, ec_key = rsa_jwk("rsa-1", sign=True), ec_jwk("ec-1", sign=False)
    s = load(tmp_path, env=keys_env(rsa_key, ec_key))
    assert s.jwt.keys == (rsa_key, ec_key)
    assert s.jwt.valid_methods == ("RS256", "ES256")


def test_jwt_keys_with_hs256_and_eddsa(tmp_path):
    oct_key = {"kty": "oct", "k": b64url(b"s" * 32), "kid": "hs", "alg": "HS256", "key_ops": ["verify"]}
    s = load(tmp_path, env=keys_env(ed_jwk("ed", sign=True), oct_key))
    assert s.jwt.valid_methods == ("EdDSA", "HS256")


def test_jwt_keys_from_toml_array_of_tables(tmp_path):
    key = ec_jwk("ec-1", sign=True)
    toml = "[[jwt.keys]]\n" + "".join(f'{k} = {json.dumps(v)}\n' for k, v in key.items())
    assert load(tmp_path, toml=toml).jwt.keys == (key,)


def test_valid_methods_override(tmp_path):
    s = load(tmp_path, env={**keys_env(rsa_jwk("a", sign=True)), "GOTRUE_JWT_VALID_METHODS": "RS256,HS256"})
    assert s.jwt.valid_methods == ("RS256", "HS256")


def test_jwt_keys_without_signing_key(tmp_path):
    message = error_of(tmp_path, env=keys_env(rsa_jwk("a", sign=False)))
    assert message.startswith("GOTRUE_JWT_KEYS:") and "sign" in message


def test_jwt_keys_with_two_signing_keys(tmp_path):
    message = error_of(tmp_path, env=keys_env(rsa_jwk("a", sign=True), ec_jwk("b", sign=True)))
    assert message.startswith("GOTRUE_JWT_KEYS:") and "2 keys" in message


@pytest.mark.parametrize("mutate", [
    lambda k: k.pop("kid"),
    lambda k: k.pop("alg"),
    lambda k: k.pop("kty"),
    lambda k: k.update(alg="PS256"),
    lambda k: k.update(alg="ES256"),  # an RSA key cannot sign ES256
    lambda k: k.update(n="AAAA"),  # does not load
])
def test_jwt_keys_invalid_key(tmp_path, mutate):
    key = rsa_jwk("a", sign=True)
    mutate(key)
    message = error_of(tmp_path, env=keys_env(key))
    assert message.startswith("GOTRUE_JWT_KEYS:")
    assert key["d"] not in message and key["q"] not in message  # key material is never echoed


def test_jwt_keys_not_json(tmp_path):
    assert error_of(tmp_path, env={"GOTRUE_JWT_KEYS": "[{"}).startswith("GOTRUE_JWT_KEYS:")
    assert error_of(tmp_path, env={"GOTRUE_JWT_KEYS": '{"kty": "oct"}'}).startswith("GOTRUE_JWT_KEYS:")


def test_jwt_keys_es512_needs_p521(tmp_path):
    good = ec_jwk("e", sign=True, curve=ec.SECP521R1(), alg="ES512", crv="P-521", size=66)
    assert load(tmp_path, env=keys_env(good)).jwt.valid_methods == ("ES512",)
    wrong = ec_jwk("e", sign=True, alg="ES512", crv="P-256")
    assert error_of(tmp_path, env=keys_env(wrong)).startswith("GOTRUE_JWT_KEYS:")


def test_short_secret_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="gotrue_lite.config"):
        s = load(tmp_path, env={"GOTRUE_JWT_SECRET": "short"})
    assert s.jwt.secret == "short"
    assert "GOTRUE_JWT_SECRET" in caplog.text and "short" not in caplog.text.replace("shorter", "")
    assert load(tmp_path, env={"GOTRUE_JWT_SECRET": ""}).jwt.secret is None


# --- database -------------------------------------------------------------------------------


@pytest.mark.parametrize("url,relative", [
    ("sqlite:///rel/file.db", "rel/file.db"),
    ("sqlite:///gotrue.db", "gotrue.db"),
    ("plain.db", "plain.db"),
    ("./data/x.db", "data/x.db"),
])
def test_sqlite_relative_paths(tmp_path, url, relative):
    s = load(tmp_path, env={"DATABASE_URL": url})
    assert s.db.driver == "sqlite"
    assert s.db.sqlite_path == str(tmp_path.resolve() / relative)


@pytest.mark.parametrize("url", ["sqlite:////abs/file.db", "/abs/file.db"])
def test_sqlite_absolute_paths(tmp_path, url):
    assert load(tmp_path, env={"DATABASE_URL": url}).db.sqlite_path == "/abs/file.db"


@pytest.mark.parametrize("url", ["sqlite:///:memory:", ":memory:"])
def test_sqlite_memory(tmp_path, url):
    assert load(tmp_path, env={"DATABASE_URL": url}).db.sqlite_path == ":memory:"


@pytest.mark.parametrize("url", ["postgres://u:p@h:5432/d", "postgresql://h/d?sslmode=disable"])
def test_postgres_urls(tmp_path, url):
    s = load(tmp_path, env={"DATABASE_URL": url})
    assert (s.db.driver, s.db.sqlite_path, s.db.url) == ("postgres", None, url)


@pytest.mark.parametrize("url", ["mysql://h/d", "sqlite://host/x.db", "sqlite:x.db", "file:x.db"])
def test_bad_database_urls(tmp_path, url):
    assert error_of(tmp_path, env={"DATABASE_URL": url}).startswith("DATABASE_URL:")


def test_driver(tmp_path):
    assert load(tmp_path, env={"GOTRUE_DB_DRIVER": "postgres", "DATABASE_URL": "postgres://h/d"}).db.driver == "postgres"
    assert load(tmp_path, env={"GOTRUE_DB_DRIVER": "SQLite"}).db.driver == "sqlite"
    assert error_of(tmp_path, env={"GOTRUE_DB_DRIVER": "postgres"}).startswith("GOTRUE_DB_DRIVER:")
    assert error_of(tmp_path, env={"GOTRUE_DB_DRIVER": "mysql"}).startswith("GOTRUE_DB_DRIVER:")


# --- clamps and validation ------------------------------------------------------------------


def test_clamps(tmp_path):
    s = load(tmp_path, env={
        "GOTRUE_PASSWORD_MIN_LENGTH": "3",
        "GOTRUE_MAILER_OTP_LENGTH": "12",
        "GOTRUE_SMS_OTP_LENGTH": "4",
        "GOTRUE_JWT_EXP": "0",
        "GOTRUE_MAILER_OTP_EXP": "0",
        "GOTRUE_SMS_OTP_EXP": "0",
        "GOTRUE_SMTP_MAX_FREQUENCY": "0",
        "GOTRUE_SMS_MAX_FREQUENCY": "0s",
        "GOTRUE_EXTERNAL_FLOW_STATE_EXPIRY_DURATION": "1m",
        "GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION": "60",
        "GOTRUE_MFA_FACTOR_EXPIRY_DURATION": "10s",
    })
    assert s.password.min_length == 6
    assert s.mailer.otp_length == 6 and s.sms.otp_length == 6
    assert (s.jwt.exp, s.mailer.otp_exp, s.sms.otp_exp) == (3600, 86400, 60)
    assert s.smtp.max_frequency == s.sms.max_frequency == timedelta(minutes=1)
    assert s.external.flow_state_expiry_duration == timedelta(seconds=300)
    assert s.mfa.challenge_expiry_duration == 300
    assert s.mfa.factor_expiry_duration == timedelta(seconds=300)
    s = load(tmp_path, env={"GOTRUE_MAILER_OTP_LENGTH": "8", "GOTRUE_PASSWORD_MIN_LENGTH": "12",
                            "GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION": "900"})
    assert (s.mailer.otp_length, s.password.min_length, s.mfa.challenge_expiry_duration) == (8, 12, 900)


def test_urls_must_be_absolute(tmp_path):
    assert error_of(tmp_path, env={"GOTRUE_SITE_URL": "localhost:3000/app"}).startswith("GOTRUE_SITE_URL:")
    assert error_of(tmp_path, env={"API_EXTERNAL_URL": "/auth/v1"}).startswith("API_EXTERNAL_URL:")
    assert error_of(tmp_path, env={"API_EXTERNAL_URL": "ftp://x.test"}).startswith("API_EXTERNAL_URL:")
    assert load(tmp_path, env={"GOTRUE_SITE_URL": "myapp://callback"}).site_url == "myapp://callback"


def test_external_url_follows_port_and_issuer_is_only_what_is_set(tmp_path):
    s = load(tmp_path, env={"PORT": "8123"})
    # upstream has no default issuer (conf.JWTConfiguration.Issuer): iss is left out of tokens
    assert (s.api.external_url, s.jwt.issuer) == ("http://localhost:8123", "")
    s = load(tmp_path, env={"API_EXTERNAL_URL": "https://x.test/auth/v1", "GOTRUE_JWT_ISSUER": "me"})
    assert s.jwt.issuer == "me"


def test_require_exp(tmp_path):
    assert load(tmp_path).lite.require_exp is False
    assert load(tmp_path, env={"GOTRUE_LITE_REQUIRE_EXP": "true"}).lite.require_exp is True
    assert load(tmp_path, toml="[lite]\nrequire_exp = true\n").lite.require_exp is True


def test_external_url_follows_the_listening_address(tmp_path):
    assert load(tmp_path, env={"GOTRUE_API_HOST": "0.0.0.0", "PORT": "8124"}).api.external_url == "http://localhost:8124"
    assert load(tmp_path, env={"GOTRUE_API_HOST": "::1"}).api.external_url == "http://localhost:9999"
    assert load(tmp_path, env={"GOTRUE_API_HOST": "192.0.2.7", "PORT": "80"}).api.external_url == "http://192.0.2.7:80"
    assert load(tmp_path, env={"GOTRUE_API_HOST": "2001:db8::7"}).api.external_url == "http://[2001:db8::7]:9999"
    assert load(tmp_path, env={"GOTRUE_API_HOST": "auth.internal"}).api.external_url == "http://auth.internal:9999"


def test_development_defaults(tmp_path):
    """With the dev mailbox in use (no SMTP host, loopback API) confirmation is off and SITE_URL
    is the built-in welcome page, as on a Supabase CLI stack; anything production-like keeps
    upstream's defaults; a value the user sets always wins, from any source."""
    dev = load(tmp_path, env={"PORT": "19999"})
    assert dev.lite.dev_mailbox is True and dev.mailer.autoconfirm is True
    assert dev.site_url == "http://localhost:19999/_dev/welcome"
    assert dev.jwt.issuer == "" and dev.api.external_url == "http://localhost:19999"
    # The welcome page follows API_EXTERNAL_URL when that is set.
    assert load(tmp_path, env={"API_EXTERNAL_URL": "http://127.0.0.1:9999/"}).site_url == (
        "http://127.0.0.1:9999/_dev/welcome")
    for production in ({"GOTRUE_SMTP_HOST": "smtp.example.com"}, {"GOTRUE_API_HOST": "0.0.0.0"},
                       {"GOTRUE_LITE_DEV_MAILBOX": "false"}):
        s = load(tmp_path, env=production)
        assert (s.lite.dev_mailbox, s.mailer.autoconfirm, s.site_url) == (False, False, "http://localhost:3000"), production
    # The mailbox asked for on a public address: its defaults come with it.
    s = load(tmp_path, env={"GOTRUE_API_HOST": "0.0.0.0", "GOTRUE_LITE_DEV_MAILBOX": "true"})
    assert (s.mailer.autoconfirm, s.site_url) == (True, "http://localhost:9999/_dev/welcome")
    # Explicit values win, from the environment, .env or the file.
    assert load(tmp_path, env={"GOTRUE_MAILER_AUTOCONFIRM": "false"}).mailer.autoconfirm is False
    assert load(tmp_path, env={"GOTRUE_SMTP_HOST": "smtp.example.com",
                               "GOTRUE_MAILER_AUTOCONFIRM": "true"}).mailer.autoconfirm is True
    assert load(tmp_path, env={"GOTRUE_SITE_URL": "http://localhost:3000"}).site_url == "http://localhost:3000"
    for name, files in [("dotenv", {"dotenv": "GOTRUE_MAILER_AUTOCONFIRM=false\n"}),
                        ("toml", {"toml": "[mailer]\nautoconfirm = false\n"})]:
        (tmp_path / name).mkdir()
        assert load(tmp_path / name, **files).mailer.autoconfirm is False, name
    (tmp_path / "site").mkdir()
    assert load(tmp_path / "site", toml='site_url = "http://app.test"\n').site_url == "http://app.test"
    # Unverified sign-ins need confirmation on: asking for them is not a conflict with a default.
    s = load(tmp_path, env={"GOTRUE_MAILER_ALLOW_UNVERIFIED_EMAIL_SIGN_INS": "true"})
    assert s.mailer.autoconfirm is False and s.mailer.allow_unverified_email_sign_ins is True


def test_autoconfirm_with_unverified_sign_ins(tmp_path):
    message = error_of(tmp_path, env={"GOTRUE_MAILER_AUTOCONFIRM": "true",
                                      "GOTRUE_MAILER_ALLOW_UNVERIFIED_EMAIL_SIGN_INS": "true"})
    assert message.startswith("GOTRUE_MAILER_ALLOW_UNVERIFIED_EMAIL_SIGN_INS:")


def test_refresh_token_algorithm_version(tmp_path):
    assert load(tmp_path, env={"GOTRUE_SECURITY_REFRESH_TOKEN_ALGORITHM_VERSION": "2"}).security.refresh_token_algorithm_version == 2
    assert error_of(tmp_path, env={"GOTRUE_SECURITY_REFRESH_TOKEN_ALGORITHM_VERSION": "3"}).startswith(
        "GOTRUE_SECURITY_REFRESH_TOKEN_ALGORITHM_VERSION:")


def test_captcha(tmp_path):
    assert error_of(tmp_path, env={"GOTRUE_SECURITY_CAPTCHA_ENABLED": "true"}).startswith(
        "GOTRUE_SECURITY_CAPTCHA_SECRET:")
    assert error_of(tmp_path, env={"GOTRUE_SECURITY_CAPTCHA_PROVIDER": "recaptcha"}).startswith(
        "GOTRUE_SECURITY_CAPTCHA_PROVIDER:")
    s = load(tmp_path, env={"GOTRUE_SECURITY_CAPTCHA_ENABLED": "1", "GOTRUE_SECURITY_CAPTCHA_SECRET": "s",
                            "GOTRUE_SECURITY_CAPTCHA_PROVIDER": "turnstile"})
    assert (s.security.captcha_enabled, s.security.captcha_provider) == (True, "turnstile")
    # Upstream trims the secret, so a blank one is no secret; a zero timeout is its 10 s.
    assert error_of(tmp_path, env={"GOTRUE_SECURITY_CAPTCHA_ENABLED": "true",
                                   "GOTRUE_SECURITY_CAPTCHA_SECRET": "  "}).startswith("GOTRUE_SECURITY_CAPTCHA_SECRET:")
    s = load(tmp_path, env={"GOTRUE_SECURITY_CAPTCHA_SECRET": " s3cret\n", "GOTRUE_SECURITY_CAPTCHA_TIMEOUT": "0"})
    assert (s.security.captcha_secret, s.security.captcha_timeout) == ("s3cret", timedelta(seconds=10))
    assert load(tmp_path, env={"GOTRUE_SECURITY_CAPTCHA_TIMEOUT": "2500ms"}).security.captcha_timeout == \
        timedelta(milliseconds=2500)


def test_captcha_verify_url(tmp_path):
    assert load(tmp_path).lite.captcha_verify_url == ""
    s = load(tmp_path, toml='[lite]\ncaptcha_verify_url = "http://verifier.internal:8080/siteverify"\n')
    assert s.lite.captcha_verify_url == "http://verifier.internal:8080/siteverify"
    assert error_of(tmp_path, env={"GOTRUE_LITE_CAPTCHA_VERIFY_URL": "verifier/siteverify"}).startswith(
        "GOTRUE_LITE_CAPTCHA_VERIFY_URL: expected an absolute http/https URL")


def test_hooks(tmp_path):
    secret = "v1,whsec_" + base64.b64encode(b"k" * 32).decode()
    s = load(tmp_path, env={"GOTRUE_HOOK_SEND_EMAIL_URI": "https://hooks.test/send",
                            "GOTRUE_HOOK_SEND_EMAIL_SECRETS": f"{secret}|{secret}"})
    assert s.hooks["send_email"].uri == "https://hooks.test/send"
    assert s.hooks["send_email"].secrets == (secret, secret)
    assert error_of(tmp_path, env={"GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_ENABLED": "true"}) == (
        "GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_URI: required when GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_ENABLED is true"
    )
    # The default database is SQLite: a function hook cannot run there.
    assert error_of(tmp_path, env={"GOTRUE_HOOK_SEND_SMS_ENABLED": "true",
                                   "GOTRUE_HOOK_SEND_SMS_URI": "pg-functions://postgres/public/hook"}).startswith(
        "GOTRUE_HOOK_SEND_SMS_URI: pg-functions:// hooks need a PostgreSQL database")
    assert error_of(tmp_path, env={"GOTRUE_HOOK_SEND_SMS_URI": "pg-functions://postgres/public/bad-name"}) == (
        "GOTRUE_HOOK_SEND_SMS_URI: invalid function name: bad-name")
    s = load(tmp_path, env={"GOTRUE_HOOK_SEND_SMS_ENABLED": "true", "GOTRUE_HOOK_SEND_SMS_URI": "http://127.0.0.1:9/h"})
    assert s.hooks["send_sms"].enabled
    asymmetric = f"v1a,whpk_{'A' * 44}:whsk_{'B' * 44}"
    assert load(tmp_path, env={"GOTRUE_HOOK_SEND_SMS_URI": "https://h.test",
                               "GOTRUE_HOOK_SEND_SMS_SECRETS": asymmetric}).hooks["send_sms"].secrets == (asymmetric,)
    assert error_of(tmp_path, env={"GOTRUE_HOOK_SEND_SMS_ENABLED": "true", "GOTRUE_HOOK_SEND_SMS_URI": "https://h.test",
                                   "GOTRUE_HOOK_SEND_SMS_SECRETS": asymmetric}).startswith(
        "GOTRUE_HOOK_SEND_SMS_SECRETS: v1a (asymmetric) secrets cannot sign")
    assert error_of(tmp_path, env={"GOTRUE_HOOK_SEND_SMS_URI": "http://example.com/x"}).startswith(
        "GOTRUE_HOOK_SEND_SMS_URI:")
    assert error_of(tmp_path, env={"GOTRUE_HOOK_SEND_SMS_URI": "https://h.test",
                                   "GOTRUE_HOOK_SEND_SMS_SECRETS": "plain"}).startswith(
        "GOTRUE_HOOK_SEND_SMS_SECRETS:")
    s = load(tmp_path, env={"GOTRUE_HOOK_MFA_VERIFICATION_ATTEMPT_URI": "pg-functions://postgres/public/hook"})
    assert s.hooks["mfa_verification_attempt"].uri.startswith("pg-functions://")
    # A bare SECRETS is too generic a name to read.
    assert load(tmp_path, env={"SECRETS": "x"}).hooks["send_email"].secrets == ()


def test_error_from_dotenv_mentions_the_file(tmp_path):
    message = error_of(tmp_path, dotenv="GOTRUE_JWT_EXP=soon\n")
    assert message.startswith(f"{JWT_EXP_EXPECTED}, got 'soon'")
    assert ".env" in message


# --- the sample file ------------------------------------------------------------------------


def test_sample_config_loads(tmp_path):
    s = load_settings(REPO / "gotrue_lite.toml", environ={}, dotenv=False, cwd=tmp_path)
    assert s.api.external_url == "http://localhost:9999" and s.api.port == 9999
    # It pins nothing it can derive: the port moves the links, and the development defaults apply.
    moved = load_settings(REPO / "gotrue_lite.toml", environ={"PORT": "19999"}, dotenv=False, cwd=tmp_path)
    assert moved.api.external_url == "http://localhost:19999" and moved.jwt.issuer == ""
    assert moved.site_url == "http://localhost:19999/_dev/welcome"
    assert s.mailer.autoconfirm is True and s.lite.dev_mailbox is True
    assert s.db.driver == "sqlite" and s.db.sqlite_path == str(tmp_path.resolve() / "gotrue_lite.db")
    assert s.jwt.secret is None  # the sample holds no secret
    assert s.security.refresh_token_reuse_interval == 10
    assert s.uri_allow_list == ("http://localhost:3000/**",)
    assert s.config_file == str(REPO / "gotrue_lite.toml")
