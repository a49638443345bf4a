"""End to end through a real SMTP server: the PKCE variants of the email flows (API.md §8)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from email_e2e import (
    HEX56, UUID, LINK_INVALID, check_session, error_fragment, follow, get_user, pass_cooldown, pkce_pair, post,
    put_user, session_from_redirect, sign_in, signup_unconfirmed, split_location, token_hash,
)
from gotrue_lite import clock
from helpers import PASSWORD, assert_error, claims_of, new_email, rows
from smtp_server import ALLOWED_REDIRECT, _reset_clock, shared_mail  # noqa: F401

SITE_URL = "http://localhost:3000"
PKCE_TOKEN_PREFIX = "pkce_"


def exchange(server, auth_code: str, verifier: str):
    return post(server, "/token?grant_type=pkce", {"auth_code": auth_code, "code_verifier": verifier})


def code_from_redirect(resp, target: str) -> str:
    base, query, fragment = split_location(resp)
    assert fragment == "", resp.headers["location"]
    assert base.split("?")[0] == target.split("?")[0], resp.headers["location"]
    assert UUID.match(query.get("code", "")), resp.headers["location"]
    return query["code"]


def assert_pkce_link(mail, address: str, vtype: str) -> str:
    token = mail.link_query["token"]
    assert token.startswith(PKCE_TOKEN_PREFIX) and HEX56.match(token[len(PKCE_TOKEN_PREFIX):]), mail.link
    assert token == PKCE_TOKEN_PREFIX + token_hash(address, mail.code)
    assert mail.link_query["type"] == vtype
    return token


def test_pkce_signup_link_gives_a_code_for_the_verifier(shared_mail):
    server, sink = shared_mail
    verifier, challenge = pkce_pair()
    email = new_email("pkce")
    target = f"{ALLOWED_REDIRECT}/callback?next=home"
    user = signup_unconfirmed(server, email, query=f"?redirect_to={ALLOWED_REDIRECT}/callback%3Fnext%3Dhome",
                              code_challenge=challenge, code_challenge_method="s256")
    mail = sink.one(email)
    assert mail.subject == "Confirm your email address"
    assert_pkce_link(mail, email, "signup")
    assert mail.link_query["redirect_to"] == target

    resp = follow(mail.link)
    code = code_from_redirect(resp, target)
    assert resp.headers["location"] == f"{ALLOWED_REDIRECT}/callback?code={code}&next=home"
    # The link confirmed the address but signed nobody in yet.
    assert rows(server, "SELECT email_confirmed_at IS NOT NULL AS confirmed FROM users WHERE id = $1",
                user["id"]) == [{"confirmed": True}]

    assert_error(exchange(server, code, pkce_pair()[0]), 400, "bad_code_verifier")
    resp = exchange(server, code, verifier)  # a wrong verifier did not burn the code
    assert resp.status_code == 200, resp.text
    session = check_session(resp.json())
    assert session["user"]["id"] == user["id"] and session["user"]["email_confirmed_at"]
    assert get_user(server, session["access_token"]).status_code == 200
    assert [a["method"] for a in claims_of(session["access_token"])["amr"]] == ["email/signup"]

    assert_error(exchange(server, code, verifier), 404, "flow_state_not_found")
    # The spent link reports its error in the query as well as in the fragment.
    base, query, fragment = split_location(follow(mail.link))
    assert fragment == error_fragment("otp_expired", LINK_INVALID)
    assert query == {"error": "access_denied", "error_code": "otp_expired", "error_description": LINK_INVALID,
                     "next": "home"}


@pytest.mark.parametrize("method", ["s256", "S256", "plain"])
def test_pkce_methods(shared_mail, method):
    server, sink = shared_mail
    verifier, challenge = pkce_pair()
    if method == "plain":
        challenge = verifier
    email = new_email("method")
    signup_unconfirmed(server, email, code_challenge=challenge, code_challenge_method=method)
    code = code_from_redirect(follow(sink.one(email).link), SITE_URL)
    assert exchange(server, code, verifier).status_code == 200


def test_pkce_code_expires_300_s_after_it_was_issued(shared_mail):
    server, sink = shared_mail
    verifier, challenge = pkce_pair()
    email = new_email("slow")
    signup_unconfirmed(server, email, code_challenge=challenge, code_challenge_method="s256")
    # gotrue-lite counts from the click, not from the sign-up (API.md §8.4 step 3).
    clock.offset = timedelta(minutes=30)
    code = code_from_redirect(follow(sink.one(email).link), SITE_URL)
    clock.offset += timedelta(seconds=301)
    assert_error(exchange(server, code, verifier), 422, "flow_state_expired")


def test_pkce_code_within_300_s_still_works(shared_mail):
    server, sink = shared_mail
    verifier, challenge = pkce_pair()
    email = new_email("intime")
    signup_unconfirmed(server, email, code_challenge=challenge, code_challenge_method="s256")
    code = code_from_redirect(follow(sink.one(email).link), SITE_URL)
    clock.offset = timedelta(seconds=290)
    assert exchange(server, code, verifier).status_code == 200


def test_the_otp_code_of_a_pkce_mail_still_verifies(shared_mail):
    server, sink = shared_mail
    _, challenge = pkce_pair()
    email = new_email("pkcecode")
    signup_unconfirmed(server, email, code_challenge=challenge, code_challenge_method="s256")
    mail = sink.one(email)
    resp = post(server, "/verify", {"email": email, "token": mail.code, "type": "signup"})
    assert resp.status_code == 200, resp.text
    check_session(resp.json())
    # POST /verify with the pkce_ hash also answers with a session, never with a code.
    email2 = new_email("pkcehash")
    signup_unconfirmed(server, email2, code_challenge=challenge, code_challenge_method="s256")
    resp = post(server, "/verify", {"token_hash": sink.one(email2).link_query["token"], "type": "signup"})
    assert resp.status_code == 200, resp.text
    check_session(resp.json())


def test_pkce_recovery(shared_mail):
    server, sink = shared_mail
    email = new_email("pkcerec")
    signup_unconfirmed(server, email)
    session_from_redirect(follow(sink.one(email).link), SITE_URL, "signup")
    verifier, challenge = pkce_pair()
    target = f"{ALLOWED_REDIRECT}/reset"
    resp = post(server, f"/recover?redirect_to={target}",
                {"email": email, "code_challenge": challenge, "code_challenge_method": "s256"})
    assert resp.status_code == 200 and resp.json() == {}, resp.text
    mail = sink.last(email)
    assert mail.subject == "Reset your password"
    assert_pkce_link(mail, email, "recovery")
    code = code_from_redirect(follow(mail.link), target)
    resp = exchange(server, code, verifier)
    assert resp.status_code == 200, resp.text
    session = check_session(resp.json())
    assert [a["method"] for a in claims_of(session["access_token"])["amr"]] == ["recovery"]
    assert put_user(server, session["access_token"], {"password": "pkce-reset-pw-1"}).status_code == 200
    assert sign_in(server, email, "pkce-reset-pw-1").status_code == 200


def test_pkce_otp_for_a_new_and_for_a_confirmed_user(shared_mail):
    server, sink = shared_mail
    email = new_email("pkceotp")
    verifier, challenge = pkce_pair()
    pkce = {"code_challenge": challenge, "code_challenge_method": "s256"}
    assert post(server, "/otp", {"email": email, **pkce}).status_code == 200
    mail = sink.one(email)
    assert mail.subject == "Confirm your email address"
    assert_pkce_link(mail, email, "signup")
    code = code_from_redirect(follow(mail.link), SITE_URL)
    assert exchange(server, code, verifier).status_code == 200

    verifier, challenge = pkce_pair()
    assert post(server, "/otp", {"email": email, "code_challenge": challenge, "code_challenge_method": "s256"}
                ).status_code == 200
    mail = sink.last(email)
    assert mail.subject == "Your sign-in link"
    assert_pkce_link(mail, email, "magiclink")
    code = code_from_redirect(follow(mail.link), SITE_URL)
    resp = exchange(server, code, verifier)
    assert resp.status_code == 200, resp.text
    assert [a["method"] for a in claims_of(resp.json()["access_token"])["amr"]] == ["magiclink"]


def test_pkce_resend_signup(shared_mail):
    server, sink = shared_mail
    email = new_email("pkceresend")
    signup_unconfirmed(server, email)
    pass_cooldown()
    verifier, challenge = pkce_pair()
    resp = post(server, "/resend", {"type": "signup", "email": email, "code_challenge": challenge,
                                    "code_challenge_method": "s256"})
    assert resp.status_code == 200, resp.text
    mail = sink.last(email)
    assert_pkce_link(mail, email, "signup")
    assert exchange(server, code_from_redirect(follow(mail.link), SITE_URL), verifier).status_code == 200


def test_pkce_secure_email_change(shared_mail):
    server, sink = shared_mail
    old = new_email("pkceold")
    signup_unconfirmed(server, old)
    session = session_from_redirect(follow(sink.one(old).link), SITE_URL, "signup")
    new = new_email("pkcenew")
    verifier, challenge = pkce_pair()
    target = f"{ALLOWED_REDIRECT}/changed"
    resp = put_user(server, session["access_token"],
                    {"email": new, "code_challenge": challenge, "code_challenge_method": "s256"},
                    params={"redirect_to": target})
    assert resp.status_code == 200, resp.text
    to_new, to_old = sink.one(new), sink.last(old)
    assert_pkce_link(to_new, new, "email_change")
    assert_pkce_link(to_old, old, "email_change")

    base, query, fragment = split_location(follow(to_old.link))
    message = "Confirmation link accepted. Please proceed to confirm link sent to the other email"
    assert base.split("?")[0] == target and query == {"message": message}
    assert fragment == "message=Confirmation+link+accepted.+Please+proceed+to+confirm+link+sent+to+the+other+email&sb="
    code = code_from_redirect(follow(to_new.link), target)
    resp = exchange(server, code, verifier)
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["email"] == new


def test_pkce_parameters_are_checked(shared_mail):
    server, sink = shared_mail
    email = new_email("badpkce")
    body = {"email": email, "password": PASSWORD}
    assert_error(post(server, "/signup", {**body, "code_challenge": pkce_pair()[1]}), 400, "validation_failed",
                 "PKCE flow requires code_challenge_method and code_challenge")
    assert_error(post(server, "/signup", {**body, "code_challenge": "short", "code_challenge_method": "s256"}),
                 400, "validation_failed", "code challenge has to be between 43 and 128 characters")
    assert_error(exchange(server, "", "x"), 400, "validation_failed")
    assert_error(exchange(server, "00000000-0000-4000-8000-000000000000", "x" * 43), 404, "flow_state_not_found")
    assert sink.to(email) == []
