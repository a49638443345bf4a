"""The user-created hooks and the access-token hook on the external sign-in paths, as upstream
calls them (external.go, token_oidc.go, hooks.go triggerBeforeUserCreatedExternal): an OAuth
round trip through the local OpenID provider (as keycloak) and the id_token grant with a token
it minted, on both stores, against a hook endpoint that checks Standard Webhooks signatures."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import httpx

from helpers import claims_of, new_email, rows
from hook_server import hook_server  # noqa: F401 - a fixture
from idp import idp  # noqa: F401 - a fixture
from oauth_flow import browse, fragment_of, keycloak_server

CLIENT = "hooked-app"
REFUSAL = {"error": {"http_code": 403, "message": "no external sign-ups from this domain"}}


def _refuse_blocked(payload):
    return REFUSAL if payload["user"]["email"].startswith("blocked") else {}


def _authorize(server, sub: str) -> str:
    query = {"provider": "keycloak", "scopes": "openid", "login_hint": sub}
    return f"{server.url}/auth/v1/authorize?{urlencode(query)}"


def test_oauth_sign_up_asks_the_user_created_hooks_and_a_refusal_writes_nothing(make_server, backend, idp, hook_server):
    hooks = hook_server()
    hooks.answer("before_user_created", _refuse_blocked)
    hooks.answer("after_user_created", lambda payload: {})
    hooks.answer("custom_access_token", lambda payload: {"claims": {**payload["claims"], "tenant": "oauth"}})
    server = keycloak_server(make_server, backend, idp,
                             **hooks.env("before_user_created", "after_user_created", "custom_access_token"))

    blocked = idp.add_user(email=new_email("blocked"), email_verified=True)
    landed = browse(server, _authorize(server, blocked))
    refused = fragment_of(landed) or {}
    assert "access_token" not in landed and "error" in landed, landed
    assert "no external sign-ups from this domain" in landed.replace("+", " ").replace("%20", " "), refused
    assert rows(server, "SELECT count(*) AS n FROM users")[0]["n"] == 0
    assert hooks.calls("after_user_created") == []
    call = hooks.calls("before_user_created")[-1]
    assert call.verified and call.payload["user"]["app_metadata"] == {"provider": "keycloak",
                                                                      "providers": ["keycloak"]}

    email = new_email("kc")
    sub = idp.add_user(email=email, email_verified=True)
    session = fragment_of(browse(server, _authorize(server, sub)))
    assert claims_of(session["access_token"])["tenant"] == "oauth"
    [created] = hooks.calls("after_user_created")
    assert created.payload["user"]["email"] == email
    user_id = claims_of(session["access_token"])["sub"]
    assert created.payload["user"]["id"] == user_id

    # A returning identity creates nobody: neither hook is asked again.
    asked = len(hooks.calls("before_user_created"))
    again = fragment_of(browse(server, _authorize(server, sub)))
    assert claims_of(again["access_token"])["sub"] == user_id
    assert len(hooks.calls("before_user_created")) == asked and len(hooks.calls("after_user_created")) == 1


def test_id_token_sign_up_asks_the_user_created_hooks(make_server, backend, idp, hook_server):
    hooks = hook_server()
    hooks.answer("before_user_created", _refuse_blocked)
    hooks.answer("after_user_created", lambda payload: {})
    server = make_server(backend, GOTRUE_EXTERNAL_KEYCLOAK_ENABLED="true", GOTRUE_EXTERNAL_KEYCLOAK_CLIENT_ID=CLIENT,
                         GOTRUE_EXTERNAL_KEYCLOAK_SECRET="unused", GOTRUE_EXTERNAL_KEYCLOAK_URL=idp.issuer,
                         GOTRUE_EXTERNAL_KEYCLOAK_REDIRECT_URI="http://localhost/callback",
                         **hooks.env("before_user_created", "after_user_created"))

    def grant(email: str) -> httpx.Response:
        token = idp.mint_id_token(CLIENT, sub=f"kc-{uuid.uuid4().hex[:8]}",
                                  claims={"email": email, "email_verified": True})
        return httpx.post(f"{server.url}/token?grant_type=id_token",
                          json={"provider": "keycloak", "id_token": token}, timeout=30)

    refused = grant(new_email("blocked"))
    assert refused.status_code == 403, refused.text
    assert refused.json()["msg"] == "no external sign-ups from this domain"
    assert rows(server, "SELECT count(*) AS n FROM users")[0]["n"] == 0
    assert hooks.calls("after_user_created") == []

    email = new_email("kc")
    signed_in = grant(email)
    assert signed_in.status_code == 200, signed_in.text
    [created] = hooks.calls("after_user_created")
    assert created.payload["user"]["id"] == signed_in.json()["user"]["id"]


# --- Netlify-style webhooks at the external sign-in (netlify/gotrue api/external.go) ----------------


def test_netlify_webhooks_at_an_oauth_sign_up_and_sign_in(make_server, backend, idp):
    from webhook_server import WebhookServer, add_roles

    webhook = WebhookServer().start()
    try:
        webhook.answers["validate"] = lambda received: (
            (403, {"msg": "no"}) if received.user["email"].startswith("blocked") else (200, None))
        webhook.answers["signup"] = add_roles("member")
        webhook.answers["login"] = add_roles("member", "returning")
        server = keycloak_server(make_server, backend, idp, **webhook.env())

        blocked = idp.add_user(email=new_email("blocked"), email_verified=True)
        landed = browse(server, _authorize(server, blocked))
        assert "access_token" not in landed and "error" in landed, landed
        assert rows(server, "SELECT count(*) AS n FROM users")[0]["n"] == 0

        email = new_email("kc")
        sub = idp.add_user(email=email, email_verified=True)
        session = fragment_of(browse(server, _authorize(server, sub)))
        assert claims_of(session["access_token"])["app_metadata"]["roles"] == ["member"]
        assert webhook.events()[-2:] == ["validate", "signup"]
        assert webhook.received[-1].user["email"] == email and webhook.received[-1].claims is not None

        again = fragment_of(browse(server, _authorize(server, sub)))
        assert webhook.events()[-1] == "login"
        assert claims_of(again["access_token"])["app_metadata"]["roles"] == ["member", "returning"]
        assert webhook.refused == []
    finally:
        webhook.stop()
