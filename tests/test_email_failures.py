"""End to end through a real SMTP server: what happens when mail cannot go out (server down,
login refused, untrusted certificate, the global send budget), and delivery over TLS."""

from __future__ import annotations

import logging

import pytest

from email_e2e import follow, get, pass_cooldown, post, put_user, session_from_redirect, signup_unconfirmed
from helpers import PASSWORD, assert_error, bearer, new_email, rows
from smtp_server import (  # noqa: F401
    SMTP_PASS, SMTP_USER, SmtpSink, _reset_clock, free_port, mail_server, self_signed_context,
)

SITE_URL = "http://localhost:3000"


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory):
    return self_signed_context(tmp_path_factory.mktemp("tls"))


def user_row(server, email: str) -> dict | None:
    found = rows(server, "SELECT id, confirmation_token, confirmation_sent_at, recovery_token, recovery_sent_at, "
                         "email_change, email_change_token_new, reauthentication_token FROM users WHERE email = $1",
                 email)
    return found[0] if found else None


def tokens_of(server, user_id) -> list[str]:
    return [r["token_type"] for r in rows(server, "SELECT token_type FROM one_time_tokens WHERE user_id = $1",
                                          user_id)]


def assert_send_failed(resp, message: str) -> None:
    body = assert_error(resp, 500, "unexpected_failure", message)
    assert body.get("error_id"), body


def smtp_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and r.name.startswith("gotrue_lite")]


# --- SMTP server down --------------------------------------------------------------------------


def test_smtp_down_at_start_is_a_warning_and_signup_stores_nothing(backend, caplog, make_server):
    from smtp_server import smtp_env

    port = free_port()  # nothing listens here
    with caplog.at_level(logging.INFO, logger="gotrue_lite"):
        server = make_server(backend, **smtp_env(port))
    warnings = smtp_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "SMTP check failed" in warnings[0] and f"cannot connect to the SMTP server 127.0.0.1:{port}" in warnings[0]
    assert get(server, "/health").status_code == 200  # it started all the same

    email = new_email("down")
    with caplog.at_level(logging.ERROR, logger="gotrue_lite"):
        assert_send_failed(post(server, "/signup", {"email": email, "password": PASSWORD}),
                           "Error sending confirmation email")
    assert any("Error sending confirmation email" in r.getMessage() and email in r.getMessage()
               for r in caplog.records if r.levelno == logging.ERROR)
    assert user_row(server, email) is None
    assert rows(server, "SELECT count(*) AS n FROM identities") == [{"n": 0}]
    assert rows(server, "SELECT count(*) AS n FROM one_time_tokens") == [{"n": 0}]
    assert_send_failed(post(server, "/otp", {"email": email}), "Error sending confirmation email")
    assert_send_failed(post(server, "/invite", {"email": email}, headers=bearer(server.service_role_key)),
                       "Error sending invite email")
    assert user_row(server, email) is None


def test_smtp_going_down_leaves_every_flow_as_it_was(mail_server, backend):
    server, sink = mail_server(backend)
    email = new_email("victim")
    user = signup_unconfirmed(server, email)
    session = session_from_redirect(follow(sink.one(email).link), SITE_URL, "signup")
    before = user_row(server, email)
    assert before["recovery_token"] == "" and before["recovery_sent_at"] is None
    port = sink.port
    sink.stop()

    assert_send_failed(post(server, "/recover", {"email": email}), "Error sending recovery email")
    assert_send_failed(post(server, "/otp", {"email": email}), "Error sending magic link email")
    assert_send_failed(put_user(server, session["access_token"], {"email": new_email("next")}),
                       "Error sending email change email")
    assert_send_failed(get(server, "/reauthenticate", headers=bearer(session["access_token"])),
                       "Error sending reauthentication email")
    assert user_row(server, email) == before
    assert tokens_of(server, user["id"]) == []

    # Back up on the same port: nothing was stored, so no cooldown holds the next request.
    revived = SmtpSink().start(port=port)
    try:
        resp = post(server, "/recover", {"email": email})
        assert resp.status_code == 200, resp.text
        assert revived.one(email).subject == "Reset your password"
        assert user_row(server, email)["recovery_token"] != ""
        assert tokens_of(server, user["id"]) == ["recovery_token"]
    finally:
        revived.stop()


def test_smtp_login_refused(mail_server, backend, tls_context, caplog):
    options = {"tls_context": tls_context, "with_auth": True}
    with caplog.at_level(logging.INFO, logger="gotrue_lite"):
        server, sink = mail_server(backend, options, GOTRUE_SMTP_USER=SMTP_USER, GOTRUE_SMTP_PASS="wrong-pass-123",
                                   GOTRUE_LITE_SMTP_TLS_VERIFY="false")
    warnings = smtp_warnings(caplog)
    assert len(warnings) == 1 and "refused the login" in warnings[0], warnings
    assert "wrong-pass-123" not in caplog.text

    email = new_email("noauth")
    assert_send_failed(post(server, "/signup", {"email": email, "password": PASSWORD}),
                       "Error sending confirmation email")
    assert user_row(server, email) is None
    assert sink.mails == [] and ("LOGIN", SMTP_USER) in sink.logins


