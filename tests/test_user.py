"""GET and PUT /user: the User shape, bearer authentication and self-service updates (API.md §2.1, §4.4, §5.10)."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from jose import jwt

from helpers import (
    PASSWORD, RFC3339_UTC, assert_error, b64url, claims_of, forge_hmac, get_user, mint, new_email, put_user, refresh,  # noqa: F401
    rsa_jwk, shared, sign_in, signup_session, sql,
)

BAD_JWT_PREFIX = "invalid JWT: unable to parse or verify signature"
ALWAYS = {"id", "aud", "role", "email", "phone", "app_metadata", "user_metadata", "identities", "created_at",
          "updated_at", "is_anonymous"}
TIMESTAMPS = {"email_confirmed_at", "invited_at", "phone_confirmed_at", "confirmation_sent_at", "confirmed_at",
              "recovery_sent_at", "email_change_sent_at", "phone_change_sent_at", "reauthentication_sent_at",
              "last_sign_in_at", "banned_until", "deleted_at", "created_at", "updated_at"}
NEVER = {"encrypted_password", "password", "confirmation_token", "recovery_token", "email_change_token_new",
         "email_change_token_current", "phone_change_token", "reauthentication_token", "is_sso_user", "instance_id"}


def real_claims(session: dict) -> dict:
    """The claims of a session's access token (not verified: the server may sign with RSA)."""
    return jwt.get_unverified_claims(session["access_token"])


# --- GET /user -------------------------------------------------------------------------------


def test_get_user_shape(shared):
    email = new_email()
    session = signup_session(shared, email, data={"a": 1})
    resp = get_user(shared, session["access_token"])
    assert resp.status_code == 200, resp.text
    user = resp.json()
    assert ALWAYS <= set(user), ALWAYS - set(user)
    assert not NEVER & set(user)
    assert None not in user.values(), {k for k, v in user.items() if v is None}
    for key in TIMESTAMPS & set(user):
        assert RFC3339_UTC.match(user[key]), (key, user[key])
    for absent in ("invited_at", "phone_confirmed_at", "recovery_sent_at", "email_change_sent_at", "new_email",
                   "new_phone", "phone_change_sent_at", "reauthentication_sent_at", "banned_until", "deleted_at",
                   "factors"):
        assert absent not in user, absent
    assert user["email"] == email and user["phone"] == ""
    assert user["is_anonymous"] is False
    assert user["role"] == "authenticated" and user["aud"] == "authenticated"
    assert user["user_metadata"] == {"a": 1, "email_verified": True}
    assert "last_sign_in_at" in user and "email_confirmed_at" in user and "confirmed_at" in user
    [identity] = user["identities"]
    assert {"identity_id", "id", "user_id", "identity_data", "provider", "created_at", "updated_at"} <= set(identity)
    assert user == {**session["user"], "updated_at": user["updated_at"], "last_sign_in_at": user["last_sign_in_at"]}


def test_get_user_without_email_has_empty_string_email(make_server, backend):
    server = make_server(backend, GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED="true")
    session = httpx.post(server.url + "/signup", json={}, timeout=60).json()
    user = get_user(server, session["access_token"]).json()
    assert user["email"] == "" and user["phone"] == ""
    assert user["identities"] == []
    assert user["is_anonymous"] is True
    assert None not in user.values()


@pytest.mark.parametrize("headers", [{}, {"Authorization": ""}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer"}, {"Authorization": "Token abc"},
                                     {"apikey": "whatever"}])
def test_missing_bearer_is_401(shared, headers):
    resp = httpx.get(shared.url + "/user", headers=headers, timeout=60)
    assert_error(resp, 401, "no_authorization", "This endpoint requires a valid Bearer token")


def test_bearer_scheme_is_case_insensitive(shared):
    session = signup_session(shared)
    resp = httpx.get(shared.url + "/user", headers={"Authorization": f"bEaReR {session['access_token']}"}, timeout=60)
    assert resp.status_code == 200, resp.text


