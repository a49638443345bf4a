"""The admin API for custom OAuth2 / OIDC providers (/admin/custom-providers, EXTERNAL.md §8.1),
its validation and URL safety rule, and GOTRUE_LITE_ALLOW_INSECURE_PROVIDER_URLS, on both backends."""

from __future__ import annotations

import socket

import httpx
import pytest

from helpers import assert_both_envelopes, assert_error, bearer, new_email, rows, signup_session

INSECURE = {"GOTRUE_LITE_ALLOW_INSECURE_PROVIDER_URLS": "true"}


def oauth2(identifier: str = "custom:acme", **extra) -> dict:
    return {"provider_type": "oauth2", "identifier": identifier, "name": "Acme", "client_id": "acme-client",
            "client_secret": "acme-secret", "authorization_url": "https://idp.acme.test/authorize",
            "token_url": "https://idp.acme.test/token", "userinfo_url": "https://idp.acme.test/userinfo", **extra}


def call(server, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, f"{server.url}{path}", headers=bearer(server.service_role_key), **kwargs)


@pytest.fixture
def insecure(make_server, backend):
    return make_server(backend, **INSECURE)


def test_the_switch_and_admin_authentication(make_server, backend):
    server = make_server(backend, GOTRUE_CUSTOM_OAUTH_ENABLED="false")
    user = signup_session(server, new_email())
    for method, path in (("GET", "/admin/custom-providers"), ("POST", "/admin/custom-providers"),
                         ("GET", "/admin/custom-providers/custom:acme"),
                         ("DELETE", "/admin/custom-providers/custom:acme")):
        assert_both_envelopes(server, method, path, 401, "no_authorization",
                              "This endpoint requires a valid Bearer token")
        assert_both_envelopes(server, method, path, 403, "not_admin", "User not allowed", token=user["access_token"])
        assert_both_envelopes(server, method, path, 404, "feature_disabled", "Custom OAuth providers are disabled",
                              token=server.service_role_key)


def test_create_get_list_update_delete(insecure):
    resp = call(insecure, "GET", "/admin/custom-providers")
    assert resp.status_code == 200 and resp.json() == {"providers": []}
    resp = call(insecure, "POST", "/admin/custom-providers", json=oauth2(
        scopes=["read"], attribute_mapping={"name": "display_name", "locale": 7},
        authorization_params={"prompt": "consent"}, custom_claims_allowlist=["groups"]))
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created == {
        "id": created["id"], "provider_type": "oauth2", "identifier": "custom:acme", "name": "Acme",
        "client_id": "acme-client", "acceptable_client_ids": [], "scopes": ["read"], "pkce_enabled": True,
        "attribute_mapping": {"name": "display_name", "locale": 7}, "custom_claims_allowlist": ["groups"],
        "authorization_params": {"prompt": "consent"}, "enabled": True, "email_optional": False,
        "skip_nonce_check": False, "authorization_url": "https://idp.acme.test/authorize",
        "token_url": "https://idp.acme.test/token", "userinfo_url": "https://idp.acme.test/userinfo",
        "created_at": created["created_at"], "updated_at": created["updated_at"],
    }
    assert "client_secret" not in resp.text and "acme-secret" not in resp.text
    assert call(insecure, "GET", "/admin/custom-providers/custom:acme").json() == created
    assert call(insecure, "GET", "/admin/custom-providers?type=oauth2").json() == {"providers": [created]}
    assert call(insecure, "GET", "/admin/custom-providers?type=oidc").json() == {"providers": []}
    assert_error(call(insecure, "GET", "/admin/custom-providers?type=saml"), 400, "validation_failed",
                 "type must be either 'oauth2' or 'oidc'")
    assert_error(call(insecure, "POST", "/admin/custom-providers", json=oauth2()), 400, "conflict",
                 "A custom OAuth provider with this identifier already exists")

    # only what is given changes; "" means unchanged; the secret can be replaced but is never shown
    resp = call(insecure, "PUT", "/admin/custom-providers/custom:acme",
                json={"name": "Acme Corp", "client_id": "", "enabled": False, "client_secret": "new-secret",
                      "token_url": "https://idp.acme.test/v2/token"})
    assert resp.status_code == 200, resp.text
    updated = resp.json()
    assert (updated["name"], updated["client_id"], updated["enabled"], updated["token_url"]) == \
        ("Acme Corp", "acme-client", False, "https://idp.acme.test/v2/token")
    [row] = rows(insecure, "SELECT client_secret FROM custom_oauth_providers")
    assert row["client_secret"] == "new-secret"

    resp = call(insecure, "DELETE", "/admin/custom-providers/custom:acme")
    assert resp.status_code == 204 and resp.content == b""
    for method in ("GET", "PUT", "DELETE"):
        assert_error(call(insecure, method, "/admin/custom-providers/custom:acme", json={}), 404,
                     "custom_provider_not_found", "Custom OAuth provider not found")
    assert_error(call(insecure, "GET", "/admin/custom-providers/acme"), 400, "validation_failed",
                 "identifier must start with 'custom:' prefix, e.g. 'custom:acme'")