def test_smtp_user_with_a_server_that_offers_no_auth_sends_without_login(mail_server, backend, caplog):
    """upstream's gomail Dialer logs in only when EHLO lists AUTH; otherwise it sends as is."""
    with caplog.at_level(logging.INFO, logger="gotrue_lite"):
        server, sink = mail_server(backend, None, GOTRUE_SMTP_USER=SMTP_USER, GOTRUE_SMTP_PASS=SMTP_PASS)
    warnings = smtp_warnings(caplog)
    assert len(warnings) == 1 and "offers no AUTH" in warnings[0] and "without logging in" in warnings[0], warnings
    assert SMTP_PASS not in caplog.text
    email = new_email("openrelay")
    signup_unconfirmed(server, email)
    mail = sink.one(email)
    assert mail.subject == "Confirm your email address" and sink.logins == []
    session_from_redirect(follow(mail.link), SITE_URL, "signup")


def test_smtp_user_with_a_server_that_offers_auth_logs_in_and_says_nothing(mail_server, backend, caplog):
    # aiosmtpd offers AUTH on a plain connection only when told it may.
    with caplog.at_level(logging.INFO, logger="gotrue_lite"):
        server, sink = mail_server(backend, {"with_auth": True, "auth_require_tls": False},
                                   GOTRUE_SMTP_USER=SMTP_USER, GOTRUE_SMTP_PASS=SMTP_PASS)
    assert smtp_warnings(caplog) == []
    email = new_email("authrelay")
    signup_unconfirmed(server, email)
    assert sink.one(email).subject == "Confirm your email address"
    assert sink.logins and set(sink.logins) == {("LOGIN", SMTP_USER)}


def test_untrusted_certificate_is_refused_by_default(mail_server, backend, tls_context):
    server, sink = mail_server(backend, {"tls_context": tls_context, "require_starttls": True})
    email = new_email("untrusted")
    assert_send_failed(post(server, "/signup", {"email": email, "password": PASSWORD}),
                       "Error sending confirmation email")
    assert user_row(server, email) is None and sink.mails == []


# --- the global email budget (SESSIONS.md §5.2) ------------------------------------------------


def test_email_budget_spent_refuses_the_next_mail_and_stores_nothing(mail_server, backend):
    server, sink = mail_server(backend, GOTRUE_RATE_LIMIT_EMAIL_SENT="2")
    first, second, third = new_email("one"), new_email("two"), new_email("three")
    user = signup_unconfirmed(server, first)
    signup_unconfirmed(server, second)
    assert_error(post(server, "/signup", {"email": third, "password": PASSWORD}), 429, "over_email_send_rate_limit",
                 "email rate limit exceeded")
    assert user_row(server, third) is None

    pass_cooldown()
    before = user_row(server, first)
    for resp in (post(server, "/recover", {"email": first}),
                 post(server, "/resend", {"type": "signup", "email": first}),
                 post(server, "/otp", {"email": first}),
                 post(server, "/invite", {"email": new_email("four")}, headers=bearer(server.service_role_key))):
        assert_error(resp, 429, "over_email_send_rate_limit", "email rate limit exceeded")
    assert user_row(server, first) == before
    assert tokens_of(server, user["id"]) == ["confirmation_token"]
    assert sink.count() == 2


# --- TLS ---------------------------------------------------------------------------------------


def test_starttls_with_login(mail_server, backend, tls_context):
    server, sink = mail_server(backend, {"tls_context": tls_context, "require_starttls": True, "with_auth": True},
                               GOTRUE_SMTP_USER=SMTP_USER, GOTRUE_SMTP_PASS=SMTP_PASS,
                               GOTRUE_LITE_SMTP_TLS_VERIFY="false")
    email = new_email("starttls")
    signup_unconfirmed(server, email)
    mail = sink.one(email)
    assert mail.tls and mail.subject == "Confirm your email address"
    assert sink.logins[-1] == ("LOGIN", SMTP_USER)
    session_from_redirect(follow(mail.link), SITE_URL, "signup")


def test_implicit_tls(mail_server, backend, tls_context):
    # aiosmtpd counts only STARTTLS as TLS for AUTH, so it is told AUTH is fine here.
    server, sink = mail_server(backend, {"ssl_context": tls_context, "with_auth": True, "auth_require_tls": False},
                               GOTRUE_SMTP_USER=SMTP_USER, GOTRUE_SMTP_PASS=SMTP_PASS,
                               GOTRUE_LITE_SMTP_IMPLICIT_TLS="true", GOTRUE_LITE_SMTP_TLS_VERIFY="false")
    email = new_email("implicit")
    signup_unconfirmed(server, email)
    mail = sink.one(email)
    assert mail.tls and sink.logins == [("LOGIN", SMTP_USER)] * len(sink.logins)
    session_from_redirect(follow(mail.link), SITE_URL, "signup")
