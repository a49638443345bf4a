"""The admin API driven through the published Python client's admin API (supabase_auth), on both backends."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import bcrypt
import httpx
import pytest
from supabase_auth import SyncGoTrueAdminAPI, SyncGoTrueClient
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

PASSWORD = "correct-horse-battery-1"
FAST_HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
SITE_URL = "http://localhost:3000"
TIMEOUT = 60


def new_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture
def clients():
    """Factory: clients(server) -> (admin API with the service_role key, end-user client with the
    anon key), both configured the way supabase-py configures them."""
    made: list[SyncGoTrueClient] = []

    def factory(server) -> tuple[SyncGoTrueAdminAPI, SyncGoTrueClient]:
        def client(key: str) -> SyncGoTrueClient:
            made.append(SyncGoTrueClient(url=server.url, headers={"apikey": key, "Authorization": f"Bearer {key}"},
                                         auto_refresh_token=False, persist_session=False))
            return made[-1]

        return client(server.service_role_key).admin, client(server.anon_key)

    yield factory
    for client in made:
        client.close()


def api_error(excinfo) -> tuple[int, str | None]:
    return excinfo.value.status, excinfo.value.code


def rows(server, query: str, *args):
    from gotrue_lite.api.middleware import CTX

    return server.run(server.app[CTX].db.fetch_all(query, *args))


def fragment_of(action_link: str) -> dict[str, list[str]]:
    """Follow an action link the way a browser does: GET /verify answers 303 to the redirect."""
    resp = httpx.get(action_link, follow_redirects=False, timeout=TIMEOUT)
    assert resp.status_code == 303, resp.text
    return parse_qs(urlsplit(resp.headers["Location"]).fragment)


# --- users ---------------------------------------------------------------------------------


def test_create_get_and_list_users_with_pagination(server, clients):
    admin, _ = clients(server)
    created = [admin.create_user({"email": new_email(), "password_hash": FAST_HASH, "email_confirm": True,
                                  "user_metadata": {"n": n}}).user for n in range(7)]
    first = created[0]
    assert first.email_confirmed_at is not None
    assert first.app_metadata == {"provider": "email", "providers": ["email"]}
    assert first.user_metadata == {"n": 0, "email_verified": True}
    assert [i.provider for i in first.identities] == ["email"]

    fetched = admin.get_user_by_id(first.id).user
    assert fetched.id == first.id and fetched.email == first.email
    assert fetched.created_at == first.created_at

    everyone = admin.list_users()
    assert [u.id for u in everyone] == [u.id for u in reversed(created)]  # newest first
    pages = [admin.list_users(page=page, per_page=3) for page in (1, 2, 3, 4)]
    assert [len(p) for p in pages] == [3, 3, 1, 0]
    assert [u.id for p in pages for u in p] == [u.id for u in everyone]

    with pytest.raises(AuthApiError) as excinfo:
        admin.get_user_by_id(str(uuid.uuid4()))
    assert api_error(excinfo) == (404, "user_not_found")
    with pytest.raises(AuthApiError) as excinfo:
        admin.create_user({"email": first.email, "password": PASSWORD})
    assert api_error(excinfo) == (422, "email_exists")


def test_created_user_signs_in_with_the_imported_hash(server, clients):
    admin, client = clients(server)
    email = new_email()
    admin.create_user({"email": email, "password_hash": FAST_HASH, "email_confirm": True, "role": "editor"})
    res = client.sign_in_with_password({"email": email, "password": PASSWORD})
    assert res.session is not None
    assert client.get_claims()["claims"]["role"] == "editor"


def test_update_user_by_id_with_ban_and_unban(server, clients):
    admin, client = clients(server)
    email = new_email()
    user = admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True,
                              "user_metadata": {"keep": 1, "drop": 2}}).user

    updated = admin.update_user_by_id(user.id, {"user_metadata": {"drop": None, "new": 3},
                                                "app_metadata": {"plan": "pro"}, "role": "editor"}).user
    assert updated.user_metadata == {"keep": 1, "new": 3, "email_verified": True}
    assert updated.app_metadata == {"provider": "email", "providers": ["email"], "plan": "pro"}
    assert updated.role == "editor"

    banned = admin.update_user_by_id(user.id, {"ban_duration": "24h"}).user
    assert banned.banned_until is not None
    until = datetime.fromisoformat(banned.banned_until.replace("Z", "+00:00"))
    assert 23.9 * 3600 < (until - datetime.now(timezone.utc)).total_seconds() <= 24 * 3600
    with pytest.raises(AuthApiError) as excinfo:
        client.sign_in_with_password({"email": email, "password": PASSWORD})
    assert api_error(excinfo) == (400, "user_banned")

    unbanned = admin.update_user_by_id(user.id, {"ban_duration": "none"}).user
    assert unbanned.banned_until is None
    assert client.sign_in_with_password({"email": email, "password": PASSWORD}).session is not None

    with pytest.raises(AuthApiError) as excinfo:
        admin.update_user_by_id(user.id, {"ban_duration": "1 week"})
    assert api_error(excinfo) == (400, "validation_failed")


def test_update_email_and_password_by_id(server, clients):
    admin, client = clients(server)
    email, new = new_email(), new_email("new")
    user = admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True}).user
    session = client.sign_in_with_password({"email": email, "password": PASSWORD}).session

    changed = admin.update_user_by_id(user.id, {"email": new, "password": "another-password-2",
                                                "email_confirm": True}).user
    assert changed.email == new
    assert changed.identities[0].identity_data["email"] == new
    # Every session ends with an admin password change.
    with pytest.raises(AuthApiError) as excinfo:
        client.refresh_session(session.refresh_token)
    assert api_error(excinfo) == (400, "refresh_token_not_found")
    assert client.sign_in_with_password({"email": new, "password": "another-password-2"}).session is not None

    with pytest.raises(AuthWeakPasswordError) as excinfo:
        admin.update_user_by_id(user.id, {"password": "1"})
    assert api_error(excinfo) == (422, "weak_password")


def test_delete_user_hard_and_soft(server, clients):
    admin, client = clients(server)
    hard = admin.create_user({"email": new_email(), "password": PASSWORD}).user
    assert admin.delete_user(hard.id) is None
    with pytest.raises(AuthApiError) as excinfo:
        admin.get_user_by_id(hard.id)
    assert api_error(excinfo) == (404, "user_not_found")

    email = new_email()
    soft = admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True,
                              "user_metadata": {"full_name": "Soft"}}).user
    admin.delete_user(soft.id, should_soft_delete=True)
    kept = admin.get_user_by_id(soft.id).user
    assert kept.deleted_at is not None
    assert kept.email != email and email not in (kept.email or "")
    assert kept.user_metadata == {} and kept.app_metadata == {}
    assert all(i.identity_data == {} for i in kept.identities)
    with pytest.raises(AuthApiError) as excinfo:
        client.sign_in_with_password({"email": email, "password": PASSWORD})
    assert api_error(excinfo) == (400, "invalid_credentials")
    admin.delete_user(soft.id, should_soft_delete=True)  # again: a no-op
    assert admin.get_user_by_id(soft.id).user.email == kept.email


def test_admin_api_needs_the_service_role(server, clients):
    _, client = clients(server)
    with pytest.raises(AuthApiError) as excinfo:
        client.admin.list_users()
    assert api_error(excinfo) == (403, "not_admin")


def _key_without_exp(server) -> str:
    """The shape supabase-py's own tests give their admin client: {"role": "service_role"}, no exp."""
    from jose import jwt

    return jwt.encode({"role": "service_role"}, server.settings.jwt.secret, algorithm="HS256")