@pytest.mark.parametrize("change, message", [
    ({"provider_type": "saml"}, "provider_type must be either 'oauth2' or 'oidc'"),
    ({"identifier": ""}, "identifier is required"),
    ({"identifier": "acme"}, "identifier must start with 'custom:' prefix, e.g. 'custom:acme'"),
    ({"name": ""}, "name is required"),
    ({"client_id": ""}, "client_id is required"),
    ({"client_secret": ""}, "client_secret is required"),
    ({"token_url": ""}, "token_url is required for OAuth2 providers"),
    ({"provider_type": "oidc"}, "issuer is required for OIDC providers"),
    ({"authorization_params": {"redirect_uri": "https://evil.example"}},
     "Cannot override reserved OAuth parameter: redirect_uri"),
    ({"authorization_params": {"prompt": 1}}, 'Authorization parameter "prompt" must be a string'),
    ({"attribute_mapping": {"role": "groups"}}, "Cannot map to protected system field: role"),
    ({"custom_claims_allowlist": ["ok", " "]}, "custom_claims_allowlist entries must be non-empty strings"),
    ({"userinfo_url": "http://idp.acme.test/userinfo"}, "URL must use HTTPS"),
])
def test_create_validation(insecure, change, message):
    assert_error(call(insecure, "POST", "/admin/custom-providers", json=oauth2(**change)), 400,
                 "validation_failed", message)
    assert rows(insecure, "SELECT id FROM custom_oauth_providers") == []


def test_wrong_json_types_are_bad_json(insecure):
    for change in ({"scopes": "openid"}, {"enabled": "yes"}, {"name": 5}, {"attribute_mapping": []}):
        assert_error(call(insecure, "POST", "/admin/custom-providers", json=oauth2(**change)), 400, "bad_json")


@pytest.mark.parametrize("url, message", [
    ("https://localhost/token", "URL cannot point to localhost or loopback addresses"),
    ("https://api.localhost/token", "URL cannot point to localhost or loopback addresses"),
    ("https://127.0.0.1/token", "URL cannot point to localhost or loopback addresses"),
    ("https://127.0.0.2/token", "URL cannot resolve to loopback addresses"),
    ("https://10.1.2.3/token", "URL cannot resolve to private network addresses"),
    ("https://192.168.1.1/token", "URL cannot resolve to private network addresses"),
    ("https://169.254.169.254/latest", "URL cannot resolve to link-local addresses"),
    ("https://[::ffff:7f00:1]/token", "URL cannot resolve to loopback addresses"),
    ("https://no-such-host.invalid/token", "Unable to resolve hostname"),
])
def test_upstreams_url_rule_without_the_flag(server, url, message):
    body = oauth2(authorization_url=url, token_url=url, userinfo_url=url)
    assert_error(call(server, "POST", "/admin/custom-providers", json=body), 400, "validation_failed", message)


def test_the_flag_lets_loopback_hosts_through_but_not_plain_http(insecure):
    resp = call(insecure, "POST", "/admin/custom-providers",
                json=oauth2(token_url="https://127.0.0.1:8443/token", userinfo_url="https://localhost/me"))
    assert resp.status_code == 201, resp.text
    assert_error(call(insecure, "PUT", "/admin/custom-providers/custom:acme",
                      json={"token_url": "http://127.0.0.1/token"}), 400, "validation_failed", "URL must use HTTPS")


def test_quota(make_server, backend):
    server = make_server(backend, GOTRUE_CUSTOM_OAUTH_MAX_PROVIDERS="1", **INSECURE)
    assert call(server, "POST", "/admin/custom-providers", json=oauth2("custom:one")).status_code == 201
    assert_error(call(server, "POST", "/admin/custom-providers", json=oauth2("custom:two")), 400,
                 "over_custom_provider_quota", "Maximum number of custom OAuth/OIDC providers reached")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_oidc_provider_needs_its_discovery_document(insecure):
    issuer = f"https://127.0.0.1:{_closed_port()}/realms/x"
    body = {"provider_type": "oidc", "identifier": "custom:corp", "name": "Corp", "client_id": "c",
            "client_secret": "s", "issuer": issuer, "scopes": ["email"]}
    resp = call(insecure, "POST", "/admin/custom-providers", json=body)
    assert_error(resp, 400, "validation_failed")
    assert resp.json()["msg"].startswith(f'OIDC discovery from "{issuer}/.well-known/openid-configuration" failed')
    assert rows(insecure, "SELECT id FROM custom_oauth_providers") == []


