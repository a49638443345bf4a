"""POST /token?grant_type=id_token (EXTERNAL.md §4) with ID tokens the local OpenID provider
(tests/idp, npm oidc-provider, as the keycloak provider) issued: over HTTP, through auth-js's
signInWithIdToken / linkIdentity and supabase_auth's sign_in_with_id_token, on both backends.
The request checks and provider resolution that need no provider run against the shared server."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import timedelta

import httpx
import pytest
from supabase_auth import SyncGoTrueClient
from supabase_auth.errors import AuthApiError

from gotrue_lite import clock

from idp import idp  # noqa: F401 - fixture
from test_clients_js import node, run_js  # noqa: F401 - fixture
from helpers import (  # noqa: F401 - shared is a fixture
    V2, assert_both_envelopes, assert_error, bearer, claims_of, new_email, route_request as request, rows,
    shared, signup_session,
)

CLIENT = "gotrue-app"
NONCE = "raw-nonce-1234"
HASHED = hashlib.sha256(NONCE.encode()).hexdigest()


def fake_id_token(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


# --- request checks and provider resolution (no provider needed) --------------------------------


@pytest.fixture(scope="module")
def user(shared):
    return signup_session(shared, new_email("idt"))


@pytest.mark.parametrize("body, status, code, message", [
    ({"id_token": "x.y.z", "provider": "google"}, 400, "provider_disabled",
     'Provider (issuer "https://accounts.google.com") is not enabled'),
    ({"id_token": "x.y.z", "client_id": "c", "issuer": "https://accounts.google.com"}, 400, "provider_disabled",
     'Provider (issuer "https://accounts.google.com") is not enabled'),
    ({"id_token": fake_id_token({"iss": "https://appleid.apple.com"}), "provider": "apple"}, 400,
     "provider_disabled", 'Provider (issuer "https://appleid.apple.com") is not enabled'),
    ({"id_token": "not-a-jwt", "provider": "apple"}, 400, "validation_failed",
     "Unable to detect issuer in ID token for Apple provider"),
    ({"id_token": fake_id_token({"iss": "https://evil.example"}), "provider": "apple"}, 400, "validation_failed",
     "Detected ID token issuer is not an Apple ID token issuer"),
    ({"id_token": fake_id_token({"iss": "https://account.apple.com"}), "provider": "apple",
      "issuer": "https://appleid.apple.com"}, 400, "validation_failed", "Provided issuer does not match ID token issuer"),
    ({"id_token": fake_id_token({"iss": "https://sts.windows.net/tenant/"}), "provider": "azure"}, 400,
     "provider_disabled", 'Provider (issuer "https://sts.windows.net/tenant/") is not enabled'),
    ({"id_token": fake_id_token({"iss": "https://evil.example/v2.0"}), "provider": "azure"}, 400,
     "validation_failed", "Detected ID token issuer is not an Azure ID token issuer"),
    ({"id_token": "x.y.z", "provider": "keycloak"}, 400, "provider_disabled", 'Provider (issuer "") is not enabled'),
    ({"id_token": "x.y.z", "provider": "facebook"}, 400, "provider_disabled",
     'Provider (issuer "https://www.facebook.com") is not enabled'),
    ({"id_token": "x.y.z", "provider": "custom:acme"}, 400, "validation_failed",
     'Custom provider "custom:acme" not found'),
    ({"id_token": "x.y.z", "provider": "github"}, 400, "validation_failed", 'Custom OIDC provider "github" not allowed'),
    ({"id_token": "x.y.z", "client_id": "c", "issuer": "https://idp.example"}, 400, "validation_failed",
     'Custom OIDC provider "" not allowed'),
    ({"id_token": "x.y.z", "provider": "google", "link_identity": "yes"}, 400, "bad_json",
     "Could not parse request body as JSON: link_identity must be a boolean"),
])
def test_provider_resolution_errors(shared, body, status, code, message):
    assert_both_envelopes(shared, "POST", "/token?grant_type=id_token", status, code, message, json=body)


@pytest.mark.parametrize("body, description", [
    ({}, "id_token required"),
    ({"id_token": "x.y.z"}, "provider or client_id and issuer required"),
    ({"id_token": "x.y.z", "client_id": "abc"}, "provider or client_id and issuer required"),
    ({"id_token": "x.y.z", "provider": "google", "link_identity": True},
     "Linking requires a valid user access token in Authorization"),
])
def test_request_checks_answer_oauth_style_errors(shared, body, description):
    for headers in ({}, V2):
        resp = request(shared, "POST", "/token?grant_type=id_token", json=body, headers=headers)
        assert resp.status_code == 400, resp.text
        assert resp.json() == {"error": "invalid request", "error_description": description}
    assert resp.headers.get("X-Supabase-Api-Version") == "2024-01-01"


def test_link_identity_authenticates_the_caller(shared, user):
    body = {"id_token": "x.y.z", "provider": "google", "link_identity": True}
    assert_error(request(shared, "POST", "/token?grant_type=id_token", token="junk", json=body), 403, "bad_jwt")
    assert_both_envelopes(shared, "POST", "/token?grant_type=id_token", 400, "provider_disabled",
                          'Provider (issuer "https://accounts.google.com") is not enabled',
                          token=user["access_token"], json=body)


def test_form_body(shared):
    resp = request(shared, "POST", "/token", content=b"grant_type=id_token&id_token=a.b.c&provider=kakao",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(resp, 400, "provider_disabled", 'Provider (issuer "https://kauth.kakao.com") is not enabled')


# --- against the local OpenID provider ------------------------------------------------------------


@pytest.fixture
def keycloak(make_server, backend, idp):
    """A server whose keycloak provider is the local OpenID provider (two accepted client ids)."""
    return make_server(backend, GOTRUE_EXTERNAL_KEYCLOAK_ENABLED="true",
                       GOTRUE_EXTERNAL_KEYCLOAK_CLIENT_ID=f"{CLIENT},second-app",
                       GOTRUE_EXTERNAL_KEYCLOAK_SECRET="unused", GOTRUE_EXTERNAL_KEYCLOAK_URL=idp.issuer,
                       GOTRUE_EXTERNAL_KEYCLOAK_REDIRECT_URI="http://localhost/callback")


@pytest.fixture
def moved_clock():
    saved = clock.offset

    def move(seconds: float) -> None:
        clock.offset += timedelta(seconds=seconds)
    yield move
    clock.offset = saved


def grant(server, body: dict, **kwargs) -> httpx.Response:
    return httpx.post(f"{server.url}/token?grant_type=id_token", json=body, **kwargs)


def bad(resp: httpx.Response, description: str, error: str = "invalid request") -> None:
    assert resp.status_code == 400, resp.text
    assert resp.json() == {"error": error, "error_description": description}


def person(**extra) -> dict:
    return {"email": new_email("kc"), "email_verified": True, "name": "Kay Cloak", **extra}


def test_sign_in_with_an_id_token(keycloak, idp):
    claims = person()
    sub = f"kc-{uuid.uuid4().hex[:8]}"
    token = idp.mint_id_token(CLIENT, sub=sub, nonce=HASHED, claims=claims)
    resp = grant(keycloak, {"provider": "keycloak", "id_token": token, "nonce": NONCE})
    assert resp.status_code == 200, resp.text
    session = resp.json()
    user = session["user"]
    assert user["email"] == claims["email"] and user["email_confirmed_at"]
    assert user["app_metadata"] == {"provider": "keycloak", "providers": ["keycloak"]}
    [identity] = user["identities"]
    assert identity["provider"] == "keycloak" and identity["id"] == sub
    assert identity["identity_data"]["email"] == claims["email"] and identity["identity_data"]["name"] == "Kay Cloak"
    assert [m["method"] for m in claims_of(session["access_token"])["amr"]] == ["oauth"]
    # again (the second accepted client id, an ES256 key): the same user
    again = grant(keycloak, {"provider": "keycloak", "id_token": idp.mint_id_token(
        ["someone-else", "second-app"], sub=sub, claims=claims, key="es256")})
    assert again.status_code == 200, again.text
    assert again.json()["user"]["id"] == user["id"]
    # by issuer instead of provider name
    by_issuer = grant(keycloak, {"issuer": idp.issuer, "client_id": "x",
                                 "id_token": idp.mint_id_token(CLIENT, sub=sub, claims=claims)})
    assert by_issuer.status_code == 200 and by_issuer.json()["user"]["id"] == user["id"]


def test_refused_tokens_write_nothing(keycloak, idp):
    claims = person()
    cases = [
        ({"aud": "someone-else"}, "Unacceptable audience in id_token: [someone-else]"),
        ({"aud": ["a", "b"]}, "Unacceptable audience in id_token: [a b]"),
        ({"aud": CLIENT, "expires_in": -60}, "Bad ID token"),
        ({"aud": CLIENT, "key": "unknown"}, "Bad ID token"),
        ({"aud": CLIENT, "kid": "no-such-kid"}, "Bad ID token"),
        ({"aud": CLIENT, "iss": "https://evil.example/realms/test"}, "Bad ID token"),
        ({"aud": CLIENT, "alg": "none"}, "Bad ID token"),
        ({"aud": CLIENT, "nbf": 32503680000}, "Bad ID token"),
    ]
    for spec, description in cases:
        aud = spec.pop("aud")
        bad(grant(keycloak, {"provider": "keycloak", "id_token": idp.mint_id_token(aud, claims=claims, **spec)}),
            description)
    # a changed payload under the original signature
    head, payload, sig = idp.mint_id_token(CLIENT, claims=claims).split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "==="))
    forged["sub"] = "admin"
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    bad(grant(keycloak, {"provider": "keycloak", "id_token": f"{head}.{forged_payload}.{sig}"}), "Bad ID token")
    assert rows(keycloak, "SELECT id FROM users") == []


def test_nonce_rules(keycloak, idp):
    claims = person()
    with_nonce = idp.mint_id_token(CLIENT, nonce=HASHED, claims=claims)
    both = "Passed nonce and nonce in id_token should either both exist or not."
    bad(grant(keycloak, {"provider": "keycloak", "id_token": with_nonce}), both)
    bad(grant(keycloak, {"provider": "keycloak", "id_token": idp.mint_id_token(CLIENT, claims=claims),
                         "nonce": NONCE}), both)
    bad(grant(keycloak, {"provider": "keycloak", "id_token": with_nonce, "nonce": "other"}), "Nonces mismatch",
        error="invalid nonce")
    # the token must carry the hash, not the raw value
    raw = idp.mint_id_token(CLIENT, nonce=NONCE, claims=claims)
    bad(grant(keycloak, {"provider": "keycloak", "id_token": raw, "nonce": NONCE}), "Nonces mismatch",
        error="invalid nonce")
    assert grant(keycloak, {"provider": "keycloak", "id_token": with_nonce, "nonce": NONCE}).status_code == 200


def test_nonce_check_can_be_skipped(make_server, backend, idp):
    server = make_server(backend, GOTRUE_EXTERNAL_KEYCLOAK_ENABLED="true", GOTRUE_EXTERNAL_KEYCLOAK_CLIENT_ID=CLIENT,
                         GOTRUE_EXTERNAL_KEYCLOAK_URL=idp.issuer, GOTRUE_EXTERNAL_KEYCLOAK_SKIP_NONCE_CHECK="true")
    token = idp.mint_id_token(CLIENT, nonce="whatever", claims=person())
    assert grant(server, {"provider": "keycloak", "id_token": token}).status_code == 200


def test_at_hash_rules(keycloak, idp):
    claims = person()
    token = idp.mint_id_token(CLIENT, claims=claims, access_token="provider-access-1")
    bad(grant(keycloak, {"provider": "keycloak", "id_token": token, "access_token": "another"}), "Bad ID token")
    assert grant(keycloak, {"provider": "keycloak", "id_token": token,
                            "access_token": "provider-access-1"}).status_code == 200
    # at_hash without access_token: accepted; access_token without at_hash: ignored
    assert grant(keycloak, {"provider": "keycloak", "id_token": token}).status_code == 200
    plain = idp.mint_id_token(CLIENT, claims=claims)
    assert grant(keycloak, {"provider": "keycloak", "id_token": plain, "access_token": "x"}).status_code == 200


def test_a_rotated_key_is_picked_up(keycloak, idp, moved_clock):
    claims = person()
    assert grant(keycloak, {"provider": "keycloak", "id_token": idp.mint_id_token(CLIENT, claims=claims)}).status_code == 200
    jwks_uri = httpx.get(f"{idp.issuer}/.well-known/openid-configuration").json()["jwks_uri"]
    if "rs-next" not in httpx.get(jwks_uri).text:  # the idp is shared: another test may have rotated
        # the next key is not published yet: refused
        bad(grant(keycloak, {"provider": "keycloak",
                             "id_token": idp.mint_id_token(CLIENT, claims=claims, key="next")}), "Bad ID token")
    idp.rotate()
    moved_clock(11)  # past the key set's refetch limit
    resp = grant(keycloak, {"provider": "keycloak", "id_token": idp.mint_id_token(CLIENT, claims=claims, key="next")})
    assert resp.status_code == 200, resp.text


def test_unverified_email_and_disabled_provider(make_server, backend, idp):
    # without autoconfirm, an unverified provider email never takes over an account with that address
    server = make_server(backend, GOTRUE_MAILER_AUTOCONFIRM="false", GOTRUE_EXTERNAL_KEYCLOAK_ENABLED="true",
                         GOTRUE_EXTERNAL_KEYCLOAK_CLIENT_ID=CLIENT, GOTRUE_EXTERNAL_KEYCLOAK_URL=idp.issuer)
    address = new_email("victim")
    victim = httpx.post(f"{server.url}/admin/users", headers=bearer(server.service_role_key),
                        json={"email": address, "password": "correct-horse-9", "email_confirm": True}).json()
    token = idp.mint_id_token(CLIENT, claims={"email": address, "email_verified": False})
    resp = grant(server, {"provider": "keycloak", "id_token": token})
    # upstream: a new account that must verify its email first (provider_email_needs_verification)
    assert_error(resp, 422, "provider_email_needs_verification",
                 "Unverified email with keycloak. Verify the email with keycloak in order to sign in")
    [row] = rows(server, "SELECT count(*) AS n FROM identities WHERE user_id = $1", victim["id"])
    assert row["n"] == 1
    off = make_server(backend, GOTRUE_EXTERNAL_KEYCLOAK_CLIENT_ID=CLIENT, GOTRUE_EXTERNAL_KEYCLOAK_URL=idp.issuer)
    assert_error(grant(off, {"provider": "keycloak", "id_token": token}), 400, "provider_disabled",
                 f'Provider (issuer "{idp.issuer}") is not enabled')


def test_allowed_issuers_fallback_uses_the_issuer_as_provider(make_server, backend, idp):
    server = make_server(backend, GOTRUE_EXTERNAL_ALLOWED_ID_TOKEN_ISSUERS=idp.issuer)
    claims = person()
    token = idp.mint_id_token("the-apps-client", claims=claims)
    bad(grant(server, {"client_id": "other", "issuer": idp.issuer, "id_token": token}),
        "Unacceptable audience in id_token: [the-apps-client]")
    resp = grant(server, {"client_id": "the-apps-client", "issuer": idp.issuer, "id_token": token})
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["identities"][0]["provider"] == idp.issuer


def test_link_identity_with_an_id_token(keycloak, idp):
    owner = signup_session(keycloak, new_email("owner"))
    token = idp.mint_id_token(CLIENT, sub=f"link-{uuid.uuid4().hex[:6]}", claims=person())
    resp = grant(keycloak, {"provider": "keycloak", "id_token": token, "link_identity": True},
                 headers=bearer(owner["access_token"]))
    assert resp.status_code == 200, resp.text
    linked = resp.json()["user"]
    assert linked["id"] == owner["user"]["id"]
    assert sorted(i["provider"] for i in linked["identities"]) == ["email", "keycloak"]
    # the same identity again
    again = grant(keycloak, {"provider": "keycloak", "id_token": token, "link_identity": True},
                  headers=bearer(owner["access_token"]))
    assert_error(again, 422, "identity_already_exists")


# --- the published clients ------------------------------------------------------------------------


def test_auth_js_sign_in_with_id_token(node, keycloak, idp):
    claims = person()
    env = {
        "GL_ID_TOKEN": idp.mint_id_token(CLIENT, sub=f"js-{uuid.uuid4().hex[:6]}", nonce=HASHED, claims=claims),
        "GL_NONCE": NONCE,
        "GL_ID_TOKEN_WRONG_AUD": idp.mint_id_token("not-this-app", claims=claims),
        "GL_ID_TOKEN_LINK": idp.mint_id_token(CLIENT, sub=f"js-link-{uuid.uuid4().hex[:6]}", claims=person()),
    }
    run = run_js(node, "auth_js.mjs", "id_token", keycloak, env)
    session = run.ok("signInWithIdToken")["session"]
    assert session["user"]["email"] == claims["email"]
    assert [i["provider"] for i in run.ok("getUserIdentities")["identities"]] == ["keycloak"]
    for step in ("signInWithIdToken_wrong_audience", "signInWithIdToken_nonce_mismatch"):
        error = run[step]["error"]
        assert error is not None and error["status"] == 400, run[step]
    assert run.ok("linkIdentity_id_token")["user"]["id"] == session["user"]["id"]
    assert [i["provider"] for i in run.ok("getUserIdentities_linked")["identities"]] == ["keycloak", "keycloak"]


def test_supabase_auth_sign_in_with_id_token(keycloak, idp):
    claims = person()
    client = SyncGoTrueClient(url=keycloak.url, headers={"apikey": keycloak.anon_key},
                              auto_refresh_token=False, persist_session=True)
    token = idp.mint_id_token(CLIENT, nonce=HASHED, claims=claims, access_token="at-1")
    result = client.sign_in_with_id_token({"provider": "keycloak", "token": token, "nonce": NONCE,
                                           "access_token": "at-1"})
    assert result.user.email == claims["email"] and result.session.access_token
    with pytest.raises(AuthApiError) as info:
        client.sign_in_with_id_token({"provider": "keycloak", "token": idp.mint_id_token("nope", claims=claims)})
    assert info.value.status == 400
