"""POST /signup: sessions, bare users, anti-enumeration, validation and races (API.md §5.3, §9)."""

from __future__ import annotations

import re
import uuid

import pytest

from helpers import (
    PASSWORD, RFC3339_UTC, assert_error, assert_session, bearer, claims_of, confirm_email, get_user,  # noqa: F401
    new_email, post, rows, shared, sign_in, signup, concurrently,
)

RATE_LIMITED = re.compile(r"^For security purposes, you can only request this after \d+ seconds?\.$")
SYNTHETIC_USER_KEYS = {"id", "aud", "role", "email", "phone", "confirmation_sent_at", "app_metadata",
                       "user_metadata", "identities", "created_at", "updated_at", "is_anonymous"}


def user_rows(server, email: str) -> list[dict]:
    return rows(server, "SELECT id FROM users WHERE email = $1", email)


# --- autoconfirm on: a session -------------------------------------------------------------


def test_autoconfirmed_signup_returns_a_session(shared):
    email = new_email()
    data = {"name": "Ann", "email": "spoof@example.com", "n": 1}
    resp = signup(shared, email, data=data)
    assert resp.status_code == 200, resp.text
    session = resp.json()
    assert_session(session)
    assert "weak_password" not in session
    assert "provider_token" not in session and "provider_refresh_token" not in session

    user = session["user"]
    uuid.UUID(user["id"])
    assert user["aud"] == "authenticated"
    assert user["role"] == "authenticated"
    assert user["email"] == email
    assert user["phone"] == ""
    assert user["is_anonymous"] is False
    assert user["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert user["user_metadata"] == {**data, "email_verified": True}
    for key in ("email_confirmed_at", "confirmed_at", "last_sign_in_at", "created_at", "updated_at"):
        assert RFC3339_UTC.match(user[key]), (key, user[key])
    assert "factors" not in user

    [identity] = user["identities"]
    assert identity["provider"] == "email"
    assert identity["id"] == user["id"] and identity["user_id"] == user["id"]
    assert identity["identity_id"] != identity["id"]
    uuid.UUID(identity["identity_id"])
    assert identity["email"] == email
    identity_data = identity["identity_data"]
    assert {"sub", "email", "email_verified", "phone_verified", "name", "n"} <= set(identity_data)
    assert identity_data["sub"] == user["id"]
    assert identity_data["email"] == email  # sign-up data never overrides the identity's own keys
    assert identity_data["name"] == "Ann" and identity_data["n"] == 1
    assert identity_data["phone_verified"] is False

    claims = claims_of(session["access_token"])
    assert claims["sub"] == user["id"]
    assert claims["exp"] == session["expires_at"]
    assert [entry["method"] for entry in claims["amr"]] == ["password"]
    assert get_user(shared, session["access_token"]).json()["id"] == user["id"]


def test_signup_stores_the_email_lower_cased(shared):
    email = new_email("MiXeD").replace("example.com", "Example.COM")
    resp = signup(shared, email)
    assert resp.status_code == 200, resp.text
    user = resp.json()["user"]
    assert user["email"] == email.lower()
    assert user["identities"][0]["identity_data"]["email"] == email.lower()
    assert [r["id"] for r in user_rows(shared, email.lower())] == [user["id"]]
    assert sign_in(shared, email.upper()).json()["user"]["id"] == user["id"]
    assert_error(signup(shared, email.lower()), 422, "user_already_exists", "User already registered")


def test_duplicate_signup_with_autoconfirm_is_user_already_exists(shared):
    email = new_email()
    assert signup(shared, email).status_code == 200
    assert_error(signup(shared, email), 422, "user_already_exists", "User already registered")
    assert_error(signup(shared, email, "a-different-password"), 422, "user_already_exists", "User already registered")
    assert len(user_rows(shared, email)) == 1


def test_public_endpoints_ignore_the_anon_key(shared):
    resp = post(shared, "/signup", {"email": new_email(), "password": PASSWORD}, headers=bearer(shared.anon_key))
    assert resp.status_code == 200, resp.text
    assert_session(resp.json())


# --- autoconfirm off: a bare user, then anti-enumeration -------------------------------------


def test_signup_without_autoconfirm_returns_a_bare_user(make_server, backend):
    server = make_server(backend, GOTRUE_MAILER_AUTOCONFIRM="false")
    email = new_email()
    resp = signup(server, email, data={"plan": "free"})
    assert resp.status_code == 200, resp.text
    user = resp.json()
    assert "access_token" not in user and "refresh_token" not in user and "user" not in user
    assert user["email"] == email
    assert RFC3339_UTC.match(user["confirmation_sent_at"])
    for absent in ("email_confirmed_at", "confirmed_at", "last_sign_in_at"):
        assert absent not in user, absent
    assert user["role"] == "authenticated"
    assert user["user_metadata"] == {"plan": "free"}
    assert user["app_metadata"] == {"provider": "email", "providers": ["email"]}
    [identity] = user["identities"]
    assert identity["provider"] == "email"
    assert identity["identity_data"]["email_verified"] is False

    # the same unconfirmed address again within 60 s: the confirmation mail is rate limited
    again = signup(server, email, data={"plan": "other"})
    body = assert_error(again, 429, "over_email_send_rate_limit")
    assert RATE_LIMITED.match(body["msg"]), body["msg"]
    assert len(user_rows(server, email)) == 1

    # once confirmed, a repeated sign-up answers an obfuscated user built from scratch (§9)
    confirm_email(server, email)
    repeated = signup(server, email, "another-password", data={"x": "y"})
    assert repeated.status_code == 200, repeated.text
    fake = repeated.json()
    assert set(fake) == SYNTHETIC_USER_KEYS, set(fake) ^ SYNTHETIC_USER_KEYS
    assert fake["id"] != user["id"]
    uuid.UUID(fake["id"])
    assert fake["role"] == ""
    assert fake["aud"] == "authenticated"
    assert fake["email"] == email and fake["phone"] == ""
    assert fake["identities"] == []
    assert fake["user_metadata"] == {"x": "y"}
    assert fake["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert fake["is_anonymous"] is False
    assert fake["created_at"] == fake["updated_at"] == fake["confirmation_sent_at"]
    assert [r["id"] for r in user_rows(server, email)] == [user["id"]]
    # nothing changed on the real account: the original password still signs in
    assert sign_in(server, email).status_code == 200
    assert_error(sign_in(server, email, "another-password"), 400, "invalid_credentials")


# --- configuration switches ------------------------------------------------------------------


def test_disable_signup(make_server, backend):
    server = make_server(backend, GOTRUE_DISABLE_SIGNUP="true", GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED="true")
    message = "Signups not allowed for this instance"
    assert_error(signup(server, new_email()), 422, "signup_disabled", message)
    assert_error(post(server, "/signup", {"data": {}}), 422, "signup_disabled", message)
    assert_error(signup(server, "not-an-email"), 422, "signup_disabled", message)
    assert rows(server, "SELECT id FROM users") == []


def test_email_provider_disabled(make_server, backend):
    server = make_server(backend, GOTRUE_EXTERNAL_EMAIL_ENABLED="false")
    assert_error(signup(server, new_email()), 400, "email_provider_disabled", "Email signups are disabled")


def test_phone_signup_with_phone_provider_disabled(shared):
    resp = post(shared, "/signup", {"phone": "+1 555 0100 123", "password": PASSWORD})
    assert_error(resp, 400, "phone_provider_disabled", "Phone signups are disabled")


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@example.com", "a b@example.com", "a@@example.com"])
def test_invalid_email(shared, email):
    assert_error(signup(shared, email), 400, "validation_failed", "Unable to validate email address: invalid format")


def test_overlong_email(shared):
    assert_error(signup(shared, "a" * 250 + "@example.com"), 400, "validation_failed", "An email address is too long")


@pytest.mark.parametrize("body", [{}, {"password": ""}, {"password": None}])
def test_missing_password(shared, body):
    resp = post(shared, "/signup", {"email": new_email(), **body})
    assert_error(resp, 400, "validation_failed", "Signup requires a valid password")


def test_short_password_is_weak(shared):
    for password in ("a", "12345", "äää"[:2]):
        body = assert_error(signup(shared, new_email(), password), 422, "weak_password",
                            "Password should be at least 6 characters.")
        assert body["weak_password"] == {"reasons": ["length"]}
    assert signup(shared, new_email(), "123456").status_code == 200


def test_password_policy_settings(make_server, backend):
    sets = "abcdefghijklmnopqrstuvwxyz:ABCDEFGHIJKLMNOPQRSTUVWXYZ:0123456789"
    server = make_server(backend, GOTRUE_PASSWORD_MIN_LENGTH="10", GOTRUE_PASSWORD_REQUIRED_CHARACTERS=sets)
    length = "Password should be at least 10 characters."
    chars = ("Password should contain at least one character of each: abcdefghijklmnopqrstuvwxyz, "
             "ABCDEFGHIJKLMNOPQRSTUVWXYZ, 0123456789.")
    for password, message, reasons in (
        ("Abcdefgh1", length, ["length"]),
        ("abcdefghij1", chars, ["characters"]),
        ("ABCDEFGHIJ1", chars, ["characters"]),
        ("ab", f"{length} {chars}", ["length", "characters"]),
    ):
        body = assert_error(signup(server, new_email(), password), 422, "weak_password", message)
        assert body["weak_password"] == {"reasons": reasons}, password
    assert signup(server, new_email(), "Abcdefghi1").status_code == 200


def test_password_over_72_bytes(shared):
    message = "Password cannot be longer than 72 characters"
    assert_error(signup(shared, new_email(), "x" * 73), 400, "validation_failed", message)
    assert_error(signup(shared, new_email(), "é" * 37), 400, "validation_failed", message)  # 37 chars, 74 bytes
    assert signup(shared, new_email(), "x" * 72).status_code == 200


def test_email_and_phone_together(shared):
    resp = post(shared, "/signup", {"email": new_email(), "phone": "15550100123", "password": PASSWORD})
    assert_error(resp, 400, "validation_failed", "Only an email address or phone number should be provided on signup.")


# --- anonymous sign-ins ----------------------------------------------------------------------


@pytest.mark.parametrize("body", [{}, {"data": {"a": 1}}, {"password": PASSWORD}, {"email": "", "phone": ""},
                                  {"email": None, "phone": None, "data": None}])
def test_anonymous_signin_disabled_by_default(shared, body):
    assert_error(post(shared, "/signup", body), 422, "anonymous_provider_disabled", "Anonymous sign-ins are disabled")


def test_anonymous_signin(make_server, backend):
    server = make_server(backend, GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED="true")
    resp = post(server, "/signup", {"data": {"theme": "dark"}, "gotrue_meta_security": {"captcha_token": None}})
    assert resp.status_code == 200, resp.text
    session = resp.json()
    assert_session(session)
    user = session["user"]
    assert user["is_anonymous"] is True
    assert user["email"] == "" and user["phone"] == ""
    assert user["app_metadata"] == {}
    assert user["identities"] == []
    assert user["user_metadata"] == {"theme": "dark"}
    assert user["role"] == "authenticated"
    claims = claims_of(session["access_token"])
    assert claims["is_anonymous"] is True
    assert claims["sub"] == user["id"]
    assert [entry["method"] for entry in claims["amr"]] == ["anonymous"]
    assert type(claims["amr"][0]["timestamp"]) is int
    me = get_user(server, session["access_token"])
    assert me.status_code == 200 and me.json()["is_anonymous"] is True


# --- concurrency -----------------------------------------------------------------------------


def test_fifty_concurrent_signups_of_distinct_emails(shared):
    # 50 on SQLite, where "database is locked" is the risk; 20 suffice to race PostgreSQL.
    count = 50 if shared.db_url.startswith("sqlite") else 20
    emails = [new_email(f"crowd{i}") for i in range(count)]
    responses = concurrently(shared, "/signup", [{"email": e, "password": PASSWORD} for e in emails])
    assert [r.status_code for r in responses] == [200] * count, [r.text for r in responses if r.status_code != 200]
    assert {r.json()["user"]["email"] for r in responses} == set(emails)
    for email in emails[:: 10]:
        assert len(user_rows(shared, email)) == 1


def test_ten_concurrent_signups_of_the_same_email(shared):
    email = new_email("race")
    responses = concurrently(shared, "/signup", [{"email": email, "password": f"{PASSWORD}-{i}"} for i in range(10)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [422] * 9, [r.text for r in responses]
    for resp in responses:
        if resp.status_code == 422:
            assert_error(resp, 422, "user_already_exists", "User already registered")
    assert len(user_rows(shared, email)) == 1
    [winner] = [r for r in responses if r.status_code == 200]
    assert rows(shared, "SELECT id FROM users WHERE email = $1", email)[0]["id"] == winner.json()["user"]["id"]