def test_id_token_grant_with_custom_providers(insecure):
    # an OAuth2 (not OIDC) provider, a disabled one, an unknown one
    call(insecure, "POST", "/admin/custom-providers", json=oauth2())
    call(insecure, "POST", "/admin/custom-providers", json=oauth2("custom:off", enabled=False))
    grant = f"{insecure.url}/token?grant_type=id_token"
    assert_error(httpx.post(grant, json={"provider": "custom:acme", "id_token": "a.b.c"}), 400, "validation_failed",
                 'Provider "custom:acme" is not an OIDC provider')
    assert_error(httpx.post(grant, json={"provider": "custom:off", "id_token": "a.b.c"}), 400, "provider_disabled",
                 'Custom provider "custom:off" is disabled')
    assert_error(httpx.post(grant, json={"provider": "custom:nope", "id_token": "a.b.c"}), 400,
                 "validation_failed", 'Custom provider "custom:nope" not found')


# --- the runtime provider built from a row (providers/custom_oauth.py) ----------------------------
# Built from the row object directly, so the local servers here may speak plain http.


def _row(**values):
    from datetime import datetime, timezone

    from gotrue_lite.auth.custom_providers import CustomProvider

    now = datetime.now(timezone.utc)
    base = dict(id="00000000-0000-0000-0000-000000000001", provider_type="oauth2", identifier="custom:acme",
                name="Acme", client_id="acme-client", acceptable_client_ids=(), scopes=("read", "profile"),
                pkce_enabled=True, attribute_mapping={}, authorization_params={}, enabled=True,
                email_optional=False, issuer=None, discovery_url=None, skip_nonce_check=False,
                cached_discovery=None, discovery_cached_at=None, authorization_url=None, token_url=None,
                userinfo_url=None, jwks_uri=None, created_at=now, updated_at=now, custom_claims_allowlist=())
    base.update(values)
    return CustomProvider(**base)


def _settings():
    from gotrue_lite.config import ProviderSettings

    return ProviderSettings(enabled=True, client_id=("acme-client",), secret="acme-secret",
                            redirect_uri="https://auth.example/callback", url="", api_url="",
                            email_optional=False, skip_nonce_check=False)


def _with_fake_oauth2(coro_fn):
    """Run coro_fn(base_url, seen) against a small OAuth2 server (token + userinfo endpoints)."""
    import asyncio

    from aiohttp import web

    from gotrue_lite.outbound import new_client

    seen: list = []

    async def token(request):
        seen.append(("token", dict(await request.post()), request.headers.get("Authorization")))
        return web.json_response({"access_token": "at-1", "token_type": "bearer"})

    async def userinfo(request):
        seen.append(("userinfo", request.headers.get("Authorization")))
        return web.json_response({"sub": "u-1", "email": "Ann@Acme.test", "email_verified": True,
                                  "display_name": "Ann A.", "groups": ["admins"], "name": "Ann"})

    async def main():
        app = web.Application()
        app.router.add_post("/token", token)
        app.router.add_get("/userinfo", userinfo)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        http = new_client()
        try:
            return await coro_fn(base, seen, http)
        finally:
            await http.close()
            await runner.cleanup()

    return asyncio.run(main())