def test_bad_tokens_are_403_bad_jwt(shared, jwt_secret):
    session = signup_session(shared)
    claims = real_claims(session)
    now = int(time.time())
    tokens = {
        "garbage": "garbage",
        "three garbage parts": "a.b.c",
        "alg none": f"{b64url(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}."
                    f"{b64url(json.dumps(claims).encode())}.",
        "other secret": mint(claims, "another-secret-0123456789abcdefghijklmnop"),
        "expired": mint({**claims, "iat": now - 7200, "exp": now - 60}),
        "RS256 header, HMAC with the secret": forge_hmac({"alg": "RS256", "typ": "JWT"}, claims, jwt_secret.encode()),
        "HS512 with the secret": mint(claims, algorithm="HS512"),
        "tampered payload": session["access_token"].split(".")[0] + "." + b64url(
            json.dumps({**claims, "role": "service_role"}).encode()) + "." + session["access_token"].split(".")[2],
    }
    for name, token in tokens.items():
        body = assert_error(get_user(shared, token), 403, "bad_jwt")
        assert body["msg"].startswith(BAD_JWT_PREFIX), (name, body)


def test_algorithm_confusion_with_a_public_key(make_server, backend, jwt_secret):
    key = rsa_jwk("rsa-user-1")
    oct_key = {"kty": "oct", "k": b64url(jwt_secret.encode()), "kid": "legacy", "alg": "HS256", "key_ops": ["verify"]}
    server = make_server(backend, GOTRUE_JWT_KEYS=json.dumps([key, oct_key]))
    session = signup_session(server)
    assert get_user(server, session["access_token"]).status_code == 200
    assert get_user(server, mint(real_claims(session))).status_code == 200  # HS256 via the oct key
    public = {k: key[k] for k in ("kty", "n", "e")}
    for secret in (json.dumps(public).encode(), base64.urlsafe_b64decode(key["n"] + "==")):
        forged = forge_hmac({"alg": "HS256", "typ": "JWT", "kid": "rsa-user-1"}, real_claims(session), secret)
        body = assert_error(get_user(server, forged), 403, "bad_jwt")
        assert body["msg"].startswith(BAD_JWT_PREFIX)


def test_api_keys_have_no_subject(shared):
    for key in (shared.service_role_key, shared.anon_key):
        assert_error(get_user(shared, key), 403, "bad_jwt", "invalid claim: missing sub claim")


def test_subject_must_be_a_uuid(shared):
    session = signup_session(shared)
    token = mint({**real_claims(session), "sub": "not-a-uuid"})
    assert_error(get_user(shared, token), 400, "bad_jwt", "invalid claim: sub claim must be a UUID")


def test_session_id_must_be_a_uuid(shared):
    session = signup_session(shared)
    token = mint({**real_claims(session), "session_id": "not-a-uuid"})
    assert_error(get_user(shared, token), 403, "bad_jwt", "invalid claim: session_id claim must be a UUID")


def test_token_without_session_id_is_allowed(shared):
    session = signup_session(shared)
    claims = {**real_claims(session), "session_id": None}
    assert get_user(shared, mint(claims)).status_code == 200
    nil = {**real_claims(session), "session_id": "00000000-0000-0000-0000-000000000000"}
    assert get_user(shared, mint(nil)).status_code == 200


def test_token_of_a_deleted_user(shared):
    session = signup_session(shared)
    assert sql(shared, "DELETE FROM users WHERE id = $1", session["user"]["id"]) == 1
    assert_error(get_user(shared, session["access_token"]), 403, "user_not_found",
                 "User from sub claim in JWT does not exist")


def test_audience_header(shared):
    session = signup_session(shared)
    token = session["access_token"]
    assert_error(get_user(shared, token, headers={"X-JWT-AUD": "someone-else"}), 400, "validation_failed",
                 "Token audience doesn't match request audience")
    assert get_user(shared, token, headers={"X-JWT-AUD": "authenticated"}).status_code == 200


def test_audience_claim_given_as_a_list(shared):
    session = signup_session(shared)
    token = mint({**real_claims(session), "aud": ["authenticated"]})
    resp = get_user(shared, token)
    assert resp.status_code == 200, resp.text


# --- PUT /user -------------------------------------------------------------------------------


