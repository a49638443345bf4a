"""providers/oidc.py: discovery, the JWKS cache and ID token verification against a local issuer
(tests/oidc_issuer.py) whose keys come from `cryptography` and whose tokens PyJWT mints."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import timedelta
from typing import Any

import jwt as pyjwt
import pytest

from gotrue_lite import clock
from gotrue_lite.outbound import new_client
from gotrue_lite.providers import oidc
from gotrue_lite.providers.oidc import DiscoveryError, IDToken, OIDCCache, OIDCError, parse_id_token

from oidc_issuer import Key, at_hash, b64url, running_issuer


@pytest.fixture
def issuer():
    with running_issuer() as running:
        yield running


@pytest.fixture
def moved_clock():
    """Move the server's clock forward: `moved_clock(seconds)`; put back after the test."""
    def move(seconds: float) -> None:
        clock.offset += timedelta(seconds=seconds)

    saved = clock.offset
    yield move
    clock.offset = saved


def run(coro_fn, **cache_kwargs):
    """Run `coro_fn(cache)` with a fresh cache on the app's kind of HTTP client."""
    async def main():
        http = new_client()
        try:
            return await coro_fn(OIDCCache(http, **cache_kwargs))
        finally:
            await http.close()
    return asyncio.run(main())


def parse(issuer, token: str, **kwargs: Any):
    return run(lambda cache: parse_id_token(cache, issuer.url, token, **kwargs))


def refused(issuer, token: str, **kwargs: Any) -> str:
    with pytest.raises(OIDCError) as info:
        parse(issuer, token, **kwargs)
    return str(info.value)


# --- good tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize("index, alg", [(0, "RS256"), (1, "ES256"), (2, "EdDSA")])
def test_a_token_of_each_key_type_verifies(issuer, index, alg):
    claims = issuer.claims(email="Ann@Example.com", email_verified=True, name="Ann", nonce="n-hash")
    token, data = parse(issuer, issuer.mint(claims, key=issuer.keys[index]), audiences=["client-1"])
    assert (token.issuer, token.subject, token.audience, token.algorithm) == (issuer.url, "subject-1", ("client-1",), alg)
    assert token.nonce == "n-hash"
    assert [(e.email, e.verified, e.primary) for e in data.emails] == [("Ann@Example.com", True, True)]
    # the generic parser keeps upstream's Claims keys only (nonce is not one of them)
    assert data.claims == {"iss": issuer.url, "sub": "subject-1", "aud": ["client-1"], "iat": claims["iat"],
                           "exp": claims["exp"], "name": "Ann", "email": "Ann@Example.com",
                           "email_verified": True, "phone_verified": False}


def test_ps256_with_an_rsa_key_that_does_not_pin_its_alg(issuer):
    issuer.keys.append(Key("rsa", "PS256", pin_alg=False))
    token, _ = parse(issuer, issuer.mint(key=issuer.keys[-1], alg="PS256"))
    assert token.algorithm == "PS256"


def test_a_token_without_kid_is_tried_against_every_key(issuer):
    token, _ = parse(issuer, issuer.mint(key=issuer.keys[1], kid=""))
    assert token.algorithm == "ES256"


def test_aud_as_a_list_and_several_accepted_audiences(issuer):
    token, _ = parse(issuer, issuer.mint(issuer.claims(aud=["x", "client-2"])), audiences=["", "client-2", "y"])
    assert token.audience == ("x", "client-2")


def test_nbf_within_five_minutes_ahead_is_accepted(issuer):
    parse(issuer, issuer.mint(issuer.claims(nbf=int(time.time()) + 240)))


def test_iat_in_the_future_is_not_checked_as_in_go_oidc(issuer):
    parse(issuer, issuer.mint(issuer.claims(iat=int(time.time()) + 3600)))


# --- refused tokens -------------------------------------------------------------------------------


def _unsigned(claims: dict[str, Any], header: dict[str, Any]) -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}."


def test_alg_none_is_refused(issuer):
    assert "unsupported algorithm" in refused(issuer, _unsigned(issuer.claims(), {"alg": "none"}))
    assert "unsupported algorithm" in refused(issuer, _unsigned(issuer.claims(), {"alg": "none", "kid": issuer.key.kid}))