def test_custom_oauth2_provider_round_trip():
    from urllib.parse import parse_qs, urlsplit

    from gotrue_lite.providers.custom_oauth import build

    async def go(base, seen, http):
        row = _row(authorization_url=f"{base}/authorize", token_url=f"{base}/token", userinfo_url=f"{base}/userinfo",
                   authorization_params={"prompt": "consent"}, custom_claims_allowlist=("groups",),
                   attribute_mapping={"nickname": "name", "profile": "display_name"})
        provider = build(row, _settings(), http)
        assert provider.requires_pkce is True
        url = await provider.authorization_url("state-1", {"code_challenge": "c", "code_challenge_method": "S256"})
        query = parse_qs(urlsplit(url).query)
        assert url.startswith(f"{base}/authorize?")
        assert query["scope"] == ["read profile"] and query["prompt"] == ["consent"]
        assert query["client_id"] == ["acme-client"] and query["code_challenge"] == ["c"]
        # scopes given at /authorize are split on whitespace and replace the stored ones
        assert build(row, _settings(), http, "openid  email").scopes == ["openid", "email"]
        tokens = await provider.exchange_code("code-1", code_verifier="v-1")
        data = await provider.user_data(tokens)
        return data, seen

    data, seen = _with_fake_oauth2(go)
    assert seen[0][1]["code"] == "code-1" and seen[0][1]["code_verifier"] == "v-1"
    assert seen[1] == ("userinfo", "Bearer at-1")
    assert [(e.email, e.verified, e.primary) for e in data.emails] == [("Ann@Acme.test", True, True)]
    assert data.claims["nickname"] == "Ann" and data.claims["name"] == "Ann"
    # a source is looked up among upstream's Claims keys only: display_name is not one
    assert "profile" not in data.claims and "display_name" not in data.claims
    assert data.claims["custom_claims"] == {"groups": ["admins"]}


def test_custom_oidc_provider_reads_the_id_token():
    import asyncio

    from gotrue_lite.outbound import new_client
    from gotrue_lite.providers.base import ProviderError, TokenSet
    from gotrue_lite.providers.custom_oauth import build
    from gotrue_lite.providers.oidc import OIDCCache

    from oidc_issuer import running_issuer

    with running_issuer() as issuer:
        doc = issuer.document()
        row = _row(provider_type="oidc", issuer=issuer.url, cached_discovery=doc, scopes=("openid",),
                   acceptable_client_ids=("mobile-app",), attribute_mapping={"nickname": "email"})

        async def go():
            http = new_client()
            try:
                provider = build(row, _settings(), http, cache=OIDCCache(http))
                assert provider.endpoint(provider.token_path) == doc["token_endpoint"]
                good = issuer.mint(issuer.claims(aud="mobile-app", email="o@corp.test", email_verified=True,
                                                 nonce="not-checked-here"))
                data = await provider.user_data(TokenSet(access_token="x", id_token=good))
                with pytest.raises(ProviderError, match="audience"):
                    await provider.user_data(TokenSet(access_token="x", id_token=issuer.mint(issuer.claims(aud="other"))))
                with pytest.raises(ProviderError, match="verify"):
                    await provider.user_data(TokenSet(access_token="x", id_token=issuer.mint(
                        issuer.claims(aud="mobile-app", iss="https://evil.example"))))
                return data
            finally:
                await http.close()

        data = asyncio.run(go())
    assert [(e.email, e.verified) for e in data.emails] == [("o@corp.test", True)]
    assert data.claims["nickname"] == "o@corp.test" and data.claims["sub"] == "subject-1"


# --- /authorize and /callback with a custom provider ----------------------------------------------