def test_a_service_key_without_exp_is_an_admin_key(server):
    """upstream accepts a correctly signed token without exp (golang-jwt v5's default)."""
    admin = SyncGoTrueAdminAPI(url=server.url, headers={"Authorization": f"Bearer {_key_without_exp(server)}"})
    try:
        email = new_email("noexp")
        created = admin.create_user({"email": email, "password_hash": FAST_HASH, "email_confirm": True}).user
        assert admin.get_user_by_id(created.id).user.email == email
        assert created.id in [u.id for u in admin.list_users(per_page=1000)]
        admin.delete_user(created.id)
        with pytest.raises(AuthApiError) as excinfo:
            admin.get_user_by_id(created.id)
        assert api_error(excinfo) == (404, "user_not_found")
    finally:
        admin.close()


def test_a_service_key_without_exp_is_refused_when_exp_is_required(make_server, backend):
    server = make_server(backend, GOTRUE_LITE_REQUIRE_EXP="true")
    admin = SyncGoTrueAdminAPI(url=server.url, headers={"Authorization": f"Bearer {_key_without_exp(server)}"})
    try:
        with pytest.raises(AuthApiError) as excinfo:
            admin.create_user({"email": new_email("noexp"), "password_hash": FAST_HASH})
        assert api_error(excinfo) == (403, "bad_jwt")
        assert 'missing required key "exp"' in excinfo.value.message
        assert rows(server, "SELECT id FROM users") == []
    finally:
        admin.close()
    # The ordinary service_role key (it has exp) still works there.
    strict = SyncGoTrueAdminAPI(url=server.url, headers={"Authorization": f"Bearer {server.service_role_key}"})
    try:
        assert strict.list_users() == []
    finally:
        strict.close()


