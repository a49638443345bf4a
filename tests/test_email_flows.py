"""End to end through a real SMTP server: sign-up confirmation, resend, redirect_to, /otp and
/magiclink, /recover, /invite. Every link and code used here is read from delivered mail."""

from __future__ import annotations

import re
from urllib.parse import quote_plus

import httpx
import pytest

from email_e2e import (
    FREQUENCY, HEX56, HTTP, LINK_INVALID, OTP_INVALID, check_session, error_fragment, follow, get_user, pass_cooldown,
    post, put_user, session_from_redirect, sign_in, signup_unconfirmed, split_location, token_hash,
)
from helpers import PASSWORD, assert_error, bearer, confirm_email, new_email, rows
from smtp_server import ADMIN_EMAIL, ALLOWED_REDIRECT, SENDER_NAME, _reset_clock, mail_fixture, shared_mail  # noqa: F401

SITE_URL = "http://localhost:3000"

# One minute is the default cooldown; this server's is one second, and it wants the current
# password for a password change (unless the session is a recovery one).
strict_mail = mail_fixture(GOTRUE_SMTP_MAX_FREQUENCY="1s", GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_CURRENT_PASSWORD="true")


def confirmed_user(shared, email: str | None = None) -> str:
    """A user whose address is confirmed (through its confirmation link); returns the email."""
    server, sink = shared
    email = email or new_email("confirmed")
    signup_unconfirmed(server, email)
    resp = follow(sink.last(email).link)
    assert resp.status_code == 303 and "#access_token=" in resp.headers["location"], resp.headers
    return email


# --- sign-up confirmation ---------------------------------------------------------------------


def test_signup_mails_a_confirmation_whose_link_signs_in_once(shared_mail):
    server, sink = shared_mail
    email = new_email("signup")
    target = f"{ALLOWED_REDIRECT}/welcome"
    user = signup_unconfirmed(server, email, query=f"?redirect_to={target}")
    assert user.get("email_confirmed_at") is None

    mail = sink.one(email)
    assert mail.subject == "Confirm your email address"
    assert mail.from_name_and_address == (SENDER_NAME, ADMIN_EMAIL)
    assert b'\r\nFrom: "Acme Auth" <noreply@acme.test>\r\n' in b"\r\n" + mail.raw
    assert mail.mail_from == ADMIN_EMAIL and mail.rcpt_tos == [email] and mail.to == email
    assert mail.message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.message.iter_parts()] == ["text/plain", "text/html"]
    assert mail.helo == "127.0.0.1"  # the host of API_EXTERNAL_URL

    link = mail.link
    token = mail.link_query["token"]
    assert HEX56.match(token), link
    assert link == f"{server.url}/verify?token={token}&type=signup&redirect_to={target}"
    assert link.replace("&", "&amp;") in mail.html
    assert re.fullmatch(r"\d{6}", mail.code), mail.text  # GOTRUE_MAILER_OTP_LENGTH, 6 by default
    assert token == token_hash(email, mail.code)  # the link carries the hash of the mailed code
    assert rows(server, "SELECT token_type, token_hash, relates_to FROM one_time_tokens WHERE user_id = $1",
                user["id"]) == [{"token_type": "confirmation_token", "token_hash": token, "relates_to": email}]

    session = session_from_redirect(follow(link), target, "signup")
    me = get_user(server, session["access_token"])
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user["id"] and me.json()["email_confirmed_at"]
    assert me.json()["user_metadata"].get("email_verified") is True
    assert rows(server, "SELECT id FROM one_time_tokens WHERE user_id = $1", user["id"]) == []
    assert sign_in(server, email).status_code == 200

    again = follow(link)
    base, _, fragment = split_location(again)
    assert base == target
    assert fragment == error_fragment("otp_expired", LINK_INVALID)
    assert fragment == ("error=access_denied&error_code=otp_expired"
                        "&error_description=Email+link+is+invalid+or+has+expired&sb=")


def test_unconfirmed_user_cannot_sign_in_before_the_link(shared_mail):
    server, sink = shared_mail
    email = new_email("early")
    signup_unconfirmed(server, email)
    assert_error(sign_in(server, email), 400, "email_not_confirmed", "Email not confirmed")
    session_from_redirect(follow(sink.one(email).link), SITE_URL, "signup")
    assert sign_in(server, email).status_code == 200


