"""A custom OIDC provider (`custom:<id>`, made with the admin API) whose issuer is the real local
OpenID provider (npm oidc-provider, tests/idp) served over https: a whole sign-in through
/authorize, the provider and /callback, then the id_token grant with a token it minted, on both
stores. Its certificate chains to a throw-away CA the server trusts via GOTRUE_LITE_EXTRA_CA_FILE;
GOTRUE_LITE_ALLOW_INSECURE_PROVIDER_URLS lets the loopback host through."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from helpers import bearer, new_email
from idp import idp_https  # noqa: F401 - a fixture


def _admin(server, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, f"{server.url}{path}", headers=bearer(server.service_role_key), timeout=30, **kwargs)


def _follow_to(start: str, prefix: str, verify) -> str:
    """Play the browser at the provider: follow its redirects until they leave for `prefix`."""
    url = start
    with httpx.Client(timeout=30, verify=verify) as browser:
        for _ in range(10):
            resp = browser.get(url)
            location = resp.headers.get("location")
            assert resp.is_redirect and location, f"{resp.status_code} {resp.text[:300]}"
            url = urljoin(str(resp.url), location)
            if url.startswith(prefix):
                return url
    raise AssertionError("the provider never sent the browser back")


def test_custom_oidc_provider_against_the_local_openid_provider(make_server, backend, idp_https):
    server = make_server(backend, GOTRUE_LITE_EXTRA_CA_FILE=idp_https.ca_file,
                         GOTRUE_LITE_ALLOW_INSECURE_PROVIDER_URLS="true")
    client_id, secret = f"corp-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    idp_https.add_client([f"{server.url}/callback"], client_id=client_id, client_secret=secret)
    email = new_email("corp")
    sub = idp_https.add_user(email=email, email_verified=True, name="Cora Corp")
    identifier = f"custom:corp{uuid.uuid4().hex[:6]}"

    created = _admin(server, "POST", "/admin/custom-providers", json={
        "provider_type": "oidc", "identifier": identifier, "name": "Corp", "client_id": client_id,
        "client_secret": secret, "issuer": idp_https.issuer, "scopes": ["email", "profile"]})
    assert created.status_code == 201, created.text
    document = created.json()["discovery_document"]
    assert document["issuer"] == idp_https.issuer
    assert document["jwks_uri"].startswith("https://127.0.0.1:")

    start = httpx.get(f"{server.url}/authorize", params={"provider": identifier, "login_hint": sub}, timeout=30)
    assert start.status_code == 302, start.text
    assert start.headers["Location"].startswith(f"{idp_https.issuer}/protocol/openid-connect/auth?")
    callback = _follow_to(start.headers["Location"], f"{server.url}/callback", idp_https.verify)
    done = httpx.get(callback, timeout=30)
    assert done.status_code == 302, done.text
    fragment = {k: v[0] for k, v in parse_qs(urlsplit(done.headers["Location"]).fragment).items()}
    assert "access_token" in fragment and fragment["provider_token"], done.headers["Location"]

    me = httpx.get(f"{server.url}/user", headers=bearer(fragment["access_token"]), timeout=30).json()
    assert me["email"] == email and me["app_metadata"]["provider"] == identifier
    [identity] = me["identities"]
    assert (identity["provider"], identity["id"]) == (identifier, sub)
    assert identity["identity_data"]["email"] == email

    # The same person by the id_token grant, with a token the provider minted: the same user.
    token = idp_https.mint_id_token(client_id, sub=sub, claims={"email": email, "email_verified": True})
    resp = httpx.post(f"{server.url}/token?grant_type=id_token", json={"provider": identifier, "id_token": token},
                      timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["id"] == me["id"]
    # One signed with a key the provider never published is refused.
    forged = idp_https.mint_id_token(client_id, sub=sub, key="unknown", claims={"email": email})
    resp = httpx.post(f"{server.url}/token?grant_type=id_token", json={"provider": identifier, "id_token": forged},
                      timeout=30)
    assert resp.status_code == 400, resp.text