def mailed_links(server, email: str) -> list[str]:
    """The links of the mails the test server's dev mailbox holds for `email` (no SMTP server
    is configured and it listens on loopback, so mail lands there)."""
    resp = httpx.get(f"{server.url}/_dev/mail", params={"email": email}, timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text
    return [link for message in resp.json()["messages"] for link in message["links"]]


def test_invite_user_by_email(server, clients):
    admin, client = clients(server)
    email = new_email("invitee")
    invited = admin.invite_user_by_email(email, {"data": {"team": "blue"},
                                                 "redirect_to": f"{SITE_URL}/welcome"}).user
    assert invited.email == email
    assert invited.invited_at is not None
    assert invited.user_metadata == {"team": "blue"}
    [row] = rows(server, "SELECT confirmation_token FROM users WHERE id = $1", invited.id)
    [link] = [link for link in mailed_links(server, email) if "/verify?" in link]
    assert link == f"{server.url}/verify?token={row['confirmation_token']}&type=invite&redirect_to={SITE_URL}/welcome"
    fragment = fragment_of(link)
    assert fragment["type"] == ["invite"]
    me = client.get_user(fragment["access_token"][0]).user
    assert me.id == invited.id and me.email_confirmed_at is not None

    with pytest.raises(AuthApiError) as excinfo:
        admin.invite_user_by_email(email)
    assert api_error(excinfo) == (422, "email_exists")


# --- generate_link -------------------------------------------------------------------------


def check_properties(res, email_for_hash: str, link_type: str, verification_type: str) -> None:
    props = res.properties
    assert props.verification_type == verification_type
    assert props.hashed_token == hashlib.sha224((email_for_hash + props.email_otp).encode()).hexdigest()
    assert f"token={props.hashed_token}" in props.action_link
    assert f"type={link_type}" in props.action_link
    assert props.redirect_to == SITE_URL


@pytest.mark.parametrize("existing", [False, True], ids=["new-user", "unconfirmed-user"])
def test_generate_signup_link(server, clients, existing):
    admin, client = clients(server)
    email = new_email()
    if existing:
        admin.create_user({"email": email, "password": PASSWORD})
    res = admin.generate_link({"type": "signup", "email": email, "password": PASSWORD,
                               "options": {"data": {"plan": "free"}}})
    check_properties(res, email, "signup", "signup")
    assert res.user.email == email and res.user.email_confirmed_at is None
    assert res.user.user_metadata["plan"] == "free"
    fragment = fragment_of(res.properties.action_link)
    assert client.get_user(fragment["access_token"][0]).user.email_confirmed_at is not None

    # The OTP of a second link works through POST /verify.
    email = new_email()
    res = admin.generate_link({"type": "signup", "email": email, "password": PASSWORD})
    verified = client.verify_otp({"email": email, "token": res.properties.email_otp, "type": "signup"})
    assert verified.session is not None and verified.user.email == email


def test_generate_invite_link(server, clients):
    admin, client = clients(server)
    email = new_email("invitee")
    res = admin.generate_link({"type": "invite", "email": email, "options": {"data": {"team": "red"}}})
    check_properties(res, email, "invite", "invite")
    assert res.user.invited_at is not None and res.user.user_metadata == {"team": "red"}
    fragment = fragment_of(res.properties.action_link)
    assert fragment["type"] == ["invite"]

    email = new_email("invitee")
    res = admin.generate_link({"type": "invite", "email": email})
    verified = client.verify_otp({"email": email, "token": res.properties.email_otp, "type": "invite"})
    assert verified.session is not None


@pytest.mark.parametrize("link_type", ["magiclink", "recovery"])
def test_generate_magiclink_and_recovery_links(server, clients, link_type):
    admin, client = clients(server)
    email = new_email()
    user = admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True}).user
    res = admin.generate_link({"type": link_type, "email": email})
    check_properties(res, email, link_type, link_type)
    assert res.user.id == user.id
    fragment = fragment_of(res.properties.action_link)
    assert fragment["type"] == [link_type]
    assert client.get_user(fragment["access_token"][0]).user.id == user.id

    res = admin.generate_link({"type": link_type, "email": email})
    verified = client.verify_otp({"email": email, "token": res.properties.email_otp, "type": link_type})
    assert verified.session is not None and verified.user.id == user.id


