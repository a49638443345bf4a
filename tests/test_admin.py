"""The admin API over HTTP: /admin/users, factors, generate_link and audit (API.md §5.14–§5.16)."""

from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import bcrypt
import httpx
import pytest

from helpers import (
    PASSWORD, RFC3339_UTC, V2, assert_error, bearer, claims_of, db_of, mint, new_email, post, refresh, rows,
    shared, sign_in, signup_session, sql, utcnow,  # noqa: F401 - shared is a fixture
)

TIMEOUT = 60
NIL_UUID = "00000000-0000-0000-0000-000000000000"
# One precomputed hash at bcrypt's lowest cost: creating many users stays fast.
FAST_HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()


# --- requests ----------------------------------------------------------------------------


def admin_headers(server, **extra) -> dict[str, str]:
    return {**bearer(server.service_role_key), **extra}


# One client for the module: a fresh httpx client per call costs ~0.1 s (its TLS context).
HTTP = httpx.Client(timeout=TIMEOUT)


@pytest.fixture(scope="module", autouse=True)
def _close_http():
    yield
    HTTP.close()


def call(server, method: str, path: str, body=None, *, token: str | None = None, headers=None,
         content: bytes | None = None, **kwargs) -> httpx.Response:
    hdrs = {**bearer(token if token is not None else server.service_role_key), **(headers or {})}
    if content is not None:
        return HTTP.request(method, server.url + path, content=content, headers=hdrs, **kwargs)
    return HTTP.request(method, server.url + path, json=body, headers=hdrs, **kwargs)