@pytest.mark.parametrize("vtype", ["signup", "email"])
def test_resend_then_the_mailed_code_verifies(shared_mail, vtype):
    server, sink = shared_mail
    email = new_email("resend")
    user = signup_unconfirmed(server, email)
    first = sink.one(email)

    # Within GOTRUE_SMTP_MAX_FREQUENCY (one minute) of the first mail.
    body = assert_error(post(server, "/resend", {"type": "signup", "email": email}), 429, "over_email_send_rate_limit")
    seconds = int(FREQUENCY.match(body["msg"]).group(1))
    assert 55 <= seconds <= 59, body
    assert len(sink.to(email)) == 1

    pass_cooldown()
    resp = post(server, "/resend", {"type": "signup", "email": email})
    assert resp.status_code == 200 and resp.json() == {}, resp.text
    second = sink.last(email)
    assert len(sink.to(email)) == 2 and second.subject == "Confirm your email address"
    assert second.link_query["type"] == "signup"
    if second.code != first.code:  # (one chance in a million that they are the same)
        # The new code replaced the old one, and with it the old link.
        assert split_location(follow(first.link))[2] == error_fragment("otp_expired", LINK_INVALID)
        assert_error(post(server, "/verify", {"email": email, "token": first.code, "type": vtype}),
                     403, "otp_expired", OTP_INVALID)

    resp = post(server, "/verify", {"email": email, "token": second.code, "type": vtype})
    assert resp.status_code == 200, resp.text
    session = resp.json()
    check_session(session)
    assert session["user"]["id"] == user["id"] and session["user"]["email_confirmed_at"]
    # Single use: the code and its link are spent.
    assert_error(post(server, "/verify", {"email": email, "token": second.code, "type": vtype}),
                 403, "otp_expired", OTP_INVALID)
    assert split_location(follow(second.link))[2] == error_fragment("otp_expired", LINK_INVALID)


def test_links_and_codes_expire_after_mailer_otp_exp(shared_mail):
    from datetime import timedelta

    from gotrue_lite import clock

    server, sink = shared_mail
    email = new_email("expired")
    signup_unconfirmed(server, email)
    mail = sink.one(email)
    clock.offset = timedelta(seconds=86400 + 5)  # GOTRUE_MAILER_OTP_EXP, one day by default
    assert split_location(follow(mail.link))[2] == error_fragment("otp_expired", LINK_INVALID)
    assert_error(post(server, "/verify", {"email": email, "token": mail.code, "type": "signup"}), 403,
                 "otp_expired", OTP_INVALID)
    assert_error(post(server, "/verify", {"token_hash": mail.link_query["token"], "type": "signup"}), 403,
                 "otp_expired", LINK_INVALID)
    # Just inside the lifetime it still works.
    clock.offset = timedelta(seconds=86400 - 30)
    session_from_redirect(follow(mail.link), SITE_URL, "signup")


def test_resend_for_unknown_or_confirmed_addresses_sends_nothing(shared_mail):
    server, sink = shared_mail
    email = confirmed_user(shared_mail)
    before = sink.count()
    pass_cooldown()
    for address in (email, new_email("nobody")):
        resp = post(server, "/resend", {"type": "signup", "email": address})
        assert resp.status_code == 200 and resp.json() == {}, resp.text
    assert sink.count() == before


def test_signing_up_again_unconfirmed_resends_and_confirmed_sends_nothing(shared_mail):
    server, sink = shared_mail
    email = new_email("twice")
    signup_unconfirmed(server, email)
    assert_error(post(server, "/signup", {"email": email, "password": PASSWORD}), 429, "over_email_send_rate_limit")
    pass_cooldown()
    signup_unconfirmed(server, email)
    assert len(sink.to(email)) == 2
    session_from_redirect(follow(sink.last(email).link), SITE_URL, "signup")
    pass_cooldown(122)
    resp = post(server, "/signup", {"email": email, "password": PASSWORD})
    assert resp.status_code == 200 and "access_token" not in resp.json(), resp.text
    assert len(sink.to(email)) == 2  # a confirmed address gets nothing (API.md §9)


# --- redirect_to (API.md §1.5, SESSIONS.md §8.3) -----------------------------------------------


