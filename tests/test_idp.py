"""The local OpenID provider the OAuth tests rely on (tests/idp): a real code flow, its keys and
the tokens it mints to order, so that the tests built on it can fail for the right reasons."""

from __future__ import annotations

import httpx
import pytest
from jose import jwt
from jose.exceptions import JWTError

from idp import idp  # noqa: F401 - fixture

REDIRECT = "http://127.0.0.1:9/callback"


def _jwks(idp) -> dict:
    discovery = httpx.get(f"{idp.issuer}/.well-known/openid-configuration", timeout=30).json()
    assert discovery["issuer"] == idp.issuer
    assert discovery["authorization_endpoint"] == f"{idp.issuer}/protocol/openid-connect/auth"
    assert discovery["token_endpoint"] == f"{idp.issuer}/protocol/openid-connect/token"
    assert discovery["userinfo_endpoint"] == f"{idp.issuer}/protocol/openid-connect/userinfo"
    assert discovery["jwks_uri"] == f"{idp.issuer}/protocol/openid-connect/certs"
    return httpx.get(discovery["jwks_uri"], timeout=30).json()


def _key(idp, token: str) -> dict:
    """The published key the token's kid names (python-jose does not pick by kid)."""
    kid = jwt.get_unverified_header(token)["kid"]
    return next(k for k in _jwks(idp)["keys"] if k["kid"] == kid)


def test_code_flow_logs_in_the_hinted_user(idp):
    client_id, secret = idp.add_client([REDIRECT])
    sub = idp.add_user(email="Ada@Example.com", email_verified=True, name="Ada L")
    tokens = idp.code_flow(client_id, secret, REDIRECT, sub, nonce="n-1")
    claims = jwt.decode(tokens["id_token"], _key(idp, tokens["id_token"]), audience=client_id, issuer=idp.issuer,
                        options={"verify_at_hash": False})
    assert (claims["sub"], claims["nonce"], claims["email"], claims["email_verified"]) == (sub, "n-1", "Ada@Example.com", True)
    assert tokens["refresh_token"]
    info = httpx.get(f"{idp.issuer}/protocol/openid-connect/userinfo",
                     headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=30)
    assert info.json() == {"sub": sub, "email": "Ada@Example.com", "email_verified": True, "name": "Ada L"}


def test_unknown_login_hint_is_access_denied(idp):
    client_id, _ = idp.add_client([REDIRECT])
    answer = idp.authorize(client_id, REDIRECT, "nobody-by-that-name")
    assert answer["error"] == "access_denied" and "code" not in answer


@pytest.mark.parametrize("key, alg", [("current", "RS256"), ("es256", "ES256"), ("rotated", "RS256")])
def test_minted_tokens_verify_with_published_keys(idp, key, alg):
    token = idp.mint_id_token("aud-1", sub="s-1", nonce="abc", key=key, alg=alg, access_token="at-1")
    claims = jwt.decode(token, _key(idp, token), audience="aud-1", issuer=idp.issuer, access_token="at-1")
    assert (claims["sub"], claims["nonce"]) == ("s-1", "abc")
    with pytest.raises(JWTError):
        jwt.decode(token, _key(idp, token), audience="aud-1", issuer=idp.issuer, access_token="another")


def test_unknown_and_next_keys_are_not_published_until_rotation(idp):
    jwks = _jwks(idp)
    kids = {k["kid"] for k in jwks["keys"]}
    assert {"rs-current", "es-current", "rs-rotated"} <= kids and "rs-unknown" not in kids
    assert all("d" not in k for k in jwks["keys"])
    unknown = idp.mint_id_token("aud-1", key="unknown")
    assert jwt.get_unverified_header(unknown)["kid"] == "rs-unknown"
    assert idp.rotate() == "rs-next"
    assert "rs-next" in {k["kid"] for k in _jwks(idp)["keys"]}
    rotated = idp.mint_id_token("aud-1", key="next")
    assert jwt.decode(rotated, _key(idp, rotated), audience="aud-1")["aud"] == "aud-1"


def test_faults_hang_or_fail_an_endpoint(idp):
    with idp.fault("userinfo", status=503, body={"error": "temporarily_unavailable"}):
        resp = httpx.get(f"{idp.issuer}/protocol/openid-connect/userinfo", timeout=30)
        assert resp.status_code == 503
    with idp.fault("token", "hang"):
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{idp.issuer}/protocol/openid-connect/token", timeout=0.5)
    assert httpx.get(f"{idp.issuer}/protocol/openid-connect/userinfo", timeout=30).status_code == 401  # fault gone
