"""Helpers for the OAuth flow tests: a gotrue-lite server wired to the local OpenID provider as
`keycloak`, and a "browser" that follows redirects until it lands on the app.

The provider redirects to GOTRUE_EXTERNAL_KEYCLOAK_REDIRECT_URI, which must be known before the
server (and its random port) exists: as behind a Supabase gateway, it is a public address
(GATEWAY) that the browser here forwards to the server's /auth/v1 routes.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp

SITE = "http://localhost:3000"
GATEWAY = "http://gateway.test/auth/v1"


def keycloak_server(make_server, backend: str, idp, **env: str | None):
    """A server whose keycloak provider is a fresh confidential client of the local provider."""
    client_id, secret = f"gotrue-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    idp.add_client([f"{GATEWAY}/callback"], client_id=client_id, client_secret=secret)
    settings = {"GOTRUE_URI_ALLOW_LIST": f"{SITE}/**", **idp.keycloak_env(f"{GATEWAY}/callback", client_id, secret),
                **env}
    server = make_server(backend, **settings)
    server.keycloak_client_id = client_id
    return server


async def _follow(server, url: str, stop: str, max_hops: int, method: str = "GET", headers=None) -> str:
    jar = aiohttp.CookieJar(unsafe=True)  # the provider's cookies on 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        for _ in range(max_hops):
            if url.startswith(GATEWAY):
                url = server.url + "/auth/v1" + url[len(GATEWAY):]
            async with browser.request(method, url, allow_redirects=False, headers=headers) as resp:
                location = resp.headers.get("Location")
                if not location:
                    raise AssertionError(f"{url} answered {resp.status} without Location: {(await resp.text())[:500]}")
            method, headers = "GET", None
            url = urljoin(url, location)
            if url.startswith(stop):
                return url
    raise AssertionError("too many redirects")


def browse(server, url: str, stop: str = SITE, max_hops: int = 12) -> str:
    """Follow redirects from `url` as a browser would, until one points into `stop`; that URL."""
    return asyncio.run(_follow(server, url, stop, max_hops))


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def fragment_of(url: str) -> dict[str, Any]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).fragment, keep_blank_values=True).items()}