def test_authorize_and_callback_with_a_custom_oauth2_provider(insecure):
    from urllib.parse import parse_qs, urlsplit

    call(insecure, "POST", "/admin/custom-providers",
         json=oauth2(scopes=["read"], authorization_params={"prompt": "consent"}))
    call(insecure, "POST", "/admin/custom-providers", json=oauth2("custom:off", enabled=False))
    # the name is lower-cased before the lookup
    assert httpx.get(f"{insecure.url}/authorize", params={"provider": "custom:ACME"}).status_code == 302
    sql_rows = rows(insecure, "SELECT id FROM flow_state")
    resp = httpx.get(f"{insecure.url}/authorize", params={"provider": "custom:acme", "login_hint": "ann"})
    assert resp.status_code == 302, resp.text
    location = urlsplit(resp.headers["Location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://idp.acme.test/authorize"
    assert query["client_id"] == ["acme-client"] and query["redirect_uri"] == [f"{insecure.url}/callback"]
    assert query["scope"] == ["read"] and query["prompt"] == ["consent"] and query["login_hint"] == ["ann"]
    assert query["code_challenge_method"] == ["S256"]  # pkce_enabled: the provider gets our challenge
    [flow] = [r for r in rows(insecure, "SELECT id, provider_type FROM flow_state")
              if r["id"] not in {x["id"] for x in sql_rows}]
    assert query["state"] == [str(flow["id"])] and flow["provider_type"] == "custom:acme"
    # scopes at /authorize replace the stored ones, split on whitespace
    resp = httpx.get(f"{insecure.url}/authorize", params={"provider": "custom:acme", "scopes": "a b"})
    assert parse_qs(urlsplit(resp.headers["Location"]).query)["scope"] == ["a b"]

    for name, message in (("custom:off", "custom provider custom:off is disabled"),
                          ("custom:nope", "custom provider custom:nope not found")):
        assert_error(httpx.get(f"{insecure.url}/authorize", params={"provider": name}), 400, "validation_failed",
                     f"Unsupported provider: {message}")

    # the callback resolves the same provider; its token endpoint cannot be reached from here
    resp = httpx.get(f"{insecure.url}/callback", params={"state": str(flow["id"]), "code": "c0de"})
    assert resp.status_code == 302
    error = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert error["error_code"] == ["unexpected_failure"]
    assert error["error_description"] == ["Unable to exchange external code: c0de"]


def test_authorize_with_custom_providers_switched_off(make_server, backend):
    server = make_server(backend, GOTRUE_CUSTOM_OAUTH_ENABLED="false")
    assert_error(httpx.get(f"{server.url}/authorize", params={"provider": "custom:acme"}), 400, "validation_failed",
                 "Unsupported provider: custom OAuth providers are disabled")


# --- a whole sign-in through a custom OIDC provider (a local https issuer, tests/oidc_issuer.py) ----


def test_sign_in_through_a_custom_oidc_provider(make_server, backend, tmp_path):
    from urllib.parse import parse_qs, urlsplit

    from oidc_issuer import running_issuer, tls_files

    ca_file, tls = tls_files(tmp_path)
    with running_issuer(tls=tls) as issuer:
        server = make_server(backend, GOTRUE_LITE_EXTRA_CA_FILE=ca_file, **INSECURE)
        address = new_email("corp")
        issuer.person = {"sub": "corp-42", "email": address, "email_verified": True, "name": "Cora"}
        resp = call(server, "POST", "/admin/custom-providers", json={
            "provider_type": "oidc", "identifier": "custom:corp", "name": "Corp", "client_id": "corp-app",
            "client_secret": "corp-secret", "issuer": issuer.url, "scopes": ["email", "profile"],
            "custom_claims_allowlist": ["corp_role"]})
        assert resp.status_code == 201, resp.text
        created = resp.json()
        assert created["scopes"] == ["openid", "email", "profile"]
        assert created["discovery_document"]["issuer"] == issuer.url
        assert created["discovery_document"]["jwks_uri"] == issuer.url + "/jwks"

        # /authorize → the issuer → /callback → the site, with the session in the fragment
        issuer.person["corp_role"] = "engineer"
        start = httpx.get(f"{server.url}/authorize", params={"provider": "custom:corp"})
        assert start.status_code == 302, start.text
        assert start.headers["Location"].startswith(issuer.url + "/auth?")
        import ssl
        back = httpx.get(start.headers["Location"], verify=ssl.create_default_context(cafile=ca_file))
        assert back.status_code == 302 and back.headers["Location"].startswith(f"{server.url}/callback?")
        done = httpx.get(back.headers["Location"])
        assert done.status_code == 302, done.text
        target = urlsplit(done.headers["Location"])
        fragment = parse_qs(target.fragment)
        assert "access_token" in fragment, done.headers["Location"]
        assert fragment["provider_token"][0]
        [token_request] = issuer.token_requests
        assert token_request["redirect_uri"] == f"{server.url}/callback"
        import base64
        basic = "Basic " + base64.b64encode(b"corp-app:corp-secret").decode()
        assert token_request["authorization"] == basic or token_request.get("client_secret") == "corp-secret"
        me = httpx.get(f"{server.url}/user", headers=bearer(fragment["access_token"][0])).json()
        assert me["email"] == address and me["app_metadata"]["provider"] == "custom:corp"
        [identity] = me["identities"]
        assert (identity["provider"], identity["id"]) == ("custom:corp", "corp-42")
        assert identity["identity_data"]["custom_claims"] == {"corp_role": "engineer"}

        # the same person by the id_token grant: the same user
        token = issuer.mint(issuer.claims(sub="corp-42", aud="corp-app", email=address, email_verified=True))
        resp = httpx.post(f"{server.url}/token?grant_type=id_token", json={"provider": "custom:corp", "id_token": token})
        assert resp.status_code == 200, resp.text
        assert resp.json()["user"]["id"] == me["id"]
        wrong = issuer.mint(issuer.claims(sub="corp-42", aud="someone-else"))
        resp = httpx.post(f"{server.url}/token?grant_type=id_token", json={"provider": "custom:corp", "id_token": wrong})
        assert resp.status_code == 400 and resp.json()["error_description"] == \
            "Unacceptable audience in id_token: [someone-else]"
