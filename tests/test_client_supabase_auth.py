"""The core flows, driven through the published Python client (supabase_auth), on both backends."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from supabase_auth import AsyncGoTrueClient, SyncGoTrueClient
from supabase_auth.errors import AuthApiError, AuthInvalidJwtError, AuthWeakPasswordError

from helpers import b64url

PASSWORD = "correct-horse-battery-1"
REFRESH_TOKEN_SHAPE = re.compile(r"^[a-z2-7]{12}$")


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture
def client_for():
    """Factory: client_for(server, http_client=None) -> SyncGoTrueClient, configured like
    supabase-py configures it (apikey + anon bearer on every call), without timers."""
    clients: list[SyncGoTrueClient] = []

    def factory(server, http_client: httpx.Client | None = None) -> SyncGoTrueClient:
        client = SyncGoTrueClient(
            url=server.url,
            headers={"apikey": server.anon_key, "Authorization": f"Bearer {server.anon_key}"},
            auto_refresh_token=False,
            persist_session=False,
            http_client=http_client,
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


def signed_up(client: SyncGoTrueClient, email: str | None = None, **data):
    """Sign a new user up (autoconfirm is on, so a session comes back)."""
    res = client.sign_up({"email": email or new_email(), "password": PASSWORD,
                          "options": {"data": data}})
    assert res.session is not None, "autoconfirm is on: sign-up must return a session"
    return res


def api_error(excinfo) -> tuple[int, str | None, str]:
    err = excinfo.value
    return err.status, err.code, err.message


# --- sign-up and sign-in -----------------------------------------------------------------


def test_sign_up_returns_a_session_and_keeps_the_metadata(server, client_for):
    client = client_for(server)
    email = new_email()
    before = int(time.time())
    res = client.sign_up({"email": email.replace("user", "User"), "password": PASSWORD,
                          "options": {"data": {"name": "Ada Lovelace", "plan": "free"}}})

    user, session = res.user, res.session
    assert session is not None and session.user.id == user.id
    assert user.email == email  # stored lower-cased
    assert user.aud == "authenticated" and user.role == "authenticated"
    assert user.email_confirmed_at is not None and user.confirmed_at is not None
    assert user.is_anonymous is False
    assert user.user_metadata["name"] == "Ada Lovelace"
    assert user.user_metadata["plan"] == "free"
    assert user.user_metadata.get("email_verified") is True
    assert user.app_metadata == {"provider": "email", "providers": ["email"]}
    [identity] = user.identities
    assert identity.provider == "email"
    assert identity.id == user.id and identity.user_id == user.id
    assert identity.identity_data["email"] == email
    assert identity.identity_data["sub"] == user.id

    assert session.token_type == "bearer"
    assert 3590 <= session.expires_in <= 3600
    assert before + 3590 <= session.expires_at <= int(time.time()) + 3600
    assert REFRESH_TOKEN_SHAPE.match(session.refresh_token)
    assert client.get_session().access_token == session.access_token

    claims = client.get_claims()["claims"]
    assert claims["sub"] == user.id
    assert claims["email"] == email and claims["phone"] == ""
    assert claims["aud"] == "authenticated" and claims["role"] == "authenticated"
    assert "iss" not in claims  # no GOTRUE_JWT_ISSUER: upstream leaves iss out
    assert claims["exp"] == session.expires_at
    assert claims["aal"] == "aal1"
    assert [entry["method"] for entry in claims["amr"]] == ["password"]
    assert claims["is_anonymous"] is False
    uuid.UUID(claims["session_id"])
    assert claims["user_metadata"]["name"] == "Ada Lovelace"


def test_sign_in_with_password_opens_another_session(server, client_for):
    first = signed_up(client_for(server), name="Grace")
    email = first.user.email

    other = client_for(server)
    res = other.sign_in_with_password({"email": email.upper(), "password": PASSWORD})
    assert res.session is not None
    assert res.user.id == first.user.id
    assert res.user.last_sign_in_at is not None
    assert res.session.refresh_token != first.session.refresh_token
    assert REFRESH_TOKEN_SHAPE.match(res.session.refresh_token)

    me = other.get_user().user
    assert me.id == first.user.id and me.email == email
    assert me.user_metadata["name"] == "Grace"
    assert [i.provider for i in me.identities] == ["email"]

    sessions = {c.get_claims(jwt=s.access_token)["claims"]["session_id"]
                for c, s in ((other, first.session), (other, res.session))}
    assert len(sessions) == 2, "each sign-in must open its own session"


def test_duplicate_sign_up_is_refused(server, client_for):
    client = client_for(server)
    email = signed_up(client).user.email
    with pytest.raises(AuthApiError) as excinfo:
        client_for(server).sign_up({"email": email, "password": "another-password-2"})
    assert api_error(excinfo) == (422, "user_already_exists", "User already registered")


def test_wrong_password_and_unknown_email_are_the_same_invalid_credentials(server, client_for):
    client = client_for(server)
    email = signed_up(client).user.email
    for credentials in ({"email": email, "password": "not-the-password"},
                        {"email": new_email(), "password": PASSWORD}):
        with pytest.raises(AuthApiError) as excinfo:
            client_for(server).sign_in_with_password(credentials)
        assert api_error(excinfo) == (400, "invalid_credentials", "Invalid login credentials")


def test_short_password_is_a_weak_password(server, client_for):
    with pytest.raises(AuthWeakPasswordError) as excinfo:
        client_for(server).sign_up({"email": new_email(), "password": "abc12"})
    err = excinfo.value
    assert (err.status, err.code, err.reasons) == (422, "weak_password", ["length"])
    assert "at least 6 characters" in err.message


def test_required_characters_give_weak_password_reasons(make_server, backend, client_for):
    server = make_server(backend, GOTRUE_PASSWORD_REQUIRED_CHARACTERS=(
        "abcdefghijklmnopqrstuvwxyz:ABCDEFGHIJKLMNOPQRSTUVWXYZ:0123456789"))
    client = client_for(server)
    for password, reasons in (("alllowercaseletters", {"characters"}),
                              ("ab1", {"length", "characters"})):
        with pytest.raises(AuthWeakPasswordError) as excinfo:
            client.sign_up({"email": new_email(), "password": password})
        assert (excinfo.value.status, excinfo.value.code) == (422, "weak_password")
        assert set(excinfo.value.reasons) == reasons
    res = client.sign_up({"email": new_email(), "password": "Good-Password-1"})
    assert res.session is not None


# --- the user ----------------------------------------------------------------------------


def test_update_user_merges_metadata(server, client_for):
    client = client_for(server)
    signed_up(client, name="Ada", plan="free")

    user = client.update_user({"data": {"plan": "pro", "theme": "dark", "name": None}}).user
    assert user.user_metadata["plan"] == "pro"
    assert user.user_metadata["theme"] == "dark"
    assert "name" not in user.user_metadata  # null deletes the key
    assert user.user_metadata.get("email_verified") is True  # untouched keys stay

    assert client.get_user().user.user_metadata == user.user_metadata
    client.refresh_session()
    claims = client.get_claims()["claims"]
    assert claims["user_metadata"]["plan"] == "pro" and "name" not in claims["user_metadata"]


def test_update_password_changes_credentials_and_ends_the_other_sessions(server, client_for):
    client = client_for(server)
    email = signed_up(client).user.email
    elsewhere = client_for(server).sign_in_with_password(
        {"email": email, "password": PASSWORD}).session
    new_password = "a-brand-new-password-9"

    user = client.update_user({"password": new_password}).user
    assert user.email == email

    probe = client_for(server)
    assert probe.sign_in_with_password({"email": email, "password": new_password}).session
    with pytest.raises(AuthApiError) as excinfo:
        probe.sign_in_with_password({"email": email, "password": PASSWORD})
    assert api_error(excinfo) == (400, "invalid_credentials", "Invalid login credentials")

    # The session that changed the password lives on ...
    assert client.get_user().user.id == user.id
    assert client.refresh_session().session is not None
    # ... every other session of the user is gone.
    with pytest.raises(AuthApiError) as excinfo:
        probe.get_user(jwt=elsewhere.access_token)
    assert excinfo.value.status == 403 and excinfo.value.code == "session_not_found"
    with pytest.raises(AuthApiError) as excinfo:
        probe.refresh_session(elsewhere.refresh_token)
    assert excinfo.value.status == 400 and excinfo.value.code == "refresh_token_not_found"


def test_update_password_refuses_the_same_or_a_weak_password(server, client_for):
    client = client_for(server)
    signed_up(client)
    with pytest.raises(AuthApiError) as excinfo:
        client.update_user({"password": PASSWORD})
    assert api_error(excinfo) == (
        422, "same_password", "New password should be different from the old password.")
    with pytest.raises(AuthWeakPasswordError) as excinfo:
        client.update_user({"password": "short"})
    assert (excinfo.value.status, excinfo.value.reasons) == (422, ["length"])


# --- refresh -----------------------------------------------------------------------------


def test_refresh_rotates_and_reuse_of_an_old_token_ends_the_session(make_server, backend,
                                                                     client_for):
    server = make_server(backend, GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL="0")
    client = client_for(server)
    start = signed_up(client)
    t0, user_id = start.session.refresh_token, start.user.id
    session_id = client.get_claims()["claims"]["session_id"]

    first = client.refresh_session(t0)
    t1 = first.session.refresh_token
    assert t1 != t0 and REFRESH_TOKEN_SHAPE.match(t1)
    assert first.user.id == user_id
    assert client.get_claims()["claims"]["session_id"] == session_id

    # The client lost that answer and retries with t0: it gets the same t1 back.
    assert client.refresh_session(t0).session.refresh_token == t1

    second = client.refresh_session(t1)
    t2 = second.session.refresh_token
    assert t2 not in (t0, t1)

    # t0 is now two rotations old: presenting it is reuse, and the session's tokens die.
    for token in (t0, t2):
        with pytest.raises(AuthApiError) as excinfo:
            client.refresh_session(token)
        assert api_error(excinfo) == (
            400, "refresh_token_already_used", "Invalid Refresh Token: Already Used")
    # The session itself stays, so its access token still works until it expires.
    assert client.get_user(jwt=second.session.access_token).user.id == user_id


def test_refresh_within_the_reuse_interval_is_forgiven(make_server, backend, client_for):
    server = make_server(backend, GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL="10")
    client = client_for(server)
    t0 = signed_up(client).session.refresh_token
    t1 = client.refresh_session(t0).session.refresh_token
    t2 = client.refresh_session(t1).session.refresh_token

    t3 = client.refresh_session(t0).session.refresh_token
    assert t3 not in (t0, t1, t2)
    assert client.refresh_session(t2).session.refresh_token not in (t0, t1, t2, t3)


def test_refresh_with_unknown_or_malformed_tokens(server, client_for):
    client = client_for(server)
    with pytest.raises(AuthApiError) as excinfo:
        client.refresh_session("abcdefghijkl")
    assert api_error(excinfo) == (
        400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
    with pytest.raises(AuthApiError) as excinfo:
        client.refresh_session("short")
    assert api_error(excinfo) == (400, "validation_failed", "Refresh token is not valid")


# --- sign-out ----------------------------------------------------------------------------


@pytest.mark.parametrize("scope, survivors", [
    ("local", {"b", "c"}),
    ("others", {"a"}),
    ("global", set()),
])
def test_sign_out_scopes(server, client_for, scope, survivors):
    devices = {"a": client_for(server)}
    email = signed_up(devices["a"]).user.email
    for name in ("b", "c"):
        devices[name] = client_for(server)
        devices[name].sign_in_with_password({"email": email, "password": PASSWORD})
    sessions = {name: c.get_session() for name, c in devices.items()}

    devices["a"].sign_out({"scope": scope})

    assert (devices["a"].get_session() is not None) == ("a" in survivors)
    probe = client_for(server)
    for name, session in sessions.items():
        if name in survivors:
            refreshed = devices[name].refresh_session().session
            assert refreshed.refresh_token != session.refresh_token
            assert devices[name].get_user().user.email == email
            continue
        with pytest.raises(AuthApiError) as excinfo:
            probe.get_user(jwt=session.access_token)
        assert (excinfo.value.status, excinfo.value.code) == (403, "session_not_found"), name
        with pytest.raises(AuthApiError) as excinfo:
            probe.refresh_session(session.refresh_token)
        assert (excinfo.value.status, excinfo.value.code) == (400, "refresh_token_not_found"), name

    # Signing in again after any sign-out works as usual.
    assert probe.sign_in_with_password({"email": email, "password": PASSWORD}).session


# --- JWKS and get_claims -----------------------------------------------------------------


def b64int(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def private_jwk(alg: str, kid: str) -> tuple[dict, dict]:
    """A fresh private JWK that may sign, and the public members the JWKS must publish."""
    if alg == "ES256":
        numbers = ec.generate_private_key(ec.SECP256R1()).private_numbers()
        public = {"kty": "EC", "crv": "P-256",
                  "x": b64url(numbers.public_numbers.x.to_bytes(32, "big")),
                  "y": b64url(numbers.public_numbers.y.to_bytes(32, "big"))}
        private = {"d": b64url(numbers.private_value.to_bytes(32, "big"))}
    else:
        numbers = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers()
        public = {"kty": "RSA", "n": b64int(numbers.public_numbers.n),
                  "e": b64int(numbers.public_numbers.e)}
        private = {"d": b64int(numbers.d), "p": b64int(numbers.p), "q": b64int(numbers.q),
                   "dp": b64int(numbers.dmp1), "dq": b64int(numbers.dmq1),
                   "qi": b64int(numbers.iqmp)}
    jwk = {**public, **private, "kid": kid, "alg": alg, "key_ops": ["sign", "verify"]}
    return jwk, {**public, "kid": kid, "alg": alg, "use": "sig", "key_ops": ["verify"]}


def recording_http_client(seen: list[tuple[str, str]]) -> httpx.Client:
    return httpx.Client(event_hooks={"request": [lambda r: seen.append((r.method, r.url.path))]})


def test_hs256_only_server_publishes_no_keys(server, client_for):
    res = httpx.get(f"{server.url}/.well-known/jwks.json")
    assert res.status_code == 200 and res.json() == {"keys": []}

    seen: list[tuple[str, str]] = []
    client = client_for(server, recording_http_client(seen))
    user = signed_up(client).user
    seen.clear()
    got = client.get_claims()
    assert got["headers"]["alg"] == "HS256" and "kid" not in got["headers"]
    assert got["claims"]["sub"] == user.id
    assert seen == [("GET", "/user")], "an HS256 token is checked by the server, not locally"

    header, payload, signature = client.get_session().access_token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["role"] = "service_role"
    with pytest.raises(AuthApiError) as excinfo:
        client.get_claims(jwt=f"{header}.{b64url(json.dumps(forged).encode())}.{signature}")
    assert (excinfo.value.status, excinfo.value.code) == (403, "bad_jwt")


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_asymmetric_keys_are_published_and_get_claims_verifies_locally(make_server, backend,
                                                                      client_for, jwt_secret, alg):
    kid = f"test-{alg.lower()}-{uuid.uuid4().hex[:8]}"
    signing_key, published = private_jwk(alg, kid)
    legacy = {"kty": "oct", "k": b64url(jwt_secret.encode()), "kid": "legacy-hs256",
              "alg": "HS256", "key_ops": ["verify"]}
    server = make_server(backend, GOTRUE_JWT_KEYS=json.dumps([signing_key, legacy]))

    res = httpx.get(f"{server.url}/.well-known/jwks.json")
    assert res.status_code == 200
    assert res.headers["Cache-Control"] == "public, max-age=600"
    [key] = res.json()["keys"]  # the oct key is never published
    assert {name: key.get(name) for name in published} == published
    assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key), "private members leaked"

    seen: list[tuple[str, str]] = []
    client = client_for(server, recording_http_client(seen))
    user = signed_up(client).user
    assert client.get_user().user.id == user.id  # the server accepts its own tokens

    seen.clear()
    got = client.get_claims()
    assert (got["headers"]["alg"], got["headers"]["kid"]) == (alg, kid)
    assert got["claims"]["sub"] == user.id and got["claims"]["aud"] == "authenticated"
    assert seen == [("GET", "/.well-known/jwks.json")], "verified locally, without GET /user"
    seen.clear()
    assert client.get_claims()["claims"]["sub"] == user.id
    assert seen == [], "the key set is cached"

    header, payload, signature = client.get_session().access_token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["role"] = "service_role"
    with pytest.raises(AuthInvalidJwtError):
        client.get_claims(jwt=f"{header}.{b64url(json.dumps(forged).encode())}.{signature}")


# --- the async client --------------------------------------------------------------------


def test_async_client_core_flow(server):
    async def flow() -> None:
        client = AsyncGoTrueClient(url=server.url, auto_refresh_token=False,
                                   persist_session=False,
                                   headers={"apikey": server.anon_key})
        try:
            email = new_email()
            res = await client.sign_up({"email": email, "password": PASSWORD,
                                        "options": {"data": {"via": "async"}}})
            assert res.session is not None and res.user.user_metadata["via"] == "async"
            await client.sign_out({"scope": "local"})
            assert await client.get_session() is None

            res = await client.sign_in_with_password({"email": email, "password": PASSWORD})
            assert (await client.get_user()).user.id == res.user.id
            refreshed = await client.refresh_session()
            assert refreshed.session.refresh_token != res.session.refresh_token
            await client.sign_out()
            with pytest.raises(AuthApiError) as excinfo:
                await client.get_user(jwt=refreshed.session.access_token)
            assert (excinfo.value.status, excinfo.value.code) == (403, "session_not_found")
        finally:
            await client.close()

    asyncio.run(flow())
