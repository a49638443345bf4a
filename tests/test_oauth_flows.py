"""Whole OAuth round trips on both stores: gotrue-lite's /authorize, the local OpenID provider
(as keycloak), the callback, then the app's code exchange or the implicit fragment; and what
goes wrong on the way (state, PKCE verifier, provider errors and timeouts)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import urlencode

import httpx

from helpers import new_email, rows
from idp import idp  # noqa: F401 - fixture
from oauth_flow import SITE, browse, fragment_of, keycloak_server, query_of


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _authorize(server, sub: str, **params) -> str:
    query = {"provider": "keycloak", "scopes": "openid", "login_hint": sub, **params}
    return f"{server.url}/auth/v1/authorize?{urlencode(query)}"


def test_implicit_flow_signs_in_with_a_session_in_the_fragment(make_server, backend, idp):
    server = keycloak_server(make_server, backend, idp)
    email = new_email("kc")
    sub = idp.add_user(email=email, email_verified=True, name="Kay Implicit")
    landed = browse(server, _authorize(server, sub, redirect_to=f"{SITE}/welcome"))
    assert landed.startswith(f"{SITE}/welcome#")
    session = fragment_of(landed)
    assert session["token_type"] == "bearer" and session["sb"] == "" and session["provider_token"]
    assert session["provider_refresh_token"]
    user = httpx.get(f"{server.url}/user", headers={"Authorization": f"Bearer {session['access_token']}"}, timeout=30)
    assert user.status_code == 200, user.text
    body = user.json()
    assert body["email"] == email and body["app_metadata"] == {"provider": "keycloak", "providers": ["keycloak"]}
    assert body["user_metadata"]["full_name"] == "Kay Implicit"
    [identity] = body["identities"]
    assert (identity["provider"], identity["id"]) == ("keycloak", sub)
    assert rows(server, "SELECT count(*) AS n FROM flow_state")[0]["n"] == 0


def test_pkce_flow_gives_a_code_for_the_exchange(make_server, backend, idp):
    server = keycloak_server(make_server, backend, idp)
    sub = idp.add_user(email=new_email("kc"), email_verified=True)
    verifier, challenge = _pkce()
    landed = browse(server, _authorize(server, sub, code_challenge=challenge, code_challenge_method="s256"))
    code = query_of(landed)["code"]
    assert "#" not in landed
    wrong = httpx.post(f"{server.url}/token?grant_type=pkce", json={"auth_code": code, "code_verifier": "x" * 50},
                       timeout=30)
    assert wrong.status_code == 400 and wrong.json()["error_code"] == "bad_code_verifier"
    resp = httpx.post(f"{server.url}/token?grant_type=pkce", json={"auth_code": code, "code_verifier": verifier},
                      timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json()["provider_token"] and resp.json()["provider_refresh_token"]
    again = httpx.post(f"{server.url}/token?grant_type=pkce", json={"auth_code": code, "code_verifier": verifier},
                       timeout=30)
    assert again.status_code == 404 and again.json()["error_code"] == "flow_state_not_found"


def test_redirect_to_outside_the_allow_list_lands_on_the_site(make_server, backend, idp):
    server = keycloak_server(make_server, backend, idp)
    sub = idp.add_user(email=new_email("kc"), email_verified=True)
    landed = browse(server, _authorize(server, sub, redirect_to="https://evil.example/steal"))
    assert landed.startswith(f"{SITE}#access_token=")


def test_replayed_state_is_refused(make_server, backend, idp):
    server = keycloak_server(make_server, backend, idp)
    sub = idp.add_user(email=new_email("kc"), email_verified=True)
    resp = httpx.get(_authorize(server, sub), timeout=30)
    assert resp.status_code == 302
    browse(server, resp.headers["Location"])
    state = query_of(resp.headers["Location"])["state"]
    replay = httpx.get(f"{server.url}/callback?state={state}&code=whatever", timeout=30)
    assert replay.status_code == 303
    assert query_of(replay.headers["Location"])["error_code"] == "bad_oauth_state"


def test_provider_denial_and_failures_redirect_with_upstreams_errors(make_server, backend, idp):
    server = keycloak_server(make_server, backend, idp, GOTRUE_INTERNAL_HTTP_TIMEOUT="1s")  # the hang below
    landed = browse(server, _authorize(server, "nobody-here"))
    assert query_of(landed)["error"] == "access_denied" and "error_code" not in query_of(landed)
    sub = idp.add_user(email=new_email("kc"), email_verified=True)
    with idp.fault("token", status=400, body={"error": "invalid_grant"}):
        landed = browse(server, _authorize(server, sub))
    assert query_of(landed) == {"error": "server_error", "error_code": "unexpected_failure",
                                "error_description": query_of(landed)["error_description"]}
    assert query_of(landed)["error_description"].startswith("Unable to exchange external code: ")
    with idp.fault("userinfo", "hang"):
        landed = browse(server, _authorize(server, sub))
    assert query_of(landed)["error_description"] == "Error getting user profile from external provider"
    assert rows(server, "SELECT count(*) AS n FROM users")[0]["n"] == 0


def test_settings_show_the_enabled_provider(make_server, backend, idp):
    server = keycloak_server(make_server, backend, idp)
    external = httpx.get(f"{server.url}/settings", timeout=30).json()["external"]
    assert external["keycloak"] is True and external["github"] is False


def test_expired_state_is_refused_and_writes_nothing(make_server, backend, idp):
    from datetime import timedelta

    from gotrue_lite import clock

    server = keycloak_server(make_server, backend, idp)
    sub = idp.add_user(email=new_email("kc"), email_verified=True)
    resp = httpx.get(_authorize(server, sub), timeout=30)
    clock.offset = timedelta(minutes=6)  # past GOTRUE_EXTERNAL_FLOW_STATE_EXPIRY_DURATION (300 s)
    landed = browse(server, resp.headers["Location"])
    assert landed.startswith(SITE + "?")
    assert query_of(landed)["error_description"] == "OAuth state has expired"
    assert rows(server, "SELECT count(*) AS n FROM users")[0]["n"] == 0


def test_a_code_for_another_flow_is_refused(make_server, backend, idp):
    server = keycloak_server(make_server, backend, idp)
    sub = idp.add_user(email=new_email("kc"), email_verified=True)
    # the provider's code of flow A, replayed with the state of flow B
    first = httpx.get(_authorize(server, sub), timeout=30).headers["Location"]
    callback = browse(server, first, stop="http://gateway.test/")
    browse(server, callback)
    second = httpx.get(_authorize(server, sub), timeout=30).headers["Location"]
    replay = f"{server.url}/callback?state={query_of(second)['state']}&code={query_of(callback)['code']}"
    landed = browse(server, replay)
    assert query_of(landed)["error_description"].startswith("Unable to exchange external code: ")
    # our PKCE: flow A's auth code with flow B's verifier
    verifier_a, challenge_a = _pkce()
    verifier_b, _ = _pkce()
    code_a = query_of(browse(server, _authorize(server, sub, code_challenge=challenge_a,
                                                code_challenge_method="S256")))["code"]
    resp = httpx.post(f"{server.url}/token?grant_type=pkce", json={"auth_code": code_a, "code_verifier": verifier_b},
                      timeout=30)
    assert resp.status_code == 400 and resp.json()["error_code"] == "bad_code_verifier"


def test_email_takeover_through_an_unverified_provider_email(make_server, backend, idp):
    server = keycloak_server(make_server, backend, idp, GOTRUE_MAILER_AUTOCONFIRM="false",
                             GOTRUE_SMTP_MAX_FREQUENCY="1ms")
    victim = new_email("victim")
    resp = httpx.post(f"{server.url}/admin/users", json={"email": victim, "password": "correct-horse-9",
                                                         "email_confirm": True},
                      headers={"Authorization": f"Bearer {server.service_role_key}"}, timeout=30)
    assert resp.status_code == 200, resp.text
    attacker = idp.add_user(email=victim.upper(), email_verified=False)
    landed = browse(server, _authorize(server, attacker, redirect_to=f"{SITE}/welcome"))
    error = query_of(landed)
    assert (error["error"], error["error_code"]) == ("access_denied", "provider_email_needs_verification")
    assert "access_token" not in landed
    owner = rows(server, "SELECT id FROM users WHERE email = $1", victim)
    assert len(owner) == 1
    identities = rows(server, "SELECT provider FROM identities WHERE user_id = $1", owner[0]["id"])
    assert [row["provider"] for row in identities] == ["email"]


def test_invite_token_must_name_an_invited_user(make_server, backend, idp):
    server = keycloak_server(make_server, backend, idp)
    resp = httpx.get(_authorize(server, "someone", invite_token="nope"), timeout=30)
    assert resp.status_code == 404 and resp.json()["error_code"] == "user_not_found"
    assert rows(server, "SELECT count(*) AS n FROM flow_state")[0]["n"] == 0
