"""The external-account decision (auth/external_accounts.sign_in_with_identity) on both stores:
new user, returning identity, automatic linking by verified email and when upstream refuses it,
invites, disabled sign-ups, banned users, manual linking; what identities and app_metadata hold."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from gotrue_lite import clock
from gotrue_lite.api.middleware import CTX
from gotrue_lite.auth import Client
from gotrue_lite.auth.external_accounts import sign_in_with_identity
from gotrue_lite.errors import APIError
from gotrue_lite.providers import Email, UserData
from helpers import new_email, rows, signup

CLIENT = Client(ip="127.0.0.9", user_agent="test", aud="authenticated")


def _data(email: str | None, verified: bool = True, *, sub: str | None = None, **claims) -> UserData:
    sub = sub or uuid.uuid4().hex
    emails = [Email(email, verified, True)] if email else []
    base = {"iss": "https://idp.example", "sub": sub, "provider_id": sub, "email_verified": verified,
            "phone_verified": False, **claims}
    if email:
        base["email"] = email
    return UserData(emails=emails, claims=base)


def _sign_in(server, provider: str, data: UserData, **kwargs):
    ctx = server.app[CTX]
    return server.run(sign_in_with_identity(ctx, CLIENT, provider, data, **kwargs))


def _error(server, provider, data, **kwargs) -> APIError:
    with pytest.raises(APIError) as caught:
        _sign_in(server, provider, data, **kwargs)
    return caught.value


def _identities(server, user_id: str) -> list[dict]:
    return rows(server, "SELECT provider, provider_id, identity_data, email FROM identities WHERE user_id = $1 "
                        "ORDER BY created_at", user_id)


def _user(server, user_id: str) -> dict:
    return rows(server, "SELECT email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, encrypted_password "
                        "FROM users WHERE id = $1", user_id)[0]


def test_new_user_then_returning_identity(server):
    email = new_email("Oauth").replace("oauth", "OAuth")
    data = _data(email, name="First Name")
    first = _sign_in(server, "keycloak", data)
    assert first.decision == "created"
    user = _user(server, first.user.id)
    assert user["email"] == email.lower() and user["email_confirmed_at"] is not None
    assert user["raw_app_meta_data"] == {"provider": "keycloak", "providers": ["keycloak"]}
    assert user["raw_user_meta_data"]["name"] == "First Name"
    assert user["raw_user_meta_data"]["email_verified"] is True
    [identity] = _identities(server, first.user.id)
    assert identity["provider_id"] == data.claims["sub"] and identity["email"] == email.lower()
    assert identity["identity_data"]["email"] == email.lower()

    again = _sign_in(server, "keycloak", _data(email, sub=data.claims["sub"], name="Renamed", picture="p.png"))
    assert (again.decision, again.user.id) == ("existing", first.user.id)
    [identity] = _identities(server, first.user.id)
    assert identity["identity_data"]["name"] == "Renamed" and identity["identity_data"]["picture"] == "p.png"
    assert _user(server, first.user.id)["raw_user_meta_data"]["name"] == "Renamed"
    audit = rows(server, "SELECT payload FROM audit_log_entries ORDER BY created_at")
    actions = [row["payload"]["action"] for row in audit if row["payload"].get("actor_id") == first.user.id]
    assert actions == ["user_signedup", "login"]


def test_verified_email_links_to_the_password_user(server):
    email = new_email()
    assert signup(server, email).status_code == 200
    owner = rows(server, "SELECT id FROM users WHERE email = $1", email)[0]["id"]
    linked = _sign_in(server, "github", _data(email.upper(), True))
    assert (linked.decision, linked.user.id) == ("linked", owner)
    assert [i["provider"] for i in _identities(server, owner)] == ["email", "github"]
    assert _user(server, owner)["raw_app_meta_data"] == {"provider": "email", "providers": ["email", "github"]}
    assert _user(server, owner)["encrypted_password"]  # a confirmed user keeps the password


def test_unverified_email_never_links_and_never_takes_the_email(make_server, backend):
    """The email-takeover attempt: a provider account claiming someone's address unverified gets
    a user of its own, without the address, and no session (autoconfirm off)."""
    server = make_server(backend, GOTRUE_MAILER_AUTOCONFIRM="false", GOTRUE_SMTP_MAX_FREQUENCY="1ms")
    victim = new_email("victim")
    _sign_in(server, "keycloak", _data(victim, True))
    before = rows(server, "SELECT count(*) AS n FROM identities")[0]["n"]
    error = _error(server, "github", _data(victim, False))
    assert (error.status, error.error_code) == (422, "provider_email_needs_verification")
    assert error.message == "Unverified email with github. Verify the email with github in order to sign in"
    victim_row = rows(server, "SELECT id FROM users WHERE email = $1", victim)
    assert len(victim_row) == 1
    assert [i["provider"] for i in _identities(server, victim_row[0]["id"])] == ["keycloak"]
    # upstream commits the attacker's email-less user anyway (NewCommitWithError)
    assert rows(server, "SELECT count(*) AS n FROM identities")[0]["n"] == before + 1
    stray = rows(server, "SELECT u.email FROM users u JOIN identities i ON i.user_id = u.id WHERE i.provider = 'github'")
    assert stray == [{"email": None}]


def test_unverified_fresh_email_gets_a_confirmation_mail(make_server, backend):
    server = make_server(backend, GOTRUE_MAILER_AUTOCONFIRM="false", GOTRUE_SMTP_MAX_FREQUENCY="1ms")
    email = new_email()
    error = _error(server, "gitlab", _data(email, False))
    assert error.message == "Unverified email with gitlab. A confirmation email has been sent to your gitlab email"
    user = rows(server, "SELECT email, email_confirmed_at, confirmation_token FROM users WHERE email = $1", email)
    assert user and user[0]["email_confirmed_at"] is None and user[0]["confirmation_token"]


def test_unconfirmed_password_user_loses_password_to_a_verified_identity(make_server, backend):
    server = make_server(backend, GOTRUE_MAILER_AUTOCONFIRM="false", GOTRUE_SMTP_MAX_FREQUENCY="1ms")
    email = new_email()
    assert signup(server, email).status_code == 200  # an attacker's unconfirmed password sign-up
    owner = rows(server, "SELECT id FROM users WHERE email = $1", email)[0]["id"]
    linked = _sign_in(server, "keycloak", _data(email, True, name="Real Owner"))
    assert linked.user.id == owner
    user = _user(server, owner)
    assert not user["encrypted_password"] and user["email_confirmed_at"] is not None
    assert [i["provider"] for i in _identities(server, owner)] == ["keycloak"]
    assert user["raw_app_meta_data"]["providers"] == ["keycloak"]
    assert user["raw_user_meta_data"]["name"] == "Real Owner"


def test_signup_disabled_and_banned(make_server, backend):
    server = make_server(backend, GOTRUE_DISABLE_SIGNUP="true")
    error = _error(server, "keycloak", _data(new_email()))
    assert (error.status, error.error_code, error.message) == (422, "signup_disabled", "Signups not allowed for this instance")
    assert rows(server, "SELECT count(*) AS n FROM users")[0]["n"] == 0

    server = make_server(backend)
    data = _data(new_email())
    user = _sign_in(server, "keycloak", data).user
    rows(server, "UPDATE users SET banned_until = $2 WHERE id = $1 RETURNING id", user.id, clock.now() + timedelta(hours=1))
    error = _error(server, "keycloak", data)
    assert (error.status, error.error_code) == (403, "user_banned")


def test_missing_email_is_upstreams_500_unless_optional(server):
    error = _error(server, "keycloak", _data(None))
    assert (error.status, error.message) == (500, "Error getting user email from external provider")
    made = _sign_in(server, "keycloak", _data(None), email_optional=True)
    assert made.decision == "created" and _user(server, made.user.id)["email"] is None


def test_invite_acceptance(make_server, backend):
    server = make_server(backend, GOTRUE_MAILER_AUTOCONFIRM="false", GOTRUE_SMTP_MAX_FREQUENCY="1ms")
    email = new_email("invited")
    import httpx
    resp = httpx.post(server.url + "/invite", json={"email": email},
                      headers={"Authorization": f"Bearer {server.service_role_key}"}, timeout=30)
    assert resp.status_code == 200, resp.text
    token = rows(server, "SELECT confirmation_token FROM users WHERE email = $1", email)[0]["confirmation_token"]
    error = _error(server, "keycloak", _data(new_email("other")), invite_token=token)
    assert (error.status, error.error_code) == (400, "validation_failed")
    error = _error(server, "keycloak", _data(email), invite_token="not-a-token")
    assert (error.status, error.error_code, error.message) == (404, "invite_not_found", "Invite not found")
    accepted = _sign_in(server, "keycloak", _data(email, False), invite_token=token)
    assert accepted.decision == "invited"
    user = _user(server, accepted.user.id)
    assert user["email_confirmed_at"] is not None
    assert [i["provider"] for i in _identities(server, accepted.user.id)] == ["keycloak"]
    assert user["raw_app_meta_data"]["provider"] == "keycloak"


def test_manual_linking(server):
    resp = signup(server, new_email())
    owner = resp.json()["user"]["id"]
    data = _data(new_email("second"), True)
    linked = _sign_in(server, "keycloak", data, link_to_user=owner)
    assert linked.decision == "linked_manually" and linked.user.id == owner
    assert [i["provider"] for i in _identities(server, owner)] == ["email", "keycloak"]
    error = _error(server, "keycloak", data, link_to_user=owner)
    assert (error.status, error.error_code, error.message) == (422, "identity_already_exists", "Identity is already linked")
    other = signup(server, new_email()).json()["user"]["id"]
    error = _error(server, "keycloak", data, link_to_user=other)
    assert error.message == "Identity is already linked to another user"


def test_then_runs_in_the_same_transaction(server):
    data = _data(new_email())

    async def fail(tx, user):
        raise APIError(500, "unexpected_failure", "late failure")

    error = _error(server, "keycloak", data, then=fail)
    assert error.message == "late failure"
    assert rows(server, "SELECT count(*) AS n FROM identities WHERE provider_id = $1", data.claims["sub"])[0]["n"] == 0