def test_hs256_signed_with_the_public_key_is_refused(issuer):
    # the classic confusion: the verifier must never treat a public key as an HMAC secret
    import hashlib, hmac
    header = b64url(json.dumps({"alg": "HS256", "kid": issuer.key.kid}).encode())
    payload = b64url(json.dumps(issuer.claims()).encode())
    secret = json.dumps(issuer.key.jwk).encode()
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{b64url(mac)}"
    assert "unsupported algorithm" in refused(issuer, token)


def test_an_alg_the_discovery_document_does_not_list_is_refused():
    with running_issuer(algorithms=["RS256"]) as issuer:
        assert "unsupported algorithm" in refused(issuer, issuer.mint(key=issuer.keys[1]))


def test_no_supported_alg_listed_means_rs256_only():
    with running_issuer(algorithms=["HS256", "none"]) as issuer:
        parse(issuer, issuer.mint())
        assert "unsupported algorithm" in refused(issuer, issuer.mint(key=issuer.keys[1]))


def test_a_key_pinned_to_rs256_does_not_verify_ps256(issuer):
    # same RSA key, alg the document allows, but the JWK says RS256
    assert "verify signature" in refused(issuer, issuer.mint(alg="PS256"))


def test_a_key_of_another_type_does_not_verify(issuer):
    # header says ES256 and names the RSA key's kid
    token = issuer.mint(key=issuer.keys[1], kid=issuer.key.kid)
    assert "verify signature" in refused(issuer, token)


def test_bad_signature(issuer):
    token = issuer.mint()
    head, payload, sig = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "==="))
    forged["sub"] = "someone-else"
    assert "verify signature" in refused(issuer, f"{head}.{b64url(json.dumps(forged).encode())}.{sig}")
    stranger = Key("rsa")
    assert "verify signature" in refused(issuer, issuer.mint(key=stranger, kid=issuer.key.kid))


def test_wrong_issuer(issuer):
    assert "different provider" in refused(issuer, issuer.mint(issuer.claims(iss="https://evil.example")))
    # unless skipped (Apple)
    parse(issuer, issuer.mint(issuer.claims(iss="https://evil.example")), skip_issuer_check=True)


def test_wrong_audience(issuer):
    assert "audience" in refused(issuer, issuer.mint(), audiences=["client-2"])
    assert "audience" in refused(issuer, issuer.mint(), audiences=[""])
    assert "audience" in refused(issuer, issuer.mint(issuer.claims(aud=None)), audiences=["client-1"])


@pytest.mark.parametrize("exp", [-1, None, "soon"])
def test_expired_or_missing_exp(issuer, exp):
    claims = issuer.claims()
    if exp is None:
        del claims["exp"]
    elif exp == "soon":
        claims["exp"] = "tomorrow"
    else:
        claims["exp"] = int(time.time()) + exp
    message = refused(issuer, issuer.mint(claims))
    assert "expired" in message or "unmarshal" in message


def test_nbf_more_than_five_minutes_ahead_is_refused(issuer):
    assert "nbf" in refused(issuer, issuer.mint(issuer.claims(nbf=int(time.time()) + 400)))


@pytest.mark.parametrize("raw", ["", "a.b", "a.b.c.d", "!!.e30.x", "e30.e30.***"])
def test_malformed(issuer, raw):
    refused(issuer, raw)


# --- at_hash ---------------------------------------------------------------------------------------


def test_at_hash(issuer):
    good = issuer.mint(issuer.claims(at_hash=at_hash("access-1")))
    parse(issuer, good, access_token="access-1")
    assert "access token hash" in refused(issuer, good, access_token="access-2")
    # access token without at_hash in the token: nothing to check; at_hash without access token: accepted
    parse(issuer, issuer.mint(), access_token="access-1")
    parse(issuer, good)


def test_at_hash_uses_the_algs_hash(issuer):
    ec = issuer.keys[1]
    parse(issuer, issuer.mint(issuer.claims(at_hash=at_hash("tok", "ES256")), key=ec), access_token="tok")
    # EdDSA has no at_hash hash in go-oidc
    ed = issuer.mint(issuer.claims(at_hash="anything"), key=issuer.keys[2])
    assert "unsupported signing algorithm" in refused(issuer, ed, access_token="tok")


# --- discovery and the caches ----------------------------------------------------------------------


def test_discovery_issuer_must_match_unless_insecure(issuer):
    issuer.issuer_override = "https://other.example"
    with pytest.raises(DiscoveryError, match="did not match"):
        parse(issuer, issuer.mint())
    token, _ = parse(issuer, issuer.mint(), insecure_issuer=True)
    assert token.issuer == issuer.url