def create(server, **body) -> dict:
    body.setdefault("password_hash", FAST_HASH)
    resp = call(server, "POST", "/admin/users", body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def new_phone() -> str:
    return "1555" + str(uuid.uuid4().int)[:7]


def obfuscated(user_id: str, value: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256((user_id + value).encode()).digest()).decode().rstrip("=")


def audit_entries(server, action: str | None = None) -> list[dict]:
    entries = rows(server, "SELECT payload, created_at FROM audit_log_entries ORDER BY created_at DESC")
    return [e["payload"] for e in entries if action is None or e["payload"]["action"] == action]


# --- authorisation -----------------------------------------------------------------------

# fixed ids: test ids must be the same in every pytest-xdist worker
_UNKNOWN = "6f1c2a9e-3b7d-4c55-9a0e-2d8f4b1e7c30"
_UNKNOWN_FACTOR = "0b9d7e21-58a4-4f3c-8e6a-91c2d4f5a7b8"
ENDPOINTS = [
    ("GET", "/admin/users"),
    ("POST", "/admin/users"),
    ("GET", f"/admin/users/{_UNKNOWN}"),
    ("PUT", f"/admin/users/{_UNKNOWN}"),
    ("DELETE", f"/admin/users/{_UNKNOWN}"),
    ("GET", f"/admin/users/{_UNKNOWN}/factors"),
    ("DELETE", f"/admin/users/{_UNKNOWN}/factors/{_UNKNOWN_FACTOR}"),
    ("POST", "/admin/generate_link"),
    ("GET", "/admin/audit"),
]


@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_admin_endpoints_need_an_admin_token(shared, method, path):
    resp = httpx.request(method, shared.url + path, json={}, timeout=TIMEOUT)
    assert_error(resp, 401, "no_authorization", "This endpoint requires a valid Bearer token")

    assert_error(call(shared, method, path, {}, token=shared.anon_key), 403, "not_admin", "User not allowed")

    session = signup_session(shared)
    assert_error(call(shared, method, path, {}, token=session["access_token"]), 403, "not_admin", "User not allowed")

    assert_error(call(shared, method, path, {}, token="not-a-jwt"), 403, "bad_jwt")


def test_admin_token_with_a_dead_session_is_refused(shared):
    session = signup_session(shared)
    claims = claims_of(session["access_token"])
    token = mint({"sub": claims["sub"], "role": "service_role", "session_id": str(uuid.uuid4())})
    assert_error(call(shared, "GET", "/admin/users", token=token), 403, "session_not_found")
    malformed = mint({"sub": claims["sub"], "role": "service_role", "session_id": "not-a-uuid"})
    assert_error(call(shared, "GET", "/admin/users", token=malformed), 403, "bad_jwt",
                 "invalid claim: session_id claim must be a UUID")


def test_errors_use_the_2024_format_when_asked(shared):
    resp = call(shared, "GET", "/admin/users/not-a-uuid", headers=V2)
    assert resp.status_code == 404
    assert resp.headers["X-Supabase-Api-Version"] == "2024-01-01"
    assert resp.json() == {"code": "validation_failed", "message": "user_id must be an UUID"}


# --- POST /admin/users ---------------------------------------------------------------------


def test_create_user_with_email_and_password(shared):
    email = new_email("Admin").replace("admin", "Admin")
    resp = call(shared, "POST", "/admin/users", {"email": email, "password": PASSWORD,
                                                 "user_metadata": {"full_name": "Ada"}})
    assert resp.status_code == 200, resp.text
    user = resp.json()
    uuid.UUID(user["id"])
    assert user["email"] == email.lower()
    assert user["aud"] == "authenticated" and user["role"] == "authenticated"
    assert user["phone"] == ""
    assert user["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert user["user_metadata"] == {"full_name": "Ada"}
    assert "email_confirmed_at" not in user and "confirmed_at" not in user
    assert "confirmation_sent_at" not in user  # no mail goes out
    assert user["is_anonymous"] is False
    for key in ("created_at", "updated_at"):
        assert RFC3339_UTC.match(user[key])
    [identity] = user["identities"]
    assert identity["provider"] == "email" and identity["id"] == user["id"]
    assert identity["identity_data"] == {"sub": user["id"], "email": email.lower(),
                                         "email_verified": False, "phone_verified": False}

    # Unconfirmed, so no sign-in yet (autoconfirm only applies to /signup).
    assert_error(sign_in(shared, email.lower()), 400, "email_not_confirmed")
    stored = rows(shared, "SELECT encrypted_password FROM users WHERE id = $1", user["id"])[0]
    assert bcrypt.checkpw(PASSWORD.encode(), stored["encrypted_password"].encode())


def test_create_confirmed_user_with_email_and_phone(shared):
    email, phone = new_email(), new_phone()
    user = create(shared, email=email, phone="+" + phone, email_confirm=True, phone_confirm=True,
                  role="editor", app_metadata={"plan": "pro", "provider": None})
    assert user["phone"] == phone
    assert user["role"] == "editor"
    assert RFC3339_UTC.match(user["email_confirmed_at"]) and RFC3339_UTC.match(user["phone_confirmed_at"])
    assert user["confirmed_at"]
    assert user["app_metadata"] == {"providers": ["email", "phone"], "plan": "pro"}
    assert user["user_metadata"] == {"email_verified": True}
    assert sorted(i["provider"] for i in user["identities"]) == ["email", "phone"]
    phone_identity = next(i for i in user["identities"] if i["provider"] == "phone")
    assert phone_identity["identity_data"]["phone"] == phone
    assert phone_identity["identity_data"]["phone_verified"] is True

    # The imported hash is the user's password, as given.
    resp = sign_in(shared, email)
    assert resp.status_code == 200, resp.text
    assert claims_of(resp.json()["access_token"])["role"] == "editor"


def test_create_without_password_stores_a_random_one(shared):
    email = new_email()
    user = call(shared, "POST", "/admin/users", {"email": email, "email_confirm": True}).json()
    [stored] = rows(shared, "SELECT encrypted_password FROM users WHERE id = $1", user["id"])
    assert stored["encrypted_password"].startswith("$2")
    assert_error(sign_in(shared, email, ""), 400, "invalid_credentials")


def test_create_applies_no_password_policy(shared):
    resp = call(shared, "POST", "/admin/users", {"email": new_email(), "password": "1"})
    assert resp.status_code == 200, resp.text


def test_create_with_custom_id_aud_and_netlify_aliases(shared):
    user_id = str(uuid.uuid4())
    email = new_email()
    user = create(shared, id=user_id.upper(), email=email, aud="netlify", confirm=True, data={"name": "N"})
    assert user["id"] == user_id
    assert user["aud"] == "netlify"
    assert user["email_confirmed_at"]
    assert user["user_metadata"] == {"name": "N", "email_verified": True}
    # The canonical keys win over the aliases.
    other = create(shared, email=new_email(), email_confirm=False, confirm=True, user_metadata={"a": 1}, data={"b": 2})
    assert "email_confirmed_at" not in other and other["user_metadata"] == {"a": 1}

    assert_error(call(shared, "POST", "/admin/users", {"email": new_email(), "id": user_id}), 422,
                 "user_already_exists")
    # Listed in its own audience only.
    listed = call(shared, "GET", "/admin/users", headers={"X-JWT-AUD": "netlify"}).json()
    assert listed["aud"] == "netlify"
    assert user_id in [u["id"] for u in listed["users"]]


@pytest.mark.parametrize("body,status,code,message", [
    ({}, 400, "validation_failed", "Cannot create a user without either an email or phone"),
    ({"email": "not an email"}, 400, "validation_failed", None),
    ({"phone": "+0123"}, 400, "validation_failed", "Invalid phone number format (E.164 required)"),
    ({"email": "EMAIL", "password": "x", "password_hash": FAST_HASH}, 400, "validation_failed",
     "Only a password or a password hash should be provided"),
    ({"email": "EMAIL", "password": "", "password_hash": FAST_HASH}, 400, "validation_failed",
     "Only a password or a password hash should be provided"),
    ({"email": "EMAIL", "password_hash": "plaintext"}, 400, "validation_failed", None),
    # argon2d, which upstream refuses too (argon2i/argon2id are imported: test_password_hashes.py)
    ({"email": "EMAIL", "password_hash": "$argon2d$v=19$m=16,t=2,p=1$c2FsdA$aGFzaA"}, 400, "validation_failed", None),
    ({"email": "EMAIL", "password": "x" * 73}, 400, "validation_failed", "bcrypt: password length exceeds 72 bytes"),
    ({"email": "EMAIL", "id": "nope"}, 400, "validation_failed", "ID must conform to the uuid v4 format"),
    ({"email": "EMAIL", "id": NIL_UUID}, 400, "validation_failed", "ID cannot be a nil uuid"),
    ({"email": "EMAIL", "ban_duration": "1d"}, 400, "validation_failed",
     'invalid format for ban duration: time: invalid duration "1d"'),
    ({"email": "EMAIL", "ban_duration": "10"}, 400, "validation_failed",
     'invalid format for ban duration: time: missing unit in duration "10"'),
    ({"email": 5}, 400, "bad_json", None),
    ({"email": "EMAIL", "user_metadata": "x"}, 400, "bad_json", None),
])
def test_create_rejects_bad_input(shared, body, status, code, message):
    body = {k: new_email() if v == "EMAIL" else v for k, v in body.items()}
    assert_error(call(shared, "POST", "/admin/users", body), status, code, message)
    assert_error(call(shared, "POST", "/admin/users", content=b"{"), 400, "bad_json")


def test_create_refuses_taken_addresses(shared):
    email, phone = new_email(), new_phone()
    create(shared, email=email, phone=phone)
    assert_error(call(shared, "POST", "/admin/users", {"email": email.upper()}), 422, "email_exists",
                 "A user with this email address has already been registered")
    assert_error(call(shared, "POST", "/admin/users", {"phone": phone}), 422, "phone_exists",
                 "Phone number already registered by another user")


def test_create_records_an_admin_audit_entry(server):
    email = new_email()
    user = create(server, email=email)
    [entry] = audit_entries(server, "user_signedup")
    assert entry == {"actor_id": NIL_UUID, "actor_username": "service_role", "actor_via_sso": False,
                     "action": "user_signedup", "log_type": "team",
                     "traits": {"user_id": user["id"], "user_email": email, "user_phone": "", "provider": "email"}}


def test_admin_actor_is_the_user_behind_a_session_token(server):
    session = signup_session(server, data={"full_name": "Root"})
    claims = claims_of(session["access_token"])
    token = mint({"sub": claims["sub"], "role": "service_role", "session_id": claims["session_id"]})
    resp = call(server, "POST", "/admin/users", {"email": new_email(), "password_hash": FAST_HASH}, token=token)
    assert resp.status_code == 200, resp.text
    [entry] = [e for e in audit_entries(server, "user_signedup")
               if e.get("traits", {}).get("user_id") == resp.json()["id"]]
    assert entry["actor_id"] == claims["sub"]
    assert entry["actor_username"] == claims["email"]
    assert entry["actor_name"] == "Root"


# --- GET /admin/users/{id} -----------------------------------------------------------------


def test_get_user(shared):
    user = create(shared, email=new_email())
    resp = call(shared, "GET", f"/admin/users/{user['id']}")
    assert resp.status_code == 200
    assert resp.json() == user
    assert_error(call(shared, "GET", "/admin/users/not-a-uuid"), 404, "validation_failed", "user_id must be an UUID")
    assert_error(call(shared, "GET", f"/admin/users/{uuid.uuid4()}"), 404, "user_not_found", "User not found")


# --- PUT /admin/users/{id} -----------------------------------------------------------------


def test_update_email_phone_and_confirmations(shared):
    user = create(shared, email=new_email())
    email, phone = new_email(), new_phone()
    resp = call(shared, "PUT", f"/admin/users/{user['id']}", {"email": email.upper(), "email_confirm": True,
                                                               "phone": phone})
    assert resp.status_code == 200, resp.text
    updated = resp.json()
    assert updated["email"] == email and updated["phone"] == phone
    assert updated["email_confirmed_at"] and "phone_confirmed_at" not in updated
    assert "new_email" not in updated  # set directly, no verification
    assert updated["user_metadata"]["email_verified"] is True
    identities = {i["provider"]: i for i in updated["identities"]}
    assert identities["email"]["identity_data"]["email"] == email
    assert identities["email"]["identity_data"]["email_verified"] is True
    assert identities["phone"]["identity_data"]["phone"] == phone
    assert identities["phone"]["identity_data"]["phone_verified"] is False
    assert sign_in(shared, email).status_code == 200

    first = updated["email_confirmed_at"]
    time.sleep(0.01)
    again = call(shared, "PUT", f"/admin/users/{user['id']}", {"email_confirm": True, "phone_confirm": True}).json()
    assert again["email_confirmed_at"] > first  # re-stamped
    assert again["phone_confirmed_at"]
    # false never un-confirms
    still = call(shared, "PUT", f"/admin/users/{user['id']}", {"email_confirm": False}).json()
    assert still["email_confirmed_at"] == again["email_confirmed_at"]


def test_update_metadata_role_and_audit(server):
    user = create(server, email=new_email(), user_metadata={"a": 1, "b": 2}, app_metadata={"x": 1})
    resp = call(server, "PUT", f"/admin/users/{user['id']}", {
        "user_metadata": {"b": None, "c": 3}, "app_metadata": {"x": None, "y": 2}, "role": "editor"})
    assert resp.status_code == 200, resp.text
    updated = resp.json()
    assert updated["user_metadata"] == {"a": 1, "c": 3}
    assert updated["app_metadata"] == {"provider": "email", "providers": ["email"], "y": 2}
    assert updated["role"] == "editor"
    [entry] = audit_entries(server, "user_modified")
    assert entry["actor_id"] == NIL_UUID and entry["actor_username"] == "service_role"
    assert entry["log_type"] == "user"
    assert entry["traits"] == {"user_id": user["id"], "user_email": user["email"], "user_phone": ""}


def test_update_password_ends_every_session_and_clears_pending_tokens(shared):
    email = new_email()
    user = create(shared, email=email, email_confirm=True)
    sessions = [sign_in(shared, email).json() for _ in range(2)]
    sql(shared, "UPDATE users SET recovery_token = $1, recovery_sent_at = $2 WHERE id = $3",
        "f" * 56, utcnow(), user["id"])

    assert_error(call(shared, "PUT", f"/admin/users/{user['id']}", {"password": "1"}), 422, "weak_password")
    resp = call(shared, "PUT", f"/admin/users/{user['id']}", {"password": "a-new-password-7"})
    assert resp.status_code == 200, resp.text

    for session in sessions:
        assert_error(refresh(shared, session["refresh_token"]), 400, "refresh_token_not_found")
    assert rows(shared, "SELECT id FROM sessions WHERE user_id = $1", user["id"]) == []
    [row] = rows(shared, "SELECT recovery_token FROM users WHERE id = $1", user["id"])
    assert row["recovery_token"] == ""
    assert_error(sign_in(shared, email), 400, "invalid_credentials")
    assert sign_in(shared, email, "a-new-password-7").status_code == 200


def test_ban_and_unban(shared):
    email = new_email()
    user = create(shared, email=email, email_confirm=True)
    session = sign_in(shared, email).json()

    resp = call(shared, "PUT", f"/admin/users/{user['id']}", {"ban_duration": "1h30m"})
    assert resp.status_code == 200, resp.text
    banned_until = resp.json()["banned_until"]
    assert RFC3339_UTC.match(banned_until)
    assert_error(sign_in(shared, email), 400, "user_banned")
    assert_error(refresh(shared, session["refresh_token"]), 400, "user_banned")
    resp = httpx.get(shared.url + "/user", headers=bearer(session["access_token"]), timeout=TIMEOUT)
    assert_error(resp, 403, "user_banned")

    resp = call(shared, "PUT", f"/admin/users/{user['id']}", {"ban_duration": "none"})
    assert "banned_until" not in resp.json()
    assert sign_in(shared, email).status_code == 200
    # Banning does not end sessions: once lifted, the old refresh token still works.
    assert refresh(shared, session["refresh_token"]).status_code == 200

    past = call(shared, "PUT", f"/admin/users/{user['id']}", {"ban_duration": "-1h"}).json()
    assert past["banned_until"] < past["updated_at"]
    assert sign_in(shared, email).status_code == 200
    assert "banned_until" not in call(shared, "PUT", f"/admin/users/{user['id']}", {"ban_duration": "0"}).json()

    assert_error(call(shared, "PUT", f"/admin/users/{user['id']}", {"ban_duration": "forever"}), 400,
                 "validation_failed", 'invalid format for ban duration: time: invalid duration "forever"')


def test_create_banned(shared):
    email = new_email()
    user = create(shared, email=email, email_confirm=True, ban_duration="876000h")
    assert user["banned_until"] > "2100"
    assert_error(sign_in(shared, email), 400, "user_banned")


def test_update_refuses_taken_addresses_and_bad_ids(shared):
    taken_email, taken_phone = new_email(), new_phone()
    create(shared, email=taken_email, phone=taken_phone)
    user = create(shared, email=new_email(), phone=new_phone())
    path = f"/admin/users/{user['id']}"
    assert_error(call(shared, "PUT", path, {"email": taken_email}), 422, "email_exists")
    assert_error(call(shared, "PUT", path, {"phone": taken_phone}), 422, "phone_exists")
    assert_error(call(shared, "PUT", path, {"email": "nope"}), 400, "validation_failed")
    # Its own address is not "taken".
    assert call(shared, "PUT", path, {"email": user["email"], "phone": user["phone"]}).status_code == 200
    assert_error(call(shared, "PUT", "/admin/users/123", {}), 404, "validation_failed", "user_id must be an UUID")
    assert_error(call(shared, "PUT", f"/admin/users/{uuid.uuid4()}", {}), 404, "user_not_found", "User not found")


def test_update_makes_an_anonymous_user_permanent_only_with_a_confirmed_email(make_server, backend):
    server = make_server(backend, GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED="true")
    resp = post(server, "/signup", {})
    assert resp.status_code == 200, resp.text
    user_id = resp.json()["user"]["id"]
    path = f"/admin/users/{user_id}"
    assert call(server, "PUT", path, {"email": new_email()}).json()["is_anonymous"] is True
    assert call(server, "PUT", path, {"email": new_email(), "email_confirm": True}).json()["is_anonymous"] is False


# --- DELETE /admin/users/{id} --------------------------------------------------------------


@pytest.mark.parametrize("body", [None, b"", b"{}", b'{"should_soft_delete": false}'])
def test_hard_delete_removes_everything(server, body):
    email = new_email()
    user = create(server, email=email, email_confirm=True)
    session = sign_in(server, email).json()
    if body is None:
        resp = httpx.delete(server.url + f"/admin/users/{user['id']}", headers=admin_headers(server), timeout=TIMEOUT)
    else:
        resp = call(server, "DELETE", f"/admin/users/{user['id']}", content=body,
                    headers={"Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {}
    assert_error(call(server, "GET", f"/admin/users/{user['id']}"), 404, "user_not_found")
    for table in ("users", "identities", "sessions", "one_time_tokens"):
        column = "id" if table == "users" else "user_id"
        assert rows(server, f"SELECT 1 FROM {table} WHERE {column} = $1", user["id"]) == [], table
    assert_error(refresh(server, session["refresh_token"]), 400, "refresh_token_not_found")
    [entry] = audit_entries(server, "user_deleted")
    assert entry["traits"] == {"user_id": user["id"], "user_email": email, "user_phone": ""}
    assert entry["log_type"] == "team" and entry["actor_username"] == "service_role"
    assert_error(call(server, "DELETE", f"/admin/users/{user['id']}"), 404, "user_not_found")


def test_delete_body_must_be_json_when_present(shared):
    user = create(shared, email=new_email())
    assert_error(call(shared, "DELETE", f"/admin/users/{user['id']}", content=b"nope"), 400, "bad_json")
    assert_error(call(shared, "DELETE", f"/admin/users/{user['id']}", {"should_soft_delete": "yes"}), 400, "bad_json")


def insert_factor(server, user_id: str, *, factor_type: str = "totp", status: str = "verified",
                  name: str | None = "phone app") -> str:
    factor_id = str(uuid.uuid4())
    now = utcnow()
    sql(server, "INSERT INTO mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, "
                "secret) VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
        factor_id, user_id, name, factor_type, status, now, "JBSWY3DPEHPK3PXP")
    return factor_id


def test_soft_delete_obfuscates_and_is_idempotent(server):
    email, phone = new_email(), new_phone()
    user = create(server, email=email, phone=phone, email_confirm=True, user_metadata={"full_name": "Ann"},
                  app_metadata={"plan": "pro"})
    user_id = user["id"]
    session = sign_in(server, email).json()
    sql(server, "UPDATE users SET email_change = $1, recovery_token = $2, recovery_sent_at = $3 WHERE id = $4",
        "next@example.com", "a" * 56, utcnow(), user_id)
    insert_factor(server, user_id)

    resp = call(server, "DELETE", f"/admin/users/{user_id}", {"should_soft_delete": True})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {}

    [row] = rows(server, "SELECT email, phone, email_change, phone_change, encrypted_password, confirmation_token, "
                         "recovery_token, raw_user_meta_data, raw_app_meta_data, deleted_at FROM users WHERE id = $1",
                 user_id)
    assert row["email"] == obfuscated(user_id, email)
    assert row["phone"] == obfuscated(user_id, phone)[:15]
    assert row["email_change"] == obfuscated(user_id, "next@example.com")
    assert row["phone_change"] == obfuscated(user_id, "")[:15]  # even empty values
    assert row["encrypted_password"] is None
    assert row["recovery_token"] == "" and row["confirmation_token"] == ""
    assert row["raw_user_meta_data"] == {} and row["raw_app_meta_data"] == {}
    assert row["deleted_at"] is not None
    identities = rows(server, "SELECT provider, provider_id, identity_data FROM identities WHERE user_id = $1", user_id)
    assert {i["provider"]: i["provider_id"] for i in identities} == {
        "email": obfuscated(user_id, f"email:{user_id}"), "phone": obfuscated(user_id, f"phone:{user_id}")}
    assert all(i["identity_data"] == {} for i in identities)
    for table in ("sessions", "mfa_factors", "one_time_tokens"):
        assert rows(server, f"SELECT 1 FROM {table} WHERE user_id = $1", user_id) == [], table
    assert_error(refresh(server, session["refresh_token"]), 400, "refresh_token_not_found")
    assert_error(sign_in(server, email), 400, "invalid_credentials")

    got = call(server, "GET", f"/admin/users/{user_id}").json()
    assert RFC3339_UTC.match(got["deleted_at"])
    assert got["email"] == obfuscated(user_id, email)
    assert got["user_metadata"] == {} and got["app_metadata"] == {}

    # A second soft delete changes nothing (the values are not obfuscated twice).
    assert call(server, "DELETE", f"/admin/users/{user_id}", {"should_soft_delete": True}).status_code == 200
    assert call(server, "GET", f"/admin/users/{user_id}").json() == got
    # The address is free again.
    assert create(server, email=email, phone=phone)["email"] == email
    # And a soft-deleted user can still be removed for good.
    assert call(server, "DELETE", f"/admin/users/{user_id}").status_code == 200
    assert_error(call(server, "GET", f"/admin/users/{user_id}"), 404, "user_not_found")


# --- GET /admin/users ----------------------------------------------------------------------


def parse_link(header: str) -> dict[str, str]:
    """The Link header the way auth-js reads it, and the URLs themselves."""
    out = {}
    for part in header.split(", "):
        url, rel = part.split("; ")
        assert url.startswith("<") and url.endswith(">"), header
        out[re.fullmatch(r'rel="(\w+)"', rel).group(1)] = url[1:-1]
    return out


def test_list_users_paginates_with_upstream_headers(server):
    aud = "paging"
    ids = [create(server, email=new_email(), aud=aud)["id"] for _ in range(120)]
    headers = {"X-JWT-AUD": aud}

    resp = call(server, "GET", "/admin/users", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["X-Total-Count"] == "120"
    assert resp.headers["Link"] == ('</admin/users?page=2>; rel="next", </admin/users?page=3>; rel="last"')
    body = resp.json()
    assert body["aud"] == aud
    assert [u["id"] for u in body["users"]] == ids[::-1][:50]  # newest first
    assert body["users"][0]["identities"] is None  # as upstream: no relations in the list

    # auth-js sends page=&per_page=: empty means default, and is echoed as sent.
    resp = call(server, "GET", "/admin/users?page=&per_page=", headers=headers)
    assert resp.headers["Link"] == ('</admin/users?page=2&per_page=>; rel="next", '
                                    '</admin/users?page=3&per_page=>; rel="last"')
    assert len(resp.json()["users"]) == 50

    seen = []
    for page in (1, 2, 3):
        resp = call(server, "GET", f"/admin/users?per_page=50&page={page}", headers=headers)
        seen += [u["id"] for u in resp.json()["users"]]
        links = parse_link(resp.headers["Link"])
        assert links["last"] == "/admin/users?page=3&per_page=50"
        assert ("next" in links) == (page < 3)
        if page < 3:
            assert links["next"] == f"/admin/users?page={page + 1}&per_page=50"
    assert seen == ids[::-1]

    resp = call(server, "GET", "/admin/users?per_page=7&page=18&sort=created_at+asc", headers=headers)
    assert [u["id"] for u in resp.json()["users"]] == ids[119:]
    assert resp.headers["Link"] == '</admin/users?page=18&per_page=7&sort=created_at+asc>; rel="last"'
    resp = call(server, "GET", "/admin/users?per_page=7&page=99", headers=headers)
    assert resp.json()["users"] == [] and resp.headers["X-Total-Count"] == "120"
    resp = call(server, "GET", "/admin/users?sort=created_at%20ASC&per_page=3", headers=headers)
    assert [u["id"] for u in resp.json()["users"]] == ids[:3]


def test_list_users_filter(shared):
    aud = f"filter-{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex[:8]
    a = create(shared, email=f"alice-{tag}@example.com", aud=aud, user_metadata={"full_name": "Zed Zebra"})
    b = create(shared, email=f"bob-{tag}@example.com", aud=aud, user_metadata={"full_name": "Alice Smith"})
    create(shared, email=f"carol-{tag}@example.com", aud=aud)
    headers = {"X-JWT-AUD": aud}

    def found(query: str) -> list[str]:
        resp = call(shared, "GET", "/admin/users?" + query, headers=headers)
        assert resp.status_code == 200, resp.text
        return sorted(u["id"] for u in resp.json()["users"])

    assert found("filter=alice") == sorted([a["id"], b["id"]])  # email, or full_name any case
    assert found("filter=ALICE") == [b["id"]]  # the email match is case-sensitive
    assert found("filter=zebra") == [a["id"]]
    assert found(f"filter=bob-{tag}") == [b["id"]]
    assert found("filter=%25") == []  # a literal substring, not a LIKE pattern
    assert found("filter=") == sorted(u["id"] for u in call(shared, "GET", "/admin/users",
                                                               headers=headers).json()["users"])
    resp = call(shared, "GET", "/admin/users?filter=alice&per_page=1", headers=headers)
    assert resp.headers["X-Total-Count"] == "2"
    assert resp.headers["Link"] == ('</admin/users?filter=alice&page=2&per_page=1>; rel="next", '
                                    '</admin/users?filter=alice&page=2&per_page=1>; rel="last"')


def test_list_users_exact_email(shared):
    aud = f"exact-{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex[:8]
    a = create(shared, email=f"exact-{tag}@example.com", aud=aud)
    create(shared, email=f"exact-{tag}@example.com.other", aud=aud)
    headers = {"X-JWT-AUD": aud}
    resp = call(shared, "GET", f"/admin/users?email=EXACT-{tag}@example.com", headers=headers)
    assert resp.status_code == 200, resp.text
    assert [u["id"] for u in resp.json()["users"]] == [a["id"]] and resp.headers["X-Total-Count"] == "1"
    assert call(shared, "GET", "/admin/users?email=nobody@example.com", headers=headers).json()["users"] == []


def test_link_header_names_the_path_as_received(shared):
    aud = f"prefix-{uuid.uuid4().hex[:8]}"
    for _ in range(2):
        create(shared, email=new_email(), aud=aud)
    resp = call(shared, "GET", "/auth/v1/admin/users?per_page=1", headers={"X-JWT-AUD": aud})
    assert resp.status_code == 200, resp.text
    assert resp.headers["Link"] == ('</auth/v1/admin/users?page=2&per_page=1>; rel="next", '
                                    '</auth/v1/admin/users?page=2&per_page=1>; rel="last"')


def test_list_users_of_an_empty_audience(shared):
    resp = call(shared, "GET", "/admin/users", headers={"X-JWT-AUD": f"empty-{uuid.uuid4()}"})
    assert resp.status_code == 200
    assert resp.json()["users"] == []
    assert resp.headers["X-Total-Count"] == "0"
    assert resp.headers["Link"] == '</admin/users?page=0>; rel="last"'


@pytest.mark.parametrize("query,message", [
    ("page=x", 'Bad Pagination Parameters: strconv.ParseUint: parsing "x": invalid syntax'),
    ("per_page=-1", 'Bad Pagination Parameters: strconv.ParseUint: parsing "-1": invalid syntax'),
    ("page=1.5", 'Bad Pagination Parameters: strconv.ParseUint: parsing "1.5": invalid syntax'),
    ("page=99999999999999999999", 'Bad Pagination Parameters: strconv.ParseUint: parsing '
                                  '"99999999999999999999": value out of range'),
    ("page=1%0A", 'Bad Pagination Parameters: strconv.ParseUint: parsing "1\\n": invalid syntax'),
    ("per_page=0", None),
    ("sort=email", "Bad Sort Parameters: bad field for sort 'email'"),
    ("sort=", "Bad Sort Parameters: bad field for sort ''"),
    ("sort=created_at%20up", "Bad Sort Parameters: bad direction for sort 'up', only 'asc' and 'desc' allowed"),
])
def test_list_users_rejects_bad_parameters(shared, query, message):
    assert_error(call(shared, "GET", "/admin/users?" + query), 400, "validation_failed", message)


def test_total_count_stays_exact_whoever_writes(server, backend):
    """X-Total-Count comes from a count the database's triggers keep: it matches count(*)
    after sign-ups, admin creation and deletion, SQL by hand from another connection, bulk
    inserts, a change of audience and (PostgreSQL) TRUNCATE."""
    def header_total(aud: str | None = None) -> int:
        resp = call(server, "GET", "/admin/users?per_page=1", headers={"X-JWT-AUD": aud} if aud else None)
        assert resp.status_code == 200, resp.text
        return int(resp.headers["X-Total-Count"])

    def counted(aud: str = "authenticated") -> int:
        return rows(server, "SELECT count(*) AS n FROM users WHERE aud = $1", aud)[0]["n"]

    start = counted()
    assert header_total() == start
    signup_session(server)
    created = [create(server, email=new_email(), email_confirm=True) for _ in range(3)]
    assert header_total() == counted() == start + 4
    assert call(server, "DELETE", f"/admin/users/{created[0]['id']}").status_code == 200
    assert call(server, "DELETE", f"/admin/users/{created[1]['id']}", {"should_soft_delete": True}).status_code == 200
    assert header_total() == counted() == start + 3  # a soft-deleted user is still a row, as upstream counts

    async def by_hand() -> None:
        # Another connection, as an operator's SQL or the Go server would be.
        if backend == "sqlite":
            import aiosqlite
            async with aiosqlite.connect(db_of(server).path) as conn:
                await conn.execute(
                    "INSERT INTO users (instance_id, id, aud, role, email, created_at, updated_at) "
                    "VALUES (?1, ?2, 'authenticated', 'authenticated', ?3, '2026-01-01T00:00:00.000000+00:00', "
                    "'2026-01-01T00:00:00.000000+00:00')", (NIL_UUID, str(uuid.uuid4()), new_email()))
                await conn.commit()
        else:
            import asyncpg
            conn = await asyncpg.connect(server.db_url)
            try:
                await conn.execute(
                    f"INSERT INTO {db_of(server).namespace}.users (instance_id, id, aud, role, email, created_at, "
                    "updated_at) SELECT $1::uuid, gen_random_uuid(), 'authenticated', 'authenticated', "
                    "'bulk' || n || '-' || $2 || '@example.com', now(), now() FROM generate_series(1, 25) AS n",
                    NIL_UUID, uuid.uuid4().hex)
            finally:
                await conn.close()

    server.run(by_hand())
    assert header_total() == counted() == start + (4 if backend == "sqlite" else 28)
    moved = created[2]["id"]
    sql(server, "UPDATE users SET aud = 'elsewhere' WHERE id = $1", moved)
    assert header_total() == counted()
    assert header_total("elsewhere") == counted("elsewhere") == 1
    if backend == "postgres":
        sql(server, "TRUNCATE users CASCADE")
        assert header_total() == counted() == 0
        assert header_total("elsewhere") == 0


def test_list_users_uses_the_index(server, backend):
    """No full scan: an audience's page and count come from users_aud_created_at_id_idx, the
    audit page from audit_log_entries_created_at_id_idx, each already in order (no sort step)."""
    from gotrue_lite.store import admin as admin_store

    db = db_of(server)
    captured: list[str] = []

    class Recorder:
        dialect = db.dialect

        async def fetch_all(self, statement, *args):
            captured.append((statement, args))
            return []

        async def fetch_val(self, statement, *args):
            captured.append((statement, args))
            return 0

    server.run(admin_store.list_users(Recorder(), "authenticated", needle="", descending=True, limit=50, offset=0))
    server.run(admin_store.list_users(Recorder(), "authenticated", needle="x", descending=False, limit=5, offset=5))
    server.run(admin_store.list_audit(Recorder(), keys=(), needle="", limit=50, offset=0))
    server.run(admin_store.list_users(Recorder(), "authenticated", needle="", email="a@example.com",
                                      descending=True, limit=50, offset=0))

    async def plans() -> list[str]:
        out = []
        async with db.transaction() as tx:
            if backend == "postgres":
                await tx.execute("SET LOCAL enable_seqscan = off")
            for statement, args in captured:
                if backend == "sqlite":
                    plan = await tx.fetch_all("EXPLAIN QUERY PLAN " + statement, *args)
                    out.append(" | ".join(str(r["detail"]) for r in plan))
                else:
                    plan = await tx.fetch_all("EXPLAIN " + statement, *args)
                    out.append(" | ".join(str(next(iter(r.values()))) for r in plan))
        return out

    page, total, *filtered_plans, audit_page, _audit_count, email_page, email_count = server.run(plans())
    # The audience's size is one row of the triggers' count table, however large it is.
    assert "gotrue_lite_user_counts" in total and ("_pkey" in total or "autoindex" in total), total
    for plan in (page, *filtered_plans):
        assert "users_aud_created_at_id_idx" in plan, plan
    # Skipped rows are walked in the index alone.
    assert "COVERING INDEX users_aud_created_at_id_idx" in page or "Index Only Scan" in page, page
    for plan in (email_page, email_count):  # the exact lookup goes through the unique email index
        assert "users_email_partial_key" in plan and "Seq Scan" not in plan, plan
    assert "audit_log_entries_created_at_id_idx" in audit_page, audit_page
    for plan in (page, *filtered_plans, audit_page):
        assert "Seq Scan" not in plan and "SCAN users" not in plan.replace("SCAN users USING", ""), plan
        assert "Sort" not in plan, plan
        # SQLite sorts the page's own rows again after the join (at most per_page of them),
        # never the audience.
        sorts = plan.count("TEMP B-TREE")
        assert sorts == 0 or (backend == "sqlite" and sorts == 1 and "MATERIALIZE p" in plan), plan


# --- factors -------------------------------------------------------------------------------


def test_list_and_delete_factors(server):
    email = new_email()
    user = create(server, email=email, email_confirm=True)
    user_id = user["id"]
    assert call(server, "GET", f"/admin/users/{user_id}/factors").json() == []

    totp = insert_factor(server, user_id)
    pending = insert_factor(server, user_id, factor_type="phone", status="unverified", name=None)
    resp = call(server, "GET", f"/admin/users/{user_id}/factors")
    assert resp.status_code == 200
    factors = resp.json()
    assert isinstance(factors, list)  # a bare array, as upstream
    assert {f["id"] for f in factors} == {totp, pending}
    listed = next(f for f in factors if f["id"] == totp)
    assert listed["factor_type"] == "totp" and listed["status"] == "verified"
    assert listed["friendly_name"] == "phone app" and listed["phone"] == ""
    assert listed["last_challenged_at"] is None
    assert "friendly_name" not in next(f for f in factors if f["id"] == pending)

    # A session stepped up with the factor falls back to aal1 when it goes.
    session = sign_in(server, email).json()
    session_id = claims_of(session["access_token"])["session_id"]
    sql(server, "UPDATE sessions SET aal = 'aal2', factor_id = $1 WHERE id = $2", totp, session_id)
    sql(server, "INSERT INTO mfa_amr_claims (id, session_id, created_at, updated_at, authentication_method) "
                "VALUES ($1, $2, $3, $3, 'totp')", str(uuid.uuid4()), session_id, utcnow())

    resp = call(server, "DELETE", f"/admin/users/{user_id}/factors/{totp}")
    assert resp.status_code == 200, resp.text
    assert resp.json() == listed
    [entry] = [r for r in rows(server, "SELECT payload, ip_address FROM audit_log_entries")
               if r["payload"]["action"] == "factor_deleted"]
    assert entry["payload"]["actor_id"] == user_id and entry["ip_address"] == "127.0.0.1"
    assert entry["payload"]["traits"] == {"user_id": user_id, "factor_id": totp}
    assert [f["id"] for f in call(server, "GET", f"/admin/users/{user_id}/factors").json()] == [pending]
    [row] = rows(server, "SELECT aal, factor_id FROM sessions WHERE id = $1", session_id)
    assert row == {"aal": "aal1", "factor_id": None}
    methods = rows(server, "SELECT authentication_method FROM mfa_amr_claims WHERE session_id = $1", session_id)
    assert [m["authentication_method"] for m in methods] == ["password"]
    refreshed = refresh(server, session["refresh_token"]).json()
    assert claims_of(refreshed["access_token"])["aal"] == "aal1"

    assert_error(call(server, "DELETE", f"/admin/users/{user_id}/factors/{totp}"), 404, "mfa_factor_not_found",
                 "Factor not found")
    other = create(server, email=new_email())
    assert_error(call(server, "DELETE", f"/admin/users/{other['id']}/factors/{pending}"), 404,
                 "mfa_factor_not_found")
    assert_error(call(server, "DELETE", f"/admin/users/{user_id}/factors/nope"), 404, "validation_failed",
                 "factor_id must be an UUID")
    assert_error(call(server, "GET", f"/admin/users/{uuid.uuid4()}/factors"), 404, "user_not_found")
    assert_error(call(server, "GET", "/admin/users/x/factors"), 404, "validation_failed")


def test_update_factor(server):
    """PUT …/factors/{id}: a new name for any factor, a new (normalised) number for phone factors."""
    user = create(server, email=new_email(), email_confirm=True)
    user_id = user["id"]
    totp = insert_factor(server, user_id)
    phone = insert_factor(server, user_id, factor_type="phone", status="verified", name="mobile")
    sql(server, "UPDATE mfa_factors SET phone = $1 WHERE id = $2", "15555550100", phone)

    resp = call(server, "PUT", f"/admin/users/{user_id}/factors/{totp}", {"friendly_name": "work laptop"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["friendly_name"] == "work laptop" and resp.json()["id"] == totp
    # A phone number on a TOTP factor is ignored; an empty name changes nothing.
    resp = call(server, "PUT", f"/admin/users/{user_id}/factors/{totp}", {"friendly_name": "", "phone": "+1 555 555 0199"})
    assert resp.status_code == 200 and resp.json()["friendly_name"] == "work laptop" and resp.json()["phone"] == ""

    resp = call(server, "PUT", f"/admin/users/{user_id}/factors/{phone}", {"phone": "+1 555 555 0101"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["phone"] == "15555550101" and resp.json()["friendly_name"] == "mobile"
    assert rows(server, "SELECT phone FROM mfa_factors WHERE id = $1", phone) == [{"phone": "15555550101"}]

    # Bad input: nothing written.
    assert_error(call(server, "PUT", f"/admin/users/{user_id}/factors/{phone}", {"phone": "12ab"}), 400,
                 "validation_failed", "Invalid phone number format (E.164 required)")
    assert_error(call(server, "PUT", f"/admin/users/{user_id}/factors/{phone}", {"friendly_name": "work laptop"}),
                 422, "mfa_factor_name_conflict")
    assert rows(server, "SELECT friendly_name, phone FROM mfa_factors WHERE id = $1", phone) == [
        {"friendly_name": "mobile", "phone": "15555550101"}]
    assert_error(call(server, "PUT", f"/admin/users/{user_id}/factors/{phone}", {"friendly_name": 3}), 400, "bad_json")
    other = create(server, email=new_email())
    assert_error(call(server, "PUT", f"/admin/users/{other['id']}/factors/{phone}", {"friendly_name": "x"}), 404,
                 "mfa_factor_not_found", "Factor not found")
    assert_error(call(server, "PUT", f"/admin/users/{user_id}/factors/nope", {"friendly_name": "x"}), 404,
                 "validation_failed", "factor_id must be an UUID")
    resp = httpx.put(f"{server.url}/admin/users/{user_id}/factors/{phone}", json={"friendly_name": "x"},
                     headers=bearer(signup_session(server)["access_token"]), timeout=TIMEOUT)
    assert_error(resp, 403, "not_admin")

    entries = rows(server, "SELECT payload FROM audit_log_entries")
    updates = [e["payload"] for e in entries if e["payload"]["action"] == "factor_updated"]
    assert len(updates) == 3
    assert {"user_id": user_id, "factor_id": phone, "factor_type": "phone"} in [u["traits"] for u in updates]
    assert all(u["actor_username"] == "service_role" and u["log_type"] == "factor" for u in updates)


# --- POST /admin/generate_link -------------------------------------------------------------


def generate(server, **body) -> httpx.Response:
    query = body.pop("query", "")
    return call(server, "POST", "/admin/generate_link" + query, body)


LINK_KEYS = {"action_link", "email_otp", "hashed_token", "verification_type", "redirect_to"}


def follow(server, link: dict) -> dict[str, list[str]]:
    """GET the action link as a browser would and return the redirect's fragment values."""
    resp = httpx.get(link["action_link"], follow_redirects=False, timeout=TIMEOUT)
    assert resp.status_code == 303, resp.text
    location = resp.headers["Location"]
    assert location.startswith(link["redirect_to"]), location
    return parse_qs(urlsplit(location).fragment, keep_blank_values=True)


@pytest.mark.parametrize("link_type,verify_type,column", [
    ("signup", "signup", "confirmation_token"),
    ("magiclink", "magiclink", "recovery_token"),
    ("recovery", "recovery", "recovery_token"),
    ("invite", "invite", "confirmation_token"),
])
def test_generate_link_for_an_existing_user_and_follow_it(shared, link_type, verify_type, column):
    email = new_email()
    user = create(shared, email=email, email_confirm=link_type in ("magiclink", "recovery"))
    resp = generate(shared, type=link_type, email=email.upper())
    assert resp.status_code == 200, resp.text
    link = resp.json()
    assert LINK_KEYS <= set(link)
    assert link["id"] == user["id"] and link["email"] == email and "identities" in link
    assert link["verification_type"] == link_type
    assert re.fullmatch(r"\d{6}", link["email_otp"])
    assert link["hashed_token"] == hashlib.sha224((email + link["email_otp"]).encode()).hexdigest()
    assert link["redirect_to"] == "http://localhost:3000"
    assert link["action_link"] == (f"{shared.url}/verify?token={link['hashed_token']}&type={verify_type}"
                                   f"&redirect_to=http://localhost:3000")
    [stored] = rows(shared, f"SELECT {column} AS token FROM users WHERE id = $1", user["id"])
    assert stored["token"] == link["hashed_token"]
    if link_type == "invite":
        assert link["invited_at"]

    fragment = follow(shared, link)
    assert fragment["type"] == [verify_type]
    claims = claims_of(fragment["access_token"][0])
    assert claims["sub"] == user["id"]
    # The link is spent.
    resp = httpx.get(link["action_link"], follow_redirects=False, timeout=TIMEOUT)
    assert "error_code=otp_expired" in resp.headers["Location"]


@pytest.mark.parametrize("link_type", ["signup", "magiclink", "recovery", "invite"])
def test_generated_email_otp_verifies_by_post(shared, link_type):
    email = new_email()
    create(shared, email=email)
    link = generate(shared, type=link_type, email=email).json()
    resp = post(shared, "/verify", {"type": link_type, "email": email, "token": link["email_otp"]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["email"] == email
    assert resp.json()["user"]["email_confirmed_at"]


def test_generate_link_creates_unknown_users(shared):
    # signup: a new user with the given password and data
    email = new_email()
    resp = generate(shared, type="signup", email=email, password=PASSWORD, data={"plan": "free"})
    assert resp.status_code == 200, resp.text
    link = resp.json()
    assert link["user_metadata"] == {"plan": "free"}
    assert "email_confirmed_at" not in link and link["confirmation_sent_at"]
    assert [i["provider"] for i in link["identities"]] == ["email"]
    assert sign_in(shared, email).status_code == 400  # not yet confirmed
    assert "access_token" in follow(shared, link)
    assert sign_in(shared, email).status_code == 200

    # magiclink for a stranger becomes a sign-up with a random password
    email = new_email()
    link = generate(shared, type="magiclink", email=email, data={"from": "magic"}).json()
    assert link["verification_type"] == "signup"
    assert "type=signup" in link["action_link"]
    assert link["user_metadata"] == {"from": "magic"}
    assert "access_token" in follow(shared, link)

    # invite: a new user without a password
    email = new_email()
    link = generate(shared, type="invite", email=email, data={"team": "x"}).json()
    assert link["invited_at"] and link["user_metadata"] == {"team": "x"}
    [row] = rows(shared, "SELECT encrypted_password FROM users WHERE id = $1", link["id"])
    assert not row["encrypted_password"]
    assert "access_token" in follow(shared, link)


def test_generate_signup_link_merges_data_into_an_unconfirmed_user(shared):
    email = new_email()
    create(shared, email=email, user_metadata={"a": 1, "b": 2})
    link = generate(shared, type="signup", email=email, data={"b": None, "c": 3}).json()
    assert link["user_metadata"] == {"a": 1, "c": 3}


def test_generate_email_change_links(shared):
    email, new = new_email(), new_email("new")
    user = create(shared, email=email, email_confirm=True)

    link = generate(shared, type="email_change_new", email=email, new_email=new.upper()).json()
    assert link["verification_type"] == "email_change_new"
    assert link["new_email"] == new
    assert "type=email_change" in link["action_link"]
    # The hash of what is stored (upstream returns the current address's hash here).
    assert link["hashed_token"] == hashlib.sha224((new + link["email_otp"]).encode()).hexdigest()
    [row] = rows(shared, "SELECT email_change_token_new, email_change FROM users WHERE id = $1", user["id"])
    assert row == {"email_change_token_new": link["hashed_token"], "email_change": new}
    fragment = follow(shared, link)
    assert fragment["type"] == ["email_change"]
    assert call(shared, "GET", f"/admin/users/{user['id']}").json()["email"] == new

    # email_change_current: the token for the current address (secure email change is on by default)
    other = new_email("other")
    link = generate(shared, type="email_change_current", email=new, new_email=other).json()
    assert link["hashed_token"] == hashlib.sha224((new + link["email_otp"]).encode()).hexdigest()
    resp = post(shared, "/verify", {"type": "email_change", "email": new, "token": link["email_otp"]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["email"] == other


def test_generate_link_errors(shared):
    email, taken = new_email(), new_email()
    create(shared, email=email, email_confirm=True)
    create(shared, email=taken)
    stranger = new_email()
    cases = [
        ({"type": "recovery", "email": stranger}, 404, "user_not_found", "User with this email not found"),
        ({"type": "email_change_new", "email": stranger, "new_email": new_email()}, 404, "user_not_found", None),
        ({"type": "email_change_current", "email": stranger, "new_email": new_email()}, 404, "user_not_found", None),
        ({"type": "bogus", "email": email}, 400, "validation_failed",
         "Invalid email action link type requested: bogus"),
        ({"type": "bogus", "email": stranger}, 400, "validation_failed", None),
        ({"type": "signup", "email": stranger}, 400, "validation_failed", "Signup requires a valid password"),
        ({"type": "signup", "email": stranger, "password": "1"}, 422, "weak_password", None),
        ({"type": "signup", "email": email, "password": PASSWORD}, 422, "email_exists",
         "A user with this email address has already been registered"),
        ({"type": "invite", "email": email}, 422, "email_exists", None),
        ({"type": "email_change_new", "email": email, "new_email": taken}, 422, "email_exists", None),
        ({"type": "email_change_new", "email": email, "new_email": "bad"}, 400, "validation_failed", None),
        ({"type": "email_change_new", "email": email}, 400, "validation_failed", "An email address is required"),
        ({"type": "magiclink", "email": ""}, 400, "validation_failed", "An email address is required"),
        ({"type": "magiclink", "email": "x@"}, 400, "validation_failed", None),
    ]
    for body, status, code, message in cases:
        assert_error(generate(shared, **body), status, code, message)
    assert rows(shared, "SELECT id FROM users WHERE email = $1", stranger) == []


def test_generate_current_email_change_needs_secure_email_change(make_server, backend):
    server = make_server(backend, GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED="false")
    email = new_email()
    create(server, email=email, email_confirm=True)
    assert_error(generate(server, type="email_change_current", email=email, new_email=new_email()), 400,
                 "validation_failed", "Enable secure email change to generate link for current email")
    link = generate(server, type="email_change_new", email=email, new_email=new_email()).json()
    assert "access_token" in follow(server, link)


def test_generate_link_redirect_target(make_server, backend):
    server = make_server(backend, GOTRUE_URI_ALLOW_LIST="https://app.example.com/**")
    email = new_email()
    create(server, email=email, email_confirm=True)

    def target(query: str = "", **body) -> dict:
        resp = generate(server, type="magiclink", email=email, query=query, **body)
        assert resp.status_code == 200, resp.text
        return resp.json()

    link = target("?redirect_to=https://app.example.com/welcome")
    assert link["redirect_to"] == "https://app.example.com/welcome"
    assert link["action_link"].endswith("&redirect_to=https://app.example.com/welcome")
    # The body wins when allowed, and is ignored when not.
    assert target("?redirect_to=https://app.example.com/q", redirect_to="https://app.example.com/b")[
        "redirect_to"] == "https://app.example.com/b"
    assert target("?redirect_to=https://app.example.com/q", redirect_to="https://evil.example.org/")[
        "redirect_to"] == "https://app.example.com/q"
    assert target(redirect_to="https://evil.example.org/")["redirect_to"] == "http://localhost:3000"
    link = target("?redirect_to=" + "https%3A%2F%2Fapp.example.com%2Fx%3Fa%3D1%26b%3D2")
    assert link["redirect_to"] == "https://app.example.com/x?a=1&b=2"
    assert link["action_link"].endswith("&redirect_to=https%3A%2F%2Fapp.example.com%2Fx%3Fa%3D1%26b%3D2")
    resp = httpx.get(link["action_link"], follow_redirects=False, timeout=TIMEOUT)
    assert resp.headers["Location"].startswith("https://app.example.com/x?a=1&b=2#access_token=")


def test_generate_link_sends_no_mail_and_records_recovery_requests(server):
    email = new_email()
    user = create(server, email=email, email_confirm=True)
    for link_type in ("magiclink", "recovery"):
        assert generate(server, type=link_type, email=email).status_code == 200
    entries = audit_entries(server, "user_recovery_requested")
    assert len(entries) == 2
    assert all(e["actor_id"] == user["id"] and e["actor_username"] == email for e in entries)
    assert generate(server, type="invite", email=new_email()).status_code == 200
    [invited] = audit_entries(server, "user_invited")
    assert invited["actor_username"] == "service_role" and invited["log_type"] == "team"
    # The test server keeps mail in its dev mailbox (no SMTP server, loopback only): none came.
    resp = HTTP.get(server.url + "/_dev/mail")
    assert resp.status_code == 200, resp.text
    assert resp.json()["messages"] == []


# --- GET /admin/audit ----------------------------------------------------------------------


def test_audit_log_listing(server):
    session = signup_session(server, data={"full_name": "Grace Hopper"})  # user_signedup + login
    email = session["user"]["email"]
    create(server, email=new_email())  # admin user_signedup
    resp = call(server, "GET", "/admin/audit")
    assert resp.status_code == 200, resp.text
    entries = resp.json()
    assert isinstance(entries, list) and len(entries) == 3
    assert resp.headers["X-Total-Count"] == "3"
    assert resp.headers["Link"] == '</admin/audit?page=1>; rel="last"'
    assert [e["payload"]["action"] for e in entries] == ["user_signedup", "login", "user_signedup"]
    newest = entries[0]
    assert set(newest) == {"id", "payload", "created_at", "ip_address"}
    uuid.UUID(newest["id"])
    assert RFC3339_UTC.match(newest["created_at"])
    assert newest["ip_address"] == ""
    assert entries[1]["payload"]["actor_name"] == "Grace Hopper"
    assert entries[1]["payload"]["actor_username"] == email
    times = [e["created_at"] for e in entries]
    assert times == sorted(times, reverse=True)

    def ids(query: str) -> list[str]:
        resp = call(server, "GET", "/admin/audit?" + query)
        assert resp.status_code == 200, resp.text
        return [e["payload"]["action"] for e in resp.json()]

    assert ids("query=action:LOGIN") == ["login"]
    assert ids("query=type:team") == ["user_signedup", "user_signedup"]
    assert ids("query=author:hopper") == ["login", "user_signedup"]  # actor_name, any case
    assert ids("query=author:service_") == ["user_signedup"]  # actor_username
    assert ids("query=author:" + email.upper()) == ["login", "user_signedup"]
    assert ids("query=action:") == ["user_signedup", "login", "user_signedup"]
    assert ids("query=action:%25") == []

    resp = call(server, "GET", "/admin/audit?per_page=1&page=2&query=type:team")
    assert [e["payload"]["action"] for e in resp.json()] == ["user_signedup"]
    assert resp.headers["X-Total-Count"] == "2"
    assert resp.headers["Link"] == '</admin/audit?page=2&per_page=1&query=type%3Ateam>; rel="last"'
    resp = call(server, "GET", "/admin/audit?per_page=2")
    assert resp.headers["Link"] == ('</admin/audit?page=2&per_page=2>; rel="next", '
                                    '</admin/audit?page=2&per_page=2>; rel="last"')

    for query in ("query=who:x", "query=action", "query=Action:login"):
        assert_error(call(server, "GET", "/admin/audit?" + query), 400, "validation_failed",
                     "Invalid query scope: " + query.split("=", 1)[1])
    assert_error(call(server, "GET", "/admin/audit?page=a"), 400, "validation_failed",
                 'Bad Pagination Parameters: strconv.ParseUint: parsing "a": invalid syntax')


def test_audit_entries_follow_the_clock(server):
    from gotrue_lite import clock

    create(server, email=new_email())
    clock.offset = timedelta(days=-1)
    try:
        create(server, email=new_email())
    finally:
        clock.offset = timedelta(0)
    entries = call(server, "GET", "/admin/audit").json()
    assert entries[0]["created_at"] > entries[1]["created_at"]