def test_metadata_merge(shared):
    session = signup_session(shared, data={"keep": 1, "drop": 2, "change": "old"})
    resp = put_user(shared, session["access_token"], {"data": {"drop": None, "change": "new", "add": [1, {"x": None}]}})
    assert resp.status_code == 200, resp.text
    expected = {"keep": 1, "change": "new", "add": [1, {"x": None}], "email_verified": True}
    assert resp.json()["user_metadata"] == expected
    assert get_user(shared, session["access_token"]).json()["user_metadata"] == expected
    assert resp.json()["app_metadata"] == {"provider": "email", "providers": ["email"]}
    # the next access token carries the new metadata
    rotated = refresh(shared, session["refresh_token"]).json()
    assert claims_of(rotated["access_token"])["user_metadata"] == expected
    assert put_user(shared, session["access_token"], {"data": {}}).json()["user_metadata"] == expected


def test_password_change(shared):
    email = new_email()
    current = signup_session(shared, email)
    other = sign_in(shared, email).json()
    new_password = "a-brand-new-password"

    resp = put_user(shared, current["access_token"], {"password": new_password})
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == current["user"]["id"]

    assert_error(sign_in(shared, email, PASSWORD), 400, "invalid_credentials", "Invalid login credentials")
    assert sign_in(shared, email, new_password).status_code == 200
    # the other session is gone, the current one stays and still refreshes
    assert_error(refresh(shared, other["refresh_token"]), 400, "refresh_token_not_found")
    assert_error(get_user(shared, other["access_token"]), 403, "session_not_found")
    assert get_user(shared, current["access_token"]).status_code == 200
    rotated = refresh(shared, current["refresh_token"])
    assert rotated.status_code == 200, rotated.text

    assert_error(put_user(shared, current["access_token"], {"password": new_password}), 422, "same_password",
                 "New password should be different from the old password.")


def test_password_change_applies_the_policy(shared):
    session = signup_session(shared)
    body = assert_error(put_user(shared, session["access_token"], {"password": "abc"}), 422, "weak_password",
                        "Password should be at least 6 characters.")
    assert body["weak_password"] == {"reasons": ["length"]}
    assert_error(put_user(shared, session["access_token"], {"password": "x" * 73}), 400, "validation_failed",
                 "Password cannot be longer than 72 characters")


def test_app_metadata_needs_admin(shared):
    session = signup_session(shared)
    resp = put_user(shared, session["access_token"], {"app_metadata": {"role": "boss"}})
    assert_error(resp, 403, "not_admin")
    assert get_user(shared, session["access_token"]).json()["app_metadata"] == {"provider": "email",
                                                                               "providers": ["email"]}


def test_update_requires_current_password(make_server, backend):
    server = make_server(backend, GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_CURRENT_PASSWORD="true")
    email = new_email()
    token = signup_session(server, email)["access_token"]
    new_password = "next-password-1"
    assert_error(put_user(server, token, {"password": new_password}), 400, "current_password_required")
    assert_error(put_user(server, token, {"password": new_password, "current_password": None}), 400,
                 "current_password_required")
    assert_error(put_user(server, token, {"password": new_password, "current_password": "wrong-one"}), 400,
                 "current_password_invalid")
    assert sign_in(server, email, PASSWORD).status_code == 200  # nothing changed yet
    resp = put_user(server, token, {"password": new_password, "current_password": PASSWORD})
    assert resp.status_code == 200, resp.text
    assert sign_in(server, email, new_password).status_code == 200
    # metadata-only updates need no password
    assert put_user(server, token, {"data": {"x": 1}}).status_code == 200


def test_put_user_authentication(shared):
    assert_error(httpx.put(shared.url + "/user", json={"data": {}}, timeout=60), 401, "no_authorization")
    assert_error(put_user(shared, shared.service_role_key, {"data": {}}), 403, "bad_jwt",
                 "invalid claim: missing sub claim")


def test_tokens_with_large_metadata_are_read_back(shared):
    # The access token carries user_metadata: 20 KB of it makes a ~27 KB Authorization header,
    # beyond aiohttp's default 8 KB field limit but well inside Go's 1 MiB.
    session = signup_session(shared, data={"blob": "y" * 20000})
    assert len(session["access_token"]) > 20000
    resp = get_user(shared, session["access_token"])
    assert resp.status_code == 200, resp.text
    assert resp.json()["user_metadata"]["blob"] == "y" * 20000
