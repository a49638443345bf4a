"""Identities: GET /user shows them, DELETE /user/identities/{id} unlinks one (EXTERNAL.md §5.3–5.5),
over HTTP, through supabase_auth and through auth-js, on both backends.

Until the OAuth callback links identities, tests add them with the store's own insert."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from supabase_auth import SyncGoTrueClient
from supabase_auth.errors import AuthApiError

from test_clients_js import node, run_js  # noqa: F401 - the node fixture
from helpers import V2, assert_both_envelopes, assert_error, bearer, db_of, new_email, rows

PASSWORD = "correct-horse-battery-1"
LINKING = {"GOTRUE_SECURITY_MANUAL_LINKING_ENABLED": "true"}


def admin_user(server, email: str | None, **extra: Any) -> dict:
    body = {"password": PASSWORD, "email_confirm": True, **extra}
    if email:
        body["email"] = email
    resp = httpx.post(f"{server.url}/admin/users", json=body, headers=bearer(server.service_role_key))
    assert resp.status_code == 200, resp.text
    return resp.json()


def add_identity(server, user_id: str, provider: str, email: str | None = None, verified: bool = True,
                 subject: str | None = None) -> str:
    from gotrue_lite.store import users as user_store

    identity_id = str(uuid.uuid4())
    subject = subject or uuid.uuid4().hex
    data: dict[str, Any] = {"sub": subject, "provider_id": subject, "email_verified": verified,
                            "phone_verified": False}
    if email:
        data["email"] = email
    server.run(user_store.create_identity(db_of(server), {
        "id": identity_id, "provider_id": subject, "user_id": user_id, "identity_data": data,
        "provider": provider}))
    return identity_id


def session_of(server, email: str) -> str:
    resp = httpx.post(f"{server.url}/token?grant_type=password", json={"email": email, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return resp.json()["access_token"]


def unlink(server, token: str, identity_id: str, **headers: str) -> httpx.Response:
    return httpx.delete(f"{server.url}/user/identities/{identity_id}", headers={**bearer(token), **headers})


def me(server, token: str) -> dict:
    resp = httpx.get(f"{server.url}/user", headers=bearer(token))
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture
def linking(make_server, backend):
    return make_server(backend, **LINKING)


def test_unlinking_needs_the_manual_linking_switch(server):
    address = new_email()
    user = admin_user(server, address)
    token = session_of(server, address)
    path = f"/user/identities/{user['identities'][0]['identity_id']}"
    assert_both_envelopes(server, "DELETE", path, 401, "no_authorization", "This endpoint requires a valid Bearer token")
    assert_both_envelopes(server, "DELETE", path, 404, "manual_linking_disabled", "Manual linking is disabled",
                          token=token)


def test_identities_in_the_user_object(linking):
    address = new_email()
    user = admin_user(linking, address)
    github = add_identity(linking, user["id"], "github", "Other@Example.com", subject="12345")
    body = me(linking, session_of(linking, address))
    [email_identity, github_identity] = body["identities"]
    assert email_identity["provider"] == "email" and email_identity["email"] == address
    assert github_identity == {
        "identity_id": github, "id": "12345", "user_id": user["id"],
        "identity_data": {"sub": "12345", "provider_id": "12345", "email": "Other@Example.com",
                          "email_verified": True, "phone_verified": False},
        "provider": "github", "last_sign_in_at": github_identity["last_sign_in_at"],
        "created_at": github_identity["created_at"], "updated_at": github_identity["updated_at"],
        "email": "other@example.com",  # the generated column, lower-cased
    }


def test_unlink_checks_in_upstreams_order(linking):
    address, other = new_email(), new_email()
    user = admin_user(linking, address)
    stranger = admin_user(linking, other)
    foreign = add_identity(linking, stranger["id"], "github")
    token = session_of(linking, address)
    own = user["identities"][0]["identity_id"]

    assert_error(unlink(linking, token, "not-a-uuid"), 404, "validation_failed", "identity_id must be an UUID")
    assert_error(unlink(linking, token, own, **{"X-JWT-AUD": "other"}), 403, "unexpected_audience",
                 "Token audience doesn't match request audience")
    assert_error(unlink(linking, token, own), 422, "single_identity_not_deletable",
                 "User must have at least 1 identity after unlinking")
    add_identity(linking, user["id"], "github")
    assert_error(unlink(linking, token, str(uuid.uuid4())), 422, "identity_not_found", "Identity doesn't exist")
    assert_error(unlink(linking, token, foreign), 422, "identity_not_found", "Identity doesn't exist")
    resp = unlink(linking, token, own, **V2)
    assert resp.status_code == 200 and resp.json() == {}


def test_unlinking_keeps_an_email_another_identity_has(linking):
    address = new_email()
    user = admin_user(linking, address)
    github = add_identity(linking, user["id"], "github", address, subject="gh-77")
    token = session_of(linking, address)
    resp = unlink(linking, token, github)
    assert resp.status_code == 200 and resp.json() == {}
    body = me(linking, token)
    assert [i["provider"] for i in body["identities"]] == ["email"]
    assert body["email"] == address and body["email_confirmed_at"]
    assert body["app_metadata"]["providers"] == ["email"] and body["app_metadata"]["provider"] == "email"
    payloads = [r["payload"] if isinstance(r["payload"], dict) else json.loads(r["payload"])
                for r in rows(linking, "SELECT payload FROM audit_log_entries")]
    [payload] = [p for p in payloads if p["action"] == "identity_unlinked"]
    assert payload["traits"] == {"identity_id": github, "provider": "github", "provider_id": "gh-77"}
    assert payload["actor_id"] == user["id"]


def test_unlinking_the_email_identity_promotes_a_verified_provider_email(linking):
    address, verified, unverified = new_email(), new_email("gh"), new_email("gl")
    user = admin_user(linking, address)
    add_identity(linking, user["id"], "gitlab", unverified, verified=False)  # older, but unverified
    add_identity(linking, user["id"], "github", verified, verified=True)
    add_identity(linking, user["id"], "twitter")  # no email: ranked last
    token = session_of(linking, address)
    # a pending recovery token is cleared by the switch
    httpx.post(f"{linking.url}/recover", json={"email": address})
    resp = unlink(linking, token, user["identities"][0]["identity_id"])
    assert resp.status_code == 200, resp.text
    body = me(linking, token)
    assert body["email"] == verified and body["email_confirmed_at"]
    assert body["app_metadata"]["providers"] == ["gitlab", "github", "twitter"]
    assert body["app_metadata"]["provider"] == "gitlab"
    [row] = rows(linking, "SELECT recovery_token FROM users WHERE id = $1", user["id"])
    assert row["recovery_token"] == ""
    assert rows(linking, "SELECT 1 FROM one_time_tokens WHERE user_id = $1", user["id"]) == []


def test_an_unverified_promoted_email_is_unconfirmed_without_autoconfirm(make_server, backend):
    server = make_server(backend, GOTRUE_MAILER_AUTOCONFIRM="false", **LINKING)
    address, unverified = new_email(), new_email("gl")
    user = admin_user(server, address)
    add_identity(server, user["id"], "gitlab", unverified, verified=False)
    token = session_of(server, address)
    assert unlink(server, token, user["identities"][0]["identity_id"]).status_code == 200
    body = me(server, token)
    assert body["email"] == unverified
    assert "email_confirmed_at" not in body
    assert body["user_metadata"]["email_verified"] is False


def test_an_email_taken_by_another_user_blocks_the_unlink(linking):
    address, taken = new_email(), new_email("taken")
    user = admin_user(linking, address)
    admin_user(linking, taken)
    add_identity(linking, user["id"], "github", taken)
    token = session_of(linking, address)
    own = user["identities"][0]["identity_id"]
    assert_error(unlink(linking, token, own), 422, "email_conflict_identity_not_deletable",
                 "Unable to unlink identity due to email conflict")
    body = me(linking, token)  # nothing changed
    assert body["email"] == address and len(body["identities"]) == 2


def test_unlinking_the_phone_identity_clears_the_phone(make_server, backend):
    server = make_server(backend, GOTRUE_EXTERNAL_PHONE_ENABLED="true", **LINKING)
    address = new_email()
    user = admin_user(server, address, phone="15551230000", phone_confirm=True)
    phone = next(i for i in user["identities"] if i["provider"] == "phone")
    token = session_of(server, address)
    assert unlink(server, token, phone["identity_id"]).status_code == 200
    body = me(server, token)
    assert body["phone"] == "" and "phone_confirmed_at" not in body
    assert body["email"] == address and [i["provider"] for i in body["identities"]] == ["email"]


# --- the published clients ------------------------------------------------------------------------


def test_supabase_auth_get_user_identities_and_unlink_identity(linking):
    address = new_email()
    user = admin_user(linking, address)
    add_identity(linking, user["id"], "github", address)
    client = SyncGoTrueClient(url=linking.url, headers={"apikey": linking.anon_key},
                              auto_refresh_token=False, persist_session=True)
    client.sign_in_with_password({"email": address, "password": PASSWORD})
    identities = client.get_user_identities().identities
    assert sorted(i.provider for i in identities) == ["email", "github"]
    github = next(i for i in identities if i.provider == "github")
    client.unlink_identity(github)
    assert [i.provider for i in client.get_user_identities().identities] == ["email"]
    with pytest.raises(AuthApiError) as info:
        client.unlink_identity(identities[0])
    assert (info.value.status, info.value.code) == (422, "single_identity_not_deletable")


def test_auth_js_get_user_identities_and_unlink_identity(node, linking):
    address = new_email()
    user = admin_user(linking, address)
    add_identity(linking, user["id"], "github", new_email("gh"))
    run = run_js(node, "auth_js.mjs", "identities", linking, GL_IDENTITY_EMAIL=address)
    assert sorted(i["provider"] for i in run.ok("getUserIdentities")["identities"]) == ["email", "github"]
    assert run.ok("unlinkIdentity") == {}
    assert [i["provider"] for i in run.ok("getUserIdentities_after")["identities"]] == ["email"]
    run.error("unlinkIdentity_last", 422, "single_identity_not_deletable")
    run.error("unlinkIdentity_again", 422, "single_identity_not_deletable")