def test_generate_link_sends_no_mail(server, clients):
    admin, _ = clients(server)
    email = new_email()
    admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True})
    for link_type in ("magiclink", "recovery"):
        admin.generate_link({"type": link_type, "email": email})
    admin.generate_link({"type": "email_change_new", "email": email, "new_email": new_email("new")})
    stranger = new_email("stranger")
    admin.generate_link({"type": "invite", "email": stranger})
    assert mailed_links(server, email) == [] and mailed_links(server, stranger) == []


def test_generate_magiclink_for_a_stranger_signs_them_up(server, clients):
    admin, client = clients(server)
    email = new_email()
    res = admin.generate_link({"type": "magiclink", "email": email})
    check_properties(res, email, "signup", "signup")
    assert "access_token" in fragment_of(res.properties.action_link)

    with pytest.raises(AuthApiError) as excinfo:
        admin.generate_link({"type": "recovery", "email": new_email()})
    assert api_error(excinfo) == (404, "user_not_found")


def test_generate_email_change_links(server, clients):
    admin, client = clients(server)
    email, new = new_email(), new_email("new")
    user = admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True}).user

    res = admin.generate_link({"type": "email_change_new", "email": email, "new_email": new})
    check_properties(res, new, "email_change", "email_change_new")
    assert res.user.new_email == new
    fragment = fragment_of(res.properties.action_link)
    assert fragment["type"] == ["email_change"]
    assert admin.get_user_by_id(user.id).user.email == new

    other = new_email("other")
    res = admin.generate_link({"type": "email_change_current", "email": new, "new_email": other})
    check_properties(res, new, "email_change", "email_change_current")
    verified = client.verify_otp({"email": new, "token": res.properties.email_otp, "type": "email_change"})
    assert verified.user is not None and verified.user.email == other

    taken = admin.create_user({"email": new_email("taken"), "password": PASSWORD}).user.email
    with pytest.raises(AuthApiError) as excinfo:
        admin.generate_link({"type": "email_change_new", "email": other, "new_email": taken})
    assert api_error(excinfo) == (422, "email_exists")


def test_generate_link_with_redirect_to(make_server, backend, clients):
    server = make_server(backend, GOTRUE_URI_ALLOW_LIST="https://app.example.com/**")
    admin, _ = clients(server)
    email = new_email()
    admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True})
    res = admin.generate_link({"type": "magiclink", "email": email,
                               "options": {"redirect_to": "https://app.example.com/home"}})
    assert res.properties.redirect_to == "https://app.example.com/home"
    resp = httpx.get(res.properties.action_link, follow_redirects=False, timeout=TIMEOUT)
    assert resp.status_code == 303
    assert resp.headers["Location"].startswith("https://app.example.com/home#access_token=")


# --- factors -------------------------------------------------------------------------------


def test_list_and_delete_factors(server, clients):
    admin, _ = clients(server)
    user = admin.create_user({"email": new_email(), "password": PASSWORD}).user
    assert admin.mfa.list_factors({"user_id": user.id}) == []

    from gotrue_lite.api.middleware import CTX

    factor_id = str(uuid.uuid4())
    now = datetime.now(timezone.utc)
    server.run(server.app[CTX].db.execute(
        "INSERT INTO mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at) "
        "VALUES ($1, $2, 'laptop', 'totp', 'verified', $3, $3)", factor_id, user.id, now))

    [factor] = admin.mfa.list_factors({"user_id": user.id})
    assert factor.id == factor_id and factor.factor_type == "totp" and factor.status == "verified"
    assert factor.friendly_name == "laptop"
    assert [f.id for f in admin.get_user_by_id(user.id).user.factors] == [factor_id]

    deleted = admin.mfa.delete_factor({"user_id": user.id, "id": factor_id})
    assert deleted.id == factor_id
    assert admin.mfa.list_factors({"user_id": user.id}) == []
    with pytest.raises(AuthApiError) as excinfo:
        admin.mfa.delete_factor({"user_id": user.id, "id": factor_id})
    assert api_error(excinfo) == (404, "mfa_factor_not_found")
