"""The published clients through whole OAuth round trips against the local OpenID provider (as
keycloak), on both stores: auth-js signInWithOAuth (PKCE and implicit), exchangeCodeForSession,
linkIdentity, getUserIdentities; supabase_auth sign_in_with_oauth + exchange_code_for_session."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import httpx

from helpers import new_email
from idp import idp  # noqa: F401 - fixture
from oauth_flow import SITE, browse, fragment_of, keycloak_server, query_of
from test_clients_js import CLIENTS, SCRIPT_TIMEOUT, assert_session, node, run_js  # noqa: F401 - node is a fixture


def _interactive(node_path: str, server, scenario: str, env: dict[str, str]) -> dict[str, dict]:
    """Run an auth_js.mjs scenario whose `<name>_url` steps wait for pytest's browser."""
    full_env = {**os.environ, "GL_ANON_KEY": server.anon_key, "GL_SERVICE_ROLE_KEY": server.service_role_key,
                "GL_TAG": "t" + uuid.uuid4().hex[:10], **env}
    proc = subprocess.Popen([node_path, str(CLIENTS / "auth_js.mjs"), scenario, server.url], cwd=CLIENTS,
                            env=full_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    steps: dict[str, dict] = {}
    try:
        for raw in proc.stdout:
            line = json.loads(raw)
            steps[line["step"]] = line
            if line["step"].endswith("_url") and line["ok"]:
                landed = browse(server, line["data"]["url"])
                proc.stdin.write(landed + "\n")
                proc.stdin.flush()
        proc.wait(timeout=SCRIPT_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read()
    assert "done" in steps and proc.returncode == 0, f"steps {list(steps)[-3:]}: {steps.get('crashed')}\n{stderr[-3000:]}"
    return steps


def _ok(steps: dict, name: str):
    line = steps[name]
    assert line["ok"], f"{name}: {line['error']}"
    return line["data"]


def test_auth_js_oauth_flows(node, make_server, backend, idp):
    server = keycloak_server(make_server, backend, idp, GOTRUE_SECURITY_MANUAL_LINKING_ENABLED="true")
    first, linked, implicit = new_email("pkce"), new_email("linked"), new_email("implicit")
    hints = [idp.add_user(email=first, email_verified=True, name="P K"),
             idp.add_user(email=linked, email_verified=True),
             idp.add_user(email=implicit, email_verified=True)]
    steps = _interactive(node, server, "oauth", {"GL_LOGIN_HINTS": ",".join(hints)})

    url = _ok(steps, "signInWithOAuth_pkce")["url"]
    query = query_of(url)
    assert url.startswith(f"{server.url}/authorize?")
    assert query["provider"] == "keycloak" and query["code_challenge_method"] == "s256"
    assert query["redirect_to"] == f"{SITE}/cb" and query["login_hint"] == hints[0]

    exchanged = _ok(steps, "exchangeCodeForSession")
    claims = assert_session(exchanged["session"], first)
    assert [entry["method"] for entry in claims["amr"]] == ["oauth"]
    assert claims["app_metadata"] == {"provider": "keycloak", "providers": ["keycloak"]}
    assert all(exchanged["provider_tokens"])
    assert steps["exchange_again"]["error"]["code"] in ("flow_state_not_found", "pkce_code_verifier_not_found")
    identities = _ok(steps, "getUserIdentities")["identities"]
    assert [(i["provider"], i["id"]) for i in identities] == [("keycloak", hints[0])]

    link = _ok(steps, "linkIdentity")
    assert link["provider"] == "keycloak" and link["url"].startswith(f"{idp.issuer}/protocol/openid-connect/auth?")
    after = _ok(steps, "exchange_linked")
    assert after["session"]["user"]["email"].startswith("linker-")
    providers = sorted(i["provider"] for i in _ok(steps, "linked_identities")["identities"])
    assert providers == ["email", "keycloak"]

    started = _ok(steps, "signInWithOAuth_implicit")["url"]
    assert "code_challenge" not in query_of(started)
    landed = _ok(steps, "implicit_initialize")
    assert_session(landed["session"], implicit)
    assert landed["user"]["identities"][0]["provider"] == "keycloak"


def test_supabase_auth_oauth_pkce(make_server, backend, idp):
    from supabase_auth import SyncGoTrueClient, SyncMemoryStorage

    server = keycloak_server(make_server, backend, idp)
    address = new_email("py")
    hint = idp.add_user(email=address, email_verified=True)
    auth = SyncGoTrueClient(url=server.url, headers={"apikey": server.anon_key}, flow_type="pkce",
                            storage=SyncMemoryStorage(), auto_refresh_token=False, persist_session=True)
    started = auth.sign_in_with_oauth({"provider": "keycloak", "options": {
        "redirect_to": f"{SITE}/py", "scopes": "openid", "query_params": {"login_hint": hint}}})
    assert started.url.startswith(f"{server.url}/authorize?")
    landed = browse(server, started.url)
    assert landed.startswith(f"{SITE}/py?code=")
    response = auth.exchange_code_for_session({"auth_code": query_of(landed)["code"]})
    assert response.session is not None and response.user.email == address
    assert response.session.provider_token
    assert auth.get_user().user.identities[0].provider == "keycloak"


def test_gotrue_js_v1_get_url_for_provider(node, make_server, backend, idp):
    """@supabase/gotrue-js 1.x builds the /authorize URL itself; a browser following it lands on
    the app with a session in the fragment."""
    server = keycloak_server(make_server, backend, idp)
    address = new_email("v1")
    hint = idp.add_user(email=address, email_verified=True)
    url = run_js(node, "gotrue_v1.mjs", "oauth", server).ok("getUrlForProvider")["url"]
    assert url.startswith(f"{server.url}/authorize?provider=keycloak")
    landed = browse(server, url + "&login_hint=" + hint)
    assert landed.startswith(f"{SITE}/v1#")
    token = fragment_of(landed)["access_token"]
    user = httpx.get(f"{server.url}/user", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    assert user["email"] == address