def test_discovery_failure_is_a_discovery_error(issuer):
    issuer.fail_discovery = 503
    with pytest.raises(DiscoveryError):
        parse(issuer, issuer.mint())


def test_unreachable_issuer():
    async def go(cache):
        return await parse_id_token(cache, "http://127.0.0.1:9", "a.b.c")
    with pytest.raises(DiscoveryError):
        run(go)


def test_documents_are_fetched_once_and_concurrent_fetches_coalesce(issuer):
    tokens = [issuer.mint(issuer.claims(sub=f"s{i}")) for i in range(5)]

    async def go(cache):
        results = await asyncio.gather(*(parse_id_token(cache, issuer.url, t) for t in tokens))
        await parse_id_token(cache, issuer.url, tokens[0])
        return results

    results = run(go)
    assert [t.subject for t, _ in results] == [f"s{i}" for i in range(5)]
    assert issuer.hits == {"discovery": 1, "jwks": 1}


def test_unknown_kid_refetches_at_most_once_per_interval(issuer, moved_clock):
    async def go(cache):
        await parse_id_token(cache, issuer.url, issuer.mint())
        assert issuer.hits["jwks"] == 1
        moved_clock(11)
        for i in range(5):  # made-up kids: one refetch, then the limit holds
            with pytest.raises(OIDCError):
                await parse_id_token(cache, issuer.url, issuer.mint(kid=f"made-up-{i}"))
        assert issuer.hits["jwks"] == 2
        moved_clock(11)
        with pytest.raises(OIDCError):
            await parse_id_token(cache, issuer.url, issuer.mint(kid="made-up-again"))
        assert issuer.hits["jwks"] == 3

    run(go)


def test_rotated_key_is_found_by_refetching(issuer, moved_clock):
    async def go(cache):
        old = issuer.mint()
        await parse_id_token(cache, issuer.url, old)
        moved_clock(60)
        new_key = issuer.rotate()
        token, _ = await parse_id_token(cache, issuer.url, issuer.mint(key=new_key))
        assert token.subject == "subject-1"
        assert issuer.hits["jwks"] == 2
        # the old key is gone from the issuer's set, so its tokens fail now (no further fetch: rate limit)
        with pytest.raises(OIDCError, match="verify signature"):
            await parse_id_token(cache, issuer.url, old)
        assert issuer.hits["jwks"] == 2

    run(go)


def test_ttl_refetches_and_a_failing_refresh_serves_the_stale_entry(issuer, moved_clock):
    token = issuer.mint(issuer.claims(exp=int(time.time()) + 7200))

    async def go(cache):
        await parse_id_token(cache, issuer.url, token)
        moved_clock(3601)
        issuer.fail_discovery = 500
        await parse_id_token(cache, issuer.url, token)  # stale entry, still verifies
        assert issuer.hits["discovery"] == 2
        issuer.fail_discovery = None
        await parse_id_token(cache, issuer.url, token)
        assert issuer.hits["discovery"] == 3  # the failed refresh did not count as fresh

    run(go)


def test_the_cache_is_bounded():
    with running_issuer() as first, running_issuer() as second:
        async def go(cache):
            await parse_id_token(cache, first.url, first.mint())
            await parse_id_token(cache, second.url, second.mint())
            await parse_id_token(cache, first.url, first.mint())
        run(go, max_issuers=1)
        assert first.hits["discovery"] == 2 and second.hits["discovery"] == 1


def test_jwks_failure_is_a_discovery_error(issuer):
    issuer.fail_jwks = 500
    with pytest.raises(DiscoveryError):
        parse(issuer, issuer.mint())


def test_redirects_are_not_followed():
    from aiohttp import web
    import threading

    async def go(cache):
        app = web.Application()

        async def moved(request):
            raise web.HTTPFound("http://169.254.169.254/latest")
        app.router.add_get("/.well-known/openid-configuration", moved)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(DiscoveryError, match="HTTP 302"):
                await parse_id_token(cache, f"http://127.0.0.1:{port}", "a.b.c")
        finally:
            await runner.cleanup()

    run(go)


# --- the per-issuer claim parsers ------------------------------------------------------------------


def _token(issuer: str, **claims: Any) -> IDToken:
    claims = {"iss": issuer, "sub": "s-1", **claims}
    return IDToken(issuer, claims["sub"], (), 0, None, "", "", "RS256", claims)


