"""End to end through a real SMTP server: changing the email address (PUT /user, /resend
type=email_change) and reauthentication (GET /reauthenticate, nonce on PUT /user)."""

from __future__ import annotations

from datetime import timedelta

from email_e2e import (
    FREQUENCY, HEX56, LINK_INVALID, OTP_INVALID, check_session, error_fragment, follow, get, get_user, pass_cooldown,
    post, put_user, session_from_redirect, sign_in, signup_unconfirmed, split_location, token_hash,
)
from gotrue_lite import clock
from helpers import PASSWORD, assert_error, bearer, new_email, rows
from smtp_server import ALLOWED_REDIRECT, _reset_clock, mail_fixture, shared_mail  # noqa: F401

SITE_URL = "http://localhost:3000"
ACCEPTED = "Confirmation link accepted. Please proceed to confirm link sent to the other email"

insecure_mail = mail_fixture(GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED="false")
reauth_mail = mail_fixture(GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION="true")


def signed_in(mailed, tag: str = "owner") -> tuple[str, dict]:
    """A confirmed user (through its mailed link) and the session that link gave."""
    server, sink = mailed
    email = new_email(tag)
    signup_unconfirmed(server, email)
    session = session_from_redirect(follow(sink.one(email).link), SITE_URL, "signup")
    return email, session


# --- secure email change (SESSIONS.md §3.9) ----------------------------------------------------


def test_secure_email_change_needs_both_links(shared_mail):
    server, sink = shared_mail
    old, session = signed_in(shared_mail)
    new = new_email("moved")
    target = f"{ALLOWED_REDIRECT}/email-changed"
    resp = put_user(server, session["access_token"], {"email": new}, params={"redirect_to": target})
    assert resp.status_code == 200, resp.text
    user = resp.json()
    assert user["email"] == old and user["new_email"] == new and user["email_change_sent_at"], user

    to_new, to_old = sink.one(new), sink.last(old)
    assert len(sink.to(old)) == 2  # the sign-up confirmation, then this
    for mail in (to_new, to_old):
        assert mail.subject == "Confirm your new email address"
        assert new in mail.text and old in mail.text
        assert mail.link_query["type"] == "email_change" and HEX56.match(mail.link_query["token"])
        assert mail.link == (f"{server.url}/verify?token={mail.link_query['token']}&type=email_change"
                             f"&redirect_to={target}")
    # Independent codes, each hashed with the address it went to.
    assert to_new.link_query["token"] == token_hash(new, to_new.code)
    assert to_old.link_query["token"] == token_hash(old, to_old.code)

    first = follow(to_old.link)
    base, query, fragment = split_location(first)
    assert base == target and query == {}
    assert fragment == "message=Confirmation+link+accepted.+Please+proceed+to+confirm+link+sent+to+the+other+email&sb="
    assert get_user(server, session["access_token"]).json()["email"] == old
    # The accepted link is spent; the other one finishes the change.
    assert split_location(follow(to_old.link))[2] == error_fragment("otp_expired", LINK_INVALID)

    changed = session_from_redirect(follow(to_new.link), target, "email_change")
    me = get_user(server, changed["access_token"]).json()
    assert me["email"] == new and me["email_confirmed_at"] and not me.get("new_email"), me
    # A confirmed account keeps the time it was first confirmed (upstream ConfirmEmailChange).
    assert me["email_confirmed_at"] == user["email_confirmed_at"], (me, user)
    assert [i["identity_data"]["email"] for i in me["identities"] if i["provider"] == "email"] == [new]
    assert sign_in(server, new).status_code == 200
    assert_error(sign_in(server, old), 400, "invalid_credentials")
    assert rows(server, "SELECT id FROM one_time_tokens WHERE user_id = $1", me["id"]) == []


