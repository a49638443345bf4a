"""Sign-in end to end through GET /authorize and /callback against the vendors' wire-format fakes
(tests/oauth_vendors.py), on both stores: GitHub (every e-mail, implicit flow), Discord, X (its
own PKCE with the vendor, and the client's PKCE with us) and Twitter (OAuth 1.0a). The browser's
part is played here: each 302 is followed by hand, so the test sees every hop."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from oauth_vendors import running

SITE = "http://localhost:3000"
VERIFIER = "a-client-side-verifier-that-is-long-enough-0123456789abcdef"


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _fragment(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).fragment).items()}


def _server(make_server, backend, vendor):
    # The vendor sends the browser back to REDIRECT_URI; the test forwards that hop to the
    # server's /callback itself, so the placeholder host is never contacted.
    env = {**vendor.env(), f"GOTRUE_EXTERNAL_{vendor.name.upper()}_REDIRECT_URI": "https://auth.example.test/callback",
           "GOTRUE_URI_ALLOW_LIST": f"{SITE}/**"}
    return make_server(backend, **env)


def _browse(server, vendor, provider: str, **params: str) -> httpx.Response:
    """/authorize → the vendor's consent page → our /callback; the answer of /callback."""
    with httpx.Client(timeout=30) as http:
        first = http.get(f"{server.url}/authorize", params={"provider": provider,
                                                             "redirect_to": f"{SITE}/welcome", **params})
        assert first.status_code == 302, first.text
        at_vendor = first.headers["location"]
        assert at_vendor.startswith(vendor.url), at_vendor
        consent = http.get(at_vendor)
        assert consent.status_code == 302, consent.text
        back = urlsplit(consent.headers["location"])
        assert back.netloc == "auth.example.test"
        return http.get(f"{server.url}/callback?{back.query}")


def _user(server, access_token: str) -> dict:
    answer = httpx.get(f"{server.url}/user", headers={"Authorization": f"Bearer {access_token}",
                                                      "apikey": server.anon_key}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_github_implicit_flow_every_email(make_server, backend):
    with running("github") as vendor:
        server = _server(make_server, backend, vendor)
        done = _browse(server, vendor, "github")
        assert done.status_code in (302, 303), done.text
        target = done.headers["location"]
        assert target.startswith(f"{SITE}/welcome#"), target
        session = _fragment(target)
        assert session["token_type"] == "bearer" and session["refresh_token"]
        assert session["provider_token"] in vendor.tokens
        user = _user(server, session["access_token"])
        assert user["email"] == "octocat@example.com"  # the primary, verified address
        assert user["app_metadata"]["provider"] == "github" and user["app_metadata"]["providers"] == ["github"]
        identity = user["identities"][0]
        assert identity["provider"] == "github" and identity["id"] == "583231"
        data = identity["identity_data"]
        assert data["sub"] == "583231" and data["user_name"] == "octocat" and data["email"] == "octocat@example.com"
        assert data["email_verified"] is True and data["iss"] == vendor.url + "/api/v3"
        assert user["user_metadata"]["full_name"] == "The Octocat"

        # the same person again: the same user, no second identity
        again = _fragment(_browse(server, vendor, "github").headers["location"])
        assert _user(server, again["access_token"])["id"] == user["id"]


def test_github_refused_code_is_redirected_as_an_error(make_server, backend):
    with running("github") as vendor:
        server = _server(make_server, backend, vendor)
        vendor.fail("bad_code")
        done = _browse(server, vendor, "github")
        assert done.status_code in (302, 303), done.text
        where = done.headers["location"]
        error = {**_query(where), **_fragment(where)}
        assert error["error"] == "server_error" and error.get("error_description")


def test_discord(make_server, backend):
    with running("discord") as vendor:
        server = _server(make_server, backend, vendor)
        session = _fragment(_browse(server, vendor, "discord").headers["location"])
        user = _user(server, session["access_token"])
        assert user["email"] == "nelly@discord.example"
        data = user["identities"][0]["identity_data"]
        assert data["name"] == "nelly#1337" and data["custom_claims"] == {"global_name": "Nelly"}
        assert data["avatar_url"].startswith("https://cdn.discordapp.com/avatars/80351110224678912/")


def test_x_provider_pkce_and_client_pkce(make_server, backend):
    with running("x") as vendor:
        server = _server(make_server, backend, vendor)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
        done = _browse(server, vendor, "x", code_challenge=challenge, code_challenge_method="s256")
        assert done.status_code in (302, 303), done.text
        # X saw a challenge of ours (not the client's), and the exchange proved it
        authorize = [r for r in vendor.requests if r[1].startswith("/i/oauth2/authorize")][0][1]
        assert _query(authorize)["code_challenge_method"] == "S256"
        assert _query(authorize)["code_challenge"] != challenge
        code = _query(done.headers["location"])["code"]
        answer = httpx.post(f"{server.url}/token", params={"grant_type": "pkce"},
                            json={"auth_code": code, "code_verifier": VERIFIER},
                            headers={"apikey": server.anon_key}, timeout=30)
        assert answer.status_code == 200, answer.text
        session = answer.json()
        assert session["provider_token"] in vendor.tokens
        assert session["user"]["email"] == "dev@x.example"
        assert session["user"]["identities"][0]["identity_data"]["user_name"] == "XDevelopers"


def test_twitter_oauth1(make_server, backend):
    with running("twitter") as vendor:
        server = _server(make_server, backend, vendor)
        done = _browse(server, vendor, "twitter")
        assert done.status_code in (302, 303), done.text
        session = _fragment(done.headers["location"])
        assert session["provider_token"] in vendor.access
        user = _user(server, session["access_token"])
        assert user["email"] == "api@twitter.example"
        data = user["identities"][0]["identity_data"]
        assert data["sub"] == "6253282" and data["preferred_username"] == "TwitterAPI"
