"""The keycloak provider module against the local OpenID provider on Keycloak's paths: its
authorization URL, code exchange and userinfo mapping (upstream provider/keycloak.go)."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import aiohttp

from gotrue_lite.config import ProviderSettings
from gotrue_lite.providers import ProviderError, provider_class
from idp import idp  # noqa: F401 - fixture

REDIRECT = "http://127.0.0.1:9/callback"


def _settings(idp, client_id: str, secret: str, url: str | None = None) -> ProviderSettings:
    return ProviderSettings(enabled=True, client_id=(client_id,), secret=secret, redirect_uri=REDIRECT,
                            url=idp.issuer if url is None else url, api_url="", email_optional=False,
                            skip_nonce_check=False)


async def _sign_in(idp, client_id, secret, sub, scopes="openid"):
    async with aiohttp.ClientSession() as http:
        provider = provider_class("keycloak")(_settings(idp, client_id, secret), http, scopes)
        url = await provider.authorization_url("state-1", {"login_hint": sub})
        query = parse_qs(urlsplit(url).query)
        assert url.startswith(f"{idp.issuer}/protocol/openid-connect/auth?")
        assert query["scope"] == [" ".join(["profile", "email", *filter(None, scopes.split(","))])]
        assert query["state"] == ["state-1"]
        answer = await asyncio.to_thread(idp.authorize, client_id, REDIRECT, sub, scope=query["scope"][0])
        tokens = await provider.exchange_code(answer["code"])
        return tokens, await provider.user_data(tokens)


def test_keycloak_maps_userinfo(idp):
    client_id, secret = idp.add_client([REDIRECT])
    sub = idp.add_user(email="Kc.User@Example.com", email_verified=True, name="Kay Cee",
                       preferred_username="kc", locale="de")
    tokens, data = asyncio.run(_sign_in(idp, client_id, secret, sub))
    assert tokens.refresh_token and tokens.id_token
    assert [(e.email, e.verified, e.primary) for e in data.emails] == [("Kc.User@Example.com", True, True)]
    assert data.claims == {
        "iss": idp.issuer, "sub": sub, "name": "Kay Cee", "email": "Kc.User@Example.com",
        "email_verified": True, "phone_verified": False,
        "custom_claims": {"preferred_username": "kc", "locale": "de"},
        "full_name": "Kay Cee", "provider_id": sub,
    }


def test_keycloak_without_openid_scope_gets_no_userinfo(idp):
    """Keycloak (and this provider) refuse userinfo to a token without `openid`: upstream's
    default scopes lack it, so apps pass scopes=openid."""
    client_id, secret = idp.add_client([REDIRECT])
    sub = idp.add_user(email="x@example.com", email_verified=False)

    async def run():
        try:
            await _sign_in(idp, client_id, secret, sub, scopes="")
        except ProviderError as exc:
            return exc
        return None

    error = asyncio.run(run())
    assert error is not None and error.status in (401, 403)


def test_keycloak_needs_its_realm_url(idp):
    async def run():
        async with aiohttp.ClientSession() as http:
            return provider_class("keycloak")(_settings(idp, "c", "s", url=""), http).check()

    assert asyncio.run(run()) == "unable to find URL for the Keycloak provider"