def test_secure_email_change_by_codes(shared_mail):
    server, sink = shared_mail
    old, session = signed_in(shared_mail)
    new = new_email("coded")
    assert put_user(server, session["access_token"], {"email": new}).status_code == 200
    code_new, code_old = sink.one(new).code, sink.last(old).code

    resp = post(server, "/verify", {"email": new, "token": code_new, "type": "email_change"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"msg": ACCEPTED, "code": "200"}
    assert_error(post(server, "/verify", {"email": new, "token": code_new, "type": "email_change"}),
                 403, "otp_expired", OTP_INVALID)
    resp = post(server, "/verify", {"email": old, "token": code_old, "type": "email_change"})
    assert resp.status_code == 200, resp.text
    assert check_session(resp.json())["user"]["email"] == new


def test_email_change_to_a_taken_address_is_refused_without_mail(shared_mail):
    server, sink = shared_mail
    _, session = signed_in(shared_mail)
    taken, _ = signed_in(shared_mail, "taken")
    before = sink.count()
    assert_error(put_user(server, session["access_token"], {"email": taken}), 422, "email_exists",
                 "A user with this email address has already been registered")
    assert sink.count() == before


def test_resend_email_change(shared_mail):
    server, sink = shared_mail
    old, session = signed_in(shared_mail)
    new = new_email("again")
    assert put_user(server, session["access_token"], {"email": new}).status_code == 200
    first_new = sink.one(new)
    assert_error(put_user(server, session["access_token"], {"email": new_email("other")}), 429,
                 "over_email_send_rate_limit")

    body = assert_error(post(server, "/resend", {"type": "email_change", "email": old}), 429,
                        "over_email_send_rate_limit")
    assert FREQUENCY.match(body["msg"]), body
    pass_cooldown()
    resp = post(server, "/resend", {"type": "email_change", "email": old})
    assert resp.status_code == 200 and resp.json() == {}, resp.text
    assert len(sink.to(new)) == 2 and len(sink.to(old)) == 3  # signup, change, resent change
    second_new, second_old = sink.last(new), sink.last(old)
    if second_new.code != first_new.code:
        assert split_location(follow(first_new.link))[2] == error_fragment("otp_expired", LINK_INVALID)
    split_location(follow(second_old.link))  # accepted, one to go
    session_from_redirect(follow(second_new.link), SITE_URL, "email_change")
    assert sign_in(server, new).status_code == 200

    # Nothing pending (any more), or nobody: nothing is sent.
    pass_cooldown(122)
    before = sink.count()
    for address in (new, new_email("nobody")):
        resp = post(server, "/resend", {"type": "email_change", "email": address})
        assert resp.status_code == 200 and resp.json() == {}, resp.text
    assert sink.count() == before


def test_email_change_without_secure_change_mails_only_the_new_address(insecure_mail):
    server, sink = insecure_mail
    old, session = signed_in(insecure_mail)
    new = new_email("plain")
    resp = put_user(server, session["access_token"], {"email": new})
    assert resp.status_code == 200, resp.text
    assert resp.json()["new_email"] == new
    mail = sink.one(new)
    assert len(sink.to(old)) == 1  # only its sign-up confirmation
    assert mail.subject == "Confirm your new email address" and mail.link_query["type"] == "email_change"
    changed = session_from_redirect(follow(mail.link), SITE_URL, "email_change")
    assert get_user(server, changed["access_token"]).json()["email"] == new
    assert sign_in(server, new).status_code == 200


def test_email_change_without_secure_change_by_code(insecure_mail):
    server, sink = insecure_mail
    old, session = signed_in(insecure_mail)
    new = new_email("plaincode")
    assert put_user(server, session["access_token"], {"email": new}).status_code == 200
    resp = post(server, "/verify", {"email": new, "token": sink.one(new).code, "type": "email_change"})
    assert resp.status_code == 200, resp.text
    assert check_session(resp.json())["user"]["email"] == new


# --- reauthentication (SESSIONS.md §3.10) ------------------------------------------------------


def test_reauthenticate_mails_a_code(shared_mail):
    server, sink = shared_mail
    email, session = signed_in(shared_mail)
    resp = get(server, "/reauthenticate", headers=bearer(session["access_token"]))
    assert resp.status_code == 200 and resp.json() == {}, resp.text
    mail = sink.last(email)
    code = mail.code
    assert mail.subject == f"{code} is your verification code"
    assert mail.links == [] and "token=" not in mail.text
    assert rows(server, "SELECT reauthentication_token FROM users WHERE email = $1", email) == [
        {"reauthentication_token": token_hash(email, code)}]
    body = assert_error(get(server, "/reauthenticate", headers=bearer(session["access_token"])), 429,
                        "over_email_send_rate_limit")
    assert FREQUENCY.match(body["msg"]), body


def test_reauthenticate_needs_a_confirmed_email(shared_mail):
    server, sink = shared_mail
    email = new_email("unconfirmed")
    signup_unconfirmed(server, email)
    # An unconfirmed user has no session; a token minted for it stands in.
    from helpers import mint

    user_id = rows(server, "SELECT id FROM users WHERE email = $1", email)[0]["id"]
    token = mint({"sub": str(user_id), "email": email})
    assert_error(get(server, "/reauthenticate", headers=bearer(token)), 422, "email_not_confirmed",
                 "Please verify your email first.")
    assert len(sink.to(email)) == 1


def test_password_change_on_an_old_session_needs_the_mailed_nonce(reauth_mail):
    server, sink = reauth_mail
    email, session = signed_in(reauth_mail)
    token = session["access_token"]
    # A fresh session may change the password without a nonce.
    assert put_user(server, token, {"password": "fresh-session-pw-1"}).status_code == 200

    clock.offset = timedelta(hours=25)  # the session is now more than 24 h old
    assert_error(put_user(server, token, {"password": "old-session-pw-2"}), 400, "reauthentication_needed")
    assert_error(put_user(server, token, {"password": "old-session-pw-2", "nonce": "123456"}), 422,
                 "reauthentication_not_valid", "Nonce has expired or is invalid")

    resp = get(server, "/reauthenticate", headers=bearer(token))
    assert resp.status_code == 200, resp.text
    nonce = sink.last(email).code
    wrong = f"{(int(nonce) + 1) % 1_000_000:06d}"
    assert_error(put_user(server, token, {"password": "old-session-pw-2", "nonce": wrong}), 422,
                 "reauthentication_not_valid")
    resp = put_user(server, token, {"password": "old-session-pw-2", "nonce": nonce})
    assert resp.status_code == 200, resp.text
    assert sign_in(server, email, "old-session-pw-2").status_code == 200
    # Spent with the change.
    assert_error(put_user(server, token, {"password": "old-session-pw-3", "nonce": nonce}), 422,
                 "reauthentication_not_valid")


def test_an_expired_nonce_is_refused(reauth_mail):
    server, sink = reauth_mail
    email, session = signed_in(reauth_mail)
    clock.offset = timedelta(hours=25)
    assert get(server, "/reauthenticate", headers=bearer(session["access_token"])).status_code == 200
    nonce = sink.last(email).code
    clock.offset += timedelta(seconds=86400 + 5)  # past GOTRUE_MAILER_OTP_EXP
    assert_error(put_user(server, session["access_token"], {"password": "too-late-pw-4", "nonce": nonce}), 422,
                 "reauthentication_not_valid")
    assert sign_in(server, email, PASSWORD).status_code == 200