def test_google_parser():
    data = oidc.user_data(_token(oidc.ISSUER_GOOGLE, email="a@b.c", email_verified=True, name="A",
                                 picture="p", hd="b.c"))
    assert [(e.email, e.verified) for e in data.emails] == [("a@b.c", True)]
    assert data.claims == {"iss": oidc.ISSUER_GOOGLE, "sub": "s-1", "name": "A", "picture": "p",
                           "avatar_url": "p", "full_name": "A", "provider_id": "s-1",
                           "custom_claims": {"hd": "b.c"}, "email_verified": False, "phone_verified": False}


def test_apple_parser():
    data = oidc.user_data(_token(oidc.ISSUER_APPLE, email="x@privaterelay.appleid.com",
                                 is_private_email="true", auth_time=17, name="ignored"))
    assert [(e.email, e.verified) for e in data.emails] == [("x@privaterelay.appleid.com", True)]
    assert data.claims["custom_claims"] == {"is_private_email": True, "auth_time": 17}
    assert "name" not in data.claims
    # no email: still one (empty) verified entry, as upstream
    assert [(e.email, e.verified) for e in oidc.user_data(_token(oidc.ISSUER_APPLE_OTHER)).emails] == [("", True)]


@pytest.mark.parametrize("edov, verified", [(None, True), (True, True), ("1", True), ("true", True),
                                            (False, False), ("0", False), (1, False)])
def test_azure_parser_xms_edov(edov, verified):
    claims = {"email": "a@b.c", "name": "Ann", "preferred_username": "ann", "tid": "t1"}
    if edov is not None:
        claims["xms_edov"] = edov
    data = oidc.user_data(_token("https://login.microsoftonline.com/t1/v2.0", **claims))
    assert data.emails[0].verified is verified
    assert data.claims["full_name"] == "Ann" and "name" not in data.claims
    assert data.claims["custom_claims"]["tid"] == "t1" and "preferred_username" not in data.claims["custom_claims"]


def test_linkedin_parser_reads_email_verified_as_a_string():
    assert oidc.user_data(_token(oidc.ISSUER_LINKEDIN, email="a@b.c", email_verified="true")).emails[0].verified
    with pytest.raises(OIDCError):
        oidc.user_data(_token(oidc.ISSUER_LINKEDIN, email="a@b.c"))


def test_generic_parser_needs_a_boolean_email_verified():
    with pytest.raises(OIDCError):
        oidc.user_data(_token("https://idp.example", email="a@b.c", email_verified="true"))
    data = oidc.user_data(_token("https://idp.example", email="a@b.c", updated_at=0))
    assert data.emails[0].verified is False


def test_snapchat_and_vercel_parsers():
    data = oidc.user_data(_token(oidc.ISSUER_SNAPCHAT, email="a@b.c"))
    assert data.emails[0].verified and data.claims["email_verified"] is True
    data = oidc.user_data(_token(oidc.ISSUER_VERCEL_MARKETPLACE, global_user_id="g1", user_email="v@b.c"))
    assert data.claims["sub"] == "global_user_id:g1" and data.emails[0].email == "v@b.c"


# --- Azure's issuer rules --------------------------------------------------------------------------


def _azure_token(iss: str) -> str:
    return _unsigned({"iss": iss}, {"alg": "RS256"}) + "x"


def test_azure_issuer_rules():
    tenant = "https://login.microsoftonline.com/tenant-1/v2.0"
    assert oidc.azure_token_issuer(_azure_token(tenant), "") == tenant
    assert oidc.azure_token_issuer(_azure_token(tenant), "https://login.microsoftonline.com/common") == tenant
    assert oidc.azure_token_issuer(_azure_token(tenant), "https://login.microsoftonline.com/tenant-1") == tenant
    with pytest.raises(OIDCError, match="does not match"):
        oidc.azure_token_issuer(_azure_token(tenant), "https://login.microsoftonline.com/tenant-2")
    with pytest.raises(OIDCError, match="not valid"):  # gotrue-lite: an Azure issuer is required
        oidc.azure_token_issuer(_azure_token("https://evil.example/v2.0"), "")
    ciam = "https://acme.ciamlogin.com/t9/v2.0"
    assert oidc.azure_token_issuer(_azure_token(ciam), "https://acme.ciamlogin.com/t9") == ciam
    with pytest.raises(OIDCError):
        oidc.azure_token_issuer(_azure_token(ciam), "")
    assert oidc.azure_expected_issuer("https://login.microsoftonline.com/organizations") == ""
    assert oidc.azure_expected_issuer("http://127.0.0.1:9999") == ""
