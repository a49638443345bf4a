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
    server = keycloak_server(make_server, backend, idp, GOTRUE_INTERNAL_HTTP_TIMEOUT="1s")
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