def _signup_with(server, params: dict | None = None, headers: dict | None = None) -> str:
    email = new_email("redirect")
    resp = HTTP.post(server.url + "/signup", params=params, headers=headers, json={"email": email, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return email


def _raw_redirect(link: str) -> str:
    """The redirect_to of a link exactly as written (it is the last parameter)."""
    head, sep, raw = link.partition("&redirect_to=")
    assert sep and "redirect_to=" not in raw, link
    return raw


@pytest.mark.parametrize("candidate, accepted", [
    (f"{ALLOWED_REDIRECT}/a/b/c", True),  # `**` crosses "/"
    (ALLOWED_REDIRECT + "/", True),
    ("https://pr-7.preview.acme.test/cb", True),  # `*` within one label
    ("https://a.b.preview.acme.test/cb", False),  # … but not across "."
    ("https://pr-7.preview.acme.test/cb/more", False),  # … nor across "/"
    ("https://app.acme.test.evil.example/x", False),
    ("https://v7.acme.test/home", True),  # gobwas/glob character classes: [0-9] …
    ("https://vx.acme.test/home", False),
    ("https://ab.other.test/cb", True),  # … and [!x]
    ("https://xb.other.test/cb", False),
    ("http://localhost:3000/account", True),  # same scheme, host and port as SITE_URL
    ("http://localhost:5173/x", True),  # port ignored for localhost
    ("https://localhost:3000/x", False),  # another scheme
    ("http://127.0.0.1:8080/cb", True),  # loopback IPs, whatever the allow list says
    ("http://[::1]:8080/cb", True),
    ("http://[::ffff:127.0.0.1]:8080/cb", True),  # Go sees the IPv4 loopback in it
    ("http://10.0.0.1/cb", False),  # other IPs refused
    ("http://2130706433/cb", False),  # all-digit host
    ("https://evil.example/steal", False),
    ("javascript:alert(1)", False),
    # What Go's url.Parse rejects is never valid: control characters, bad escapes, junk after the host.
    (f"{ALLOWED_REDIRECT}/\r\nLocation: https://evil.example", False),
    (f"{ALLOWED_REDIRECT}/%zz", False),
    ("http://[::1].evil.example/cb", False),
    ("https://app.acme.test:abc/cb", False),
])
def test_redirect_to_is_checked_against_site_url_and_the_allow_list(shared_mail, candidate, accepted):
    server, sink = shared_mail
    email = _signup_with(server, params={"redirect_to": candidate})
    link = sink.one(email).link
    assert _raw_redirect(link) == (candidate if accepted else SITE_URL), link


@pytest.mark.parametrize("candidate", [
    f"{ALLOWED_REDIRECT}/cb?next=/home&x=1",
    f"{ALLOWED_REDIRECT}/cb?x=a=b",
    f"{ALLOWED_REDIRECT}/cb#section",
])
def test_redirect_to_with_ampersand_equals_or_hash_is_escaped_in_the_link(shared_mail, candidate):
    server, sink = shared_mail
    email = _signup_with(server, params={"redirect_to": candidate})
    mail = sink.one(email)
    assert _raw_redirect(mail.link) == quote_plus(candidate, safe="")
    assert mail.link_query["redirect_to"] == candidate
    if "#" not in candidate:
        # Following it lands on the target with its own query intact, the session appended.
        session_from_redirect(follow(mail.link), candidate, "signup")
        return
    # The session is appended to the target verbatim, fragment and all (upstream AsRedirectURL)…
    location = follow(mail.link).headers["location"]
    assert location.startswith(candidate + "#access_token="), location
    # … while an error replaces the target's fragment (upstream prepErrorRedirectURL).
    assert follow(mail.link).headers["location"] == (
        candidate.split("#")[0] + "#" + error_fragment("otp_expired", LINK_INVALID))


def test_following_a_link_lands_on_its_redirect_to(shared_mail):
    server, sink = shared_mail
    for target in (f"{ALLOWED_REDIRECT}/deep/path", "http://127.0.0.1:8080/cb", "http://localhost:3000/account"):
        email = _signup_with(server, params={"redirect_to": target})
        session_from_redirect(follow(sink.one(email).link), target, "signup")
    # Non-ASCII is %-escaped in the Location header, as Go's http.Redirect does; nothing else changes.
    email = _signup_with(server, params={"redirect_to": f"{ALLOWED_REDIRECT}/café"})
    assert _raw_redirect(sink.one(email).link) == f"{ALLOWED_REDIRECT}/café"
    session_from_redirect(follow(sink.one(email).link), f"{ALLOWED_REDIRECT}/caf%C3%A9", "signup")


def test_a_foreign_redirect_to_put_into_a_link_lands_on_site_url(shared_mail):
    server, sink = shared_mail
    email = _signup_with(server)
    link = sink.one(email).link
    assert _raw_redirect(link) == SITE_URL
    forged = link.replace("redirect_to=" + SITE_URL, "redirect_to=https://evil.example/steal")
    session_from_redirect(follow(forged), SITE_URL, "signup")


def test_the_redirect_to_header_wins_over_the_query(shared_mail):
    server, sink = shared_mail
    header, query = f"{ALLOWED_REDIRECT}/from-header", f"{ALLOWED_REDIRECT}/from-query"
    email = _signup_with(server, params={"redirect_to": query}, headers={"redirect_to": header})
    assert _raw_redirect(sink.one(email).link) == header
    # Only one of the two is considered: a refused header does not fall back to the query.
    email = _signup_with(server, params={"redirect_to": query}, headers={"redirect_to": "https://evil.example/"})
    assert _raw_redirect(sink.one(email).link) == SITE_URL
    # Without either, an allowed Referer is next.
    email = _signup_with(server, headers={"Referer": f"{ALLOWED_REDIRECT}/from-referer"})
    assert _raw_redirect(sink.one(email).link) == f"{ALLOWED_REDIRECT}/from-referer"
    email = _signup_with(server, headers={"Referer": "https://evil.example/"})
    assert _raw_redirect(sink.one(email).link) == SITE_URL


# --- POST /otp and /magiclink (API.md §5.7) ----------------------------------------------------


def test_otp_without_create_user_refuses_unknown_addresses(shared_mail):
    server, sink = shared_mail
    email = new_email("nouser")
    assert_error(post(server, "/otp", {"email": email, "create_user": False}), 422, "otp_disabled",
                 "Signups not allowed for otp")
    assert sink.to(email) == []
    assert rows(server, "SELECT id FROM users WHERE email = $1", email) == []


@pytest.mark.parametrize("body", [{}, {"create_user": True}, {"create_user": None}])
def test_otp_for_an_unknown_address_creates_the_user_and_mails_a_confirmation(shared_mail, body):
    server, sink = shared_mail
    email = new_email("otpnew")
    resp = post(server, f"/otp?redirect_to={ALLOWED_REDIRECT}/in", {"email": email, "data": {"plan": "pro"}, **body})
    assert resp.status_code == 200 and resp.json() == {}, resp.text
    mail = sink.one(email)
    assert mail.subject == "Confirm your email address"
    assert mail.link_query["type"] == "signup" and _raw_redirect(mail.link) == f"{ALLOWED_REDIRECT}/in"
    resp = post(server, "/verify", {"email": email, "token": mail.code, "type": "email"})
    assert resp.status_code == 200, resp.text
    user = check_session(resp.json())["user"]
    assert user["email_confirmed_at"] and user["user_metadata"]["plan"] == "pro"


@pytest.mark.parametrize("endpoint, code_type", [("/otp", "magiclink"), ("/magiclink", "email")])
def test_magic_link_for_a_confirmed_user_link_and_code_each_work_once(shared_mail, endpoint, code_type):
    server, sink = shared_mail
    email = confirmed_user(shared_mail)
    target = f"{ALLOWED_REDIRECT}/signed-in"
    resp = post(server, f"{endpoint}?redirect_to={target}", {"email": email})
    assert resp.status_code == 200 and resp.json() == {}, resp.text
    mail = sink.last(email)
    assert mail.subject == "Your sign-in link"
    assert mail.from_name_and_address == (SENDER_NAME, ADMIN_EMAIL)
    token = mail.link_query["token"]
    assert HEX56.match(token) and token == token_hash(email, mail.code)
    assert mail.link == f"{server.url}/verify?token={token}&type=magiclink&redirect_to={target}"

    session = session_from_redirect(follow(mail.link), target, "magiclink")
    assert get_user(server, session["access_token"]).json()["email"] == email
    assert split_location(follow(mail.link))[2] == error_fragment("otp_expired", LINK_INVALID)

    # One magic link per GOTRUE_SMTP_MAX_FREQUENCY.
    body = assert_error(post(server, endpoint, {"email": email}), 429, "over_email_send_rate_limit")
    assert 55 <= int(FREQUENCY.match(body["msg"]).group(1)) <= 59, body
    assert len(sink.to(email)) == 2

    pass_cooldown()
    assert post(server, endpoint, {"email": email}).status_code == 200
    second = sink.last(email)
    assert len(sink.to(email)) == 3 and second.subject == "Your sign-in link"
    resp = post(server, "/verify", {"email": email, "token": second.code, "type": code_type})
    assert resp.status_code == 200, resp.text
    assert check_session(resp.json())["user"]["email"] == email
    assert_error(post(server, "/verify", {"email": email, "token": second.code, "type": code_type}),
                 403, "otp_expired", OTP_INVALID)
    assert split_location(follow(second.link))[2] == error_fragment("otp_expired", LINK_INVALID)


def test_magiclink_needs_an_email(shared_mail):
    server, _ = shared_mail
    assert_error(post(server, "/magiclink", {"email": ""}), 422, "validation_failed",
                 "Password recovery requires an email")
    assert_error(post(server, "/otp", {}), 400, "validation_failed", "One of email or phone must be set")
    # Without an address upstream looks nobody up, so create_user:false changes nothing.
    assert_error(post(server, "/otp", {"create_user": False}), 400, "validation_failed",
                 "One of email or phone must be set")


def test_otp_for_an_unconfirmed_user_resends_the_confirmation(shared_mail):
    server, sink = shared_mail
    email = new_email("pending")
    signup_unconfirmed(server, email)
    # The sign-up path, with its cooldown (the confirmation went out just now).
    assert_error(post(server, "/otp", {"email": email, "create_user": False}), 429, "over_email_send_rate_limit")
    pass_cooldown()
    assert post(server, "/otp", {"email": email, "create_user": False}).status_code == 200
    mail = sink.last(email)
    assert len(sink.to(email)) == 2 and mail.subject == "Confirm your email address"
    session_from_redirect(follow(mail.link), SITE_URL, "signup")
    assert sign_in(server, email).status_code == 200  # the random password of the sign-up path was not set


def test_a_short_max_frequency_lets_the_next_mail_through_after_it(strict_mail):
    import time

    server, sink = strict_mail
    email = new_email("often")
    signup_unconfirmed(server, email)
    confirm_email(server, email)
    assert post(server, "/otp", {"email": email}).status_code == 200
    body = assert_error(post(server, "/otp", {"email": email}), 429, "over_email_send_rate_limit")
    assert body["msg"] == "For security purposes, you can only request this after 0 seconds."
    time.sleep(1.05)
    assert post(server, "/otp", {"email": email}).status_code == 200
    assert_error(post(server, "/otp", {"email": email}), 429, "over_email_send_rate_limit")
    pass_cooldown(1.01)
    assert post(server, "/otp", {"email": email}).status_code == 200
    mails = sink.to(email)
    assert [m.subject for m in mails] == ["Confirm your email address"] + ["Your sign-in link"] * 3
    # Each new magic link replaced the previous one.
    assert split_location(follow(mails[1].link))[2] == error_fragment("otp_expired", LINK_INVALID)
    session_from_redirect(follow(mails[3].link), SITE_URL, "magiclink")


# --- POST /recover (API.md §5.8) ---------------------------------------------------------------


def test_recover_for_an_unknown_address_answers_the_same_and_mails_nothing(shared_mail):
    server, sink = shared_mail
    before = sink.count()
    email = new_email("ghost")
    resp = post(server, "/recover", {"email": email})
    assert resp.status_code == 200 and resp.json() == {}, resp.text
    assert sink.count() == before and sink.to(email) == []
    known = confirmed_user(shared_mail)
    resp = post(server, "/recover", {"email": known})
    assert resp.status_code == 200 and resp.json() == {}, resp.text
    assert sink.count() == before + 2  # the confirmation of `known`, then its recovery mail


def test_recovery_link_gives_a_recovery_session(shared_mail):
    server, sink = shared_mail
    email = confirmed_user(shared_mail)
    target = f"{ALLOWED_REDIRECT}/reset"
    assert post(server, f"/recover?redirect_to={target}", {"email": email}).status_code == 200
    mail = sink.last(email)
    assert mail.subject == "Reset your password"
    assert mail.link == f"{server.url}/verify?token={mail.link_query['token']}&type=recovery&redirect_to={target}"
    session = session_from_redirect(follow(mail.link), target, "recovery")
    resp = put_user(server, session["access_token"], {"password": "brand-new-secret-1"})
    assert resp.status_code == 200, resp.text
    assert sign_in(server, email, "brand-new-secret-1").status_code == 200
    assert_error(sign_in(server, email), 400, "invalid_credentials")
    # The same timer covers recovery and magic links.
    assert_error(post(server, "/recover", {"email": email}), 429, "over_email_send_rate_limit")
    assert_error(post(server, "/otp", {"email": email}), 429, "over_email_send_rate_limit")


def test_recovery_link_confirms_an_unconfirmed_address(shared_mail):
    server, sink = shared_mail
    email = new_email("recunconf")
    signup_unconfirmed(server, email)
    assert post(server, "/recover", {"email": email}).status_code == 200  # its own timer
    mail = sink.last(email)
    assert mail.subject == "Reset your password"
    session = session_from_redirect(follow(mail.link), SITE_URL, "recovery")
    assert get_user(server, session["access_token"]).json()["email_confirmed_at"]
    # Confirming consumed every pending token: the sign-up link is spent too.
    assert split_location(follow(sink.to(email)[0].link))[2] == error_fragment("otp_expired", LINK_INVALID)


def test_recovery_code_verifies_with_type_recovery(shared_mail):
    server, sink = shared_mail
    email = confirmed_user(shared_mail)
    assert post(server, "/recover", {"email": email}).status_code == 200
    code = sink.last(email).code
    assert_error(post(server, "/verify", {"email": email, "token": code, "type": "signup"}), 403, "otp_expired")
    resp = post(server, "/verify", {"email": email, "token": code, "type": "recovery"})
    assert resp.status_code == 200, resp.text
    check_session(resp.json())


def test_recovery_session_skips_current_password(strict_mail):
    server, sink = strict_mail
    email = new_email("current")
    signup_unconfirmed(server, email)
    session_from_redirect(follow(sink.one(email).link), SITE_URL, "signup")
    # A password session must name the current password…
    password_session = sign_in(server, email).json()
    assert_error(put_user(server, password_session["access_token"], {"password": "another-secret-2"}),
                 400, "current_password_required")
    # … a recovery session need not.
    assert post(server, "/recover", {"email": email}).status_code == 200
    recovery = session_from_redirect(follow(sink.last(email).link), SITE_URL, "recovery")
    resp = put_user(server, recovery["access_token"], {"password": "another-secret-2"})
    assert resp.status_code == 200, resp.text
    assert sign_in(server, email, "another-secret-2").status_code == 200


# --- POST /invite (API.md §5.13) ---------------------------------------------------------------


def invite(server, email: str, **kwargs) -> httpx.Response:
    return post(server, "/invite", {"email": email, **kwargs.pop("body", {})},
                headers=bearer(server.service_role_key), **kwargs)


def test_invite_mail_link_signs_the_invitee_in(shared_mail):
    server, sink = shared_mail
    email = new_email("invitee")
    target = f"{ALLOWED_REDIRECT}/join"
    resp = invite(server, email, body={"data": {"team": "red"}}, params={"redirect_to": target})
    assert resp.status_code == 200, resp.text
    user = resp.json()
    assert user["email"] == email and user["invited_at"] and user["confirmation_sent_at"]
    assert user["user_metadata"] == {"team": "red"} and [i["provider"] for i in user["identities"]] == ["email"]
    mail = sink.one(email)
    assert mail.subject == "You've been invited"
    token = mail.link_query["token"]
    assert HEX56.match(token)
    assert mail.link == f"{server.url}/verify?token={token}&type=invite&redirect_to={target}"
    session = session_from_redirect(follow(mail.link), target, "invite")
    me = get_user(server, session["access_token"]).json()
    assert me["email_confirmed_at"] and me["id"] == user["id"]
    # Now confirmed: inviting the address again is refused.
    assert_error(invite(server, email), 422, "email_exists",
                 "A user with this email address has already been registered")


def test_accept_invite_netlify_style_sets_the_password(shared_mail):
    server, sink = shared_mail
    email = new_email("netlify")
    assert invite(server, email).status_code == 200
    # Re-inviting an unconfirmed address sends again, without a cooldown.
    assert invite(server, email).status_code == 200
    first, second = sink.to(email)
    token = second.link_query["token"]
    resp = post(server, "/verify", {"token": token, "type": "signup", "password": "invited-secret-3"})
    assert resp.status_code == 200, resp.text
    assert check_session(resp.json())["user"]["email_confirmed_at"]
    assert sign_in(server, email, "invited-secret-3").status_code == 200
    assert split_location(follow(first.link))[2] == error_fragment("otp_expired", LINK_INVALID)


def test_signing_up_as_an_invitee_resends_a_confirmation_and_reveals_nothing(shared_mail):
    server, sink = shared_mail
    email = new_email("invsignup")
    assert invite(server, email, body={"data": {"secret": "x"}}).status_code == 200
    pass_cooldown()  # invites start the confirmation timer
    user = signup_unconfirmed(server, email)
    assert user["user_metadata"] == {} and user["identities"] == [], user
    invite_mail, confirmation = sink.to(email)
    assert invite_mail.subject == "You've been invited" and confirmation.subject == "Confirm your email address"
    session_from_redirect(follow(confirmation.link), SITE_URL, "signup")


def test_invite_code_verifies_too(shared_mail):
    server, sink = shared_mail
    email = new_email("invcode")
    assert invite(server, email).status_code == 200
    resp = post(server, "/verify", {"email": email, "token": sink.one(email).code, "type": "invite"})
    assert resp.status_code == 200, resp.text


def test_invite_of_a_confirmed_user_is_refused_and_sends_nothing(shared_mail):
    server, sink = shared_mail
    email = confirmed_user(shared_mail)
    before = len(sink.to(email))
    assert_error(invite(server, email), 422, "email_exists")
    assert len(sink.to(email)) == before


def test_invite_needs_an_admin(shared_mail):
    server, sink = shared_mail
    email = new_email("noadmin")
    resp = post(server, "/invite", {"email": email})
    assert_error(resp, 401, "no_authorization")
    user_session = sign_in(server, confirmed_user(shared_mail)).json()
    assert_error(post(server, "/invite", {"email": email}, headers=bearer(user_session["access_token"])),
                 403, "not_admin")
    assert sink.to(email) == []


# --- sign-ups disabled; longer codes -----------------------------------------------------------

closed_mail = mail_fixture(GOTRUE_DISABLE_SIGNUP="true", GOTRUE_MAILER_OTP_LENGTH="8")


def test_with_signups_disabled_only_confirmed_users_get_magic_links(closed_mail):
    server, sink = closed_mail
    assert_error(post(server, "/signup", {"email": new_email("closed"), "password": PASSWORD}), 422,
                 "signup_disabled")
    assert_error(post(server, "/otp", {"email": new_email("closed")}), 422, "signup_disabled")
    # An invitee (invites are still allowed) has not finished signing up: same answer.
    invitee = new_email("invitee")
    assert invite(server, invitee).status_code == 200
    mail = sink.one(invitee)
    assert re.fullmatch(r"\d{8}", mail.code) and mail.link_query["token"] == token_hash(invitee, mail.code)
    before = sink.count()
    assert_error(post(server, "/otp", {"email": invitee}), 422, "signup_disabled")
    assert_error(post(server, "/magiclink", {"email": invitee}), 422, "signup_disabled")
    assert sink.count() == before
    # Once confirmed, magic links work.
    session_from_redirect(follow(mail.link), SITE_URL, "invite")
    assert post(server, "/otp", {"email": invitee}).status_code == 200
    magic = sink.last(invitee)
    assert magic.subject == "Your sign-in link" and re.fullmatch(r"\d{8}", magic.code)
    resp = post(server, "/verify", {"email": invitee, "token": magic.code, "type": "magiclink"})
    assert resp.status_code == 200, resp.text
