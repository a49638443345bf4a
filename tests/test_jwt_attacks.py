"""Forged, stale and misdirected bearer tokens on every authenticated endpoint (issue 7).

SESSIONS.md §1.4 and API.md §4.4/§4.5: a request with a token the server did not issue, or
may no longer honour, is refused with upstream's status and error_code — 401
no_authorization, 403 bad_jwt, 403 user_not_found, 403 session_not_found, 403 not_admin,
400 validation_failed (audience) — and never reaches the handler. Each attack is tried on the
user endpoints (GET/PUT /user, POST /logout, GET /reauthenticate) and, where it makes sense,
on an admin endpoint, on both backends.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import httpx
import pytest
from jose import jwk, jwt

from helpers import (
    TIMEOUT, b64url, forge_hmac, assert_error, bearer, logout, mint, new_email, rows, rsa_jwk, shared, signup_session, sql,  # noqa: F401
)

BAD_JWT_PREFIX = "invalid JWT: unable to parse or verify signature"

# (method, path, json body) of every `user`-level endpoint; the body is valid for the endpoint,
# so only the token can make it fail.
USER_ENDPOINTS = [
    ("GET", "/user", None),
    ("PUT", "/user", {"data": {"attack": True}}),
    ("POST", "/logout", None),
    ("GET", "/reauthenticate", None),
]
ADMIN_ENDPOINT = ("GET", "/admin/users", None)


def unsigned(claims: dict, alg: str = "none") -> str:
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}."


def claims_of_session(session: dict) -> dict:
    return jwt.get_unverified_claims(session["access_token"])


# One client for the module: building an httpx client per request (its TLS context) costs more
# than the refused request itself.
HTTP = httpx.Client(timeout=TIMEOUT)


def call(server, endpoint, token: str | None, headers: dict | None = None) -> httpx.Response:
    method, path, body = endpoint
    all_headers = {**(bearer(token) if token is not None else {}), **(headers or {})}
    return HTTP.request(method, server.url + path, json=body, headers=all_headers)


def assert_refused_everywhere(server, token: str, status: int, error_code: str, message_prefix: str | None = None,
                              endpoints=USER_ENDPOINTS) -> None:
    for endpoint in endpoints:
        body = assert_error(call(server, endpoint, token), status, error_code)
        if message_prefix is not None:
            assert body["msg"].startswith(message_prefix), (endpoint, body)


def assert_user_untouched(server, user_id: str) -> None:
    """None of the refused PUT /user calls changed anything."""
    [row] = rows(server, "SELECT raw_user_meta_data FROM users WHERE id = $1", user_id)
    meta = row["raw_user_meta_data"]
    if isinstance(meta, str):
        meta = json.loads(meta)
    assert "attack" not in (meta or {}), meta


# --- missing or malformed Authorization --------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Token abc",
                                           "Bearer a b", "bearer\ttoken"])
def test_missing_or_malformed_bearer_is_401(shared, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    for endpoint in [*USER_ENDPOINTS, ADMIN_ENDPOINT]:
        resp = call(shared, endpoint, None, headers)
        assert_error(resp, 401, "no_authorization", "This endpoint requires a valid Bearer token")


# --- signature and algorithm attacks -------------------------------------------------------


def test_alg_none_is_refused(shared):
    session = signup_session(shared)
    claims = claims_of_session(session)
    for alg in ("none", "None", "NONE", "nOnE", ""):
        assert_refused_everywhere(shared, unsigned(claims, alg), 403, "bad_jwt", BAD_JWT_PREFIX)
    # The real signature kept, the header switched to none.
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    _, payload, signature = session["access_token"].split(".")
    assert_refused_everywhere(shared, f"{header}.{payload}.{signature}", 403, "bad_jwt", BAD_JWT_PREFIX)
    # An admin token with alg none.
    admin_claims = {"role": "service_role", "iss": "supabase", "iat": int(time.time()), "exp": int(time.time()) + 600}
    assert_refused_everywhere(shared, unsigned(admin_claims), 403, "bad_jwt", BAD_JWT_PREFIX,
                              endpoints=[ADMIN_ENDPOINT])
    assert_user_untouched(shared, session["user"]["id"])


def test_tampered_payload_is_refused(shared):
    session = signup_session(shared)
    victim = signup_session(shared)
    header, _, signature = session["access_token"].split(".")
    claims = claims_of_session(session)
    for change in ({"role": "service_role"}, {"sub": victim["user"]["id"]}, {"exp": claims["exp"] + 86400},
                   {"aal": "aal2"}, {"email": victim["user"]["email"]}):
        payload = b64url(json.dumps({**claims, **change}).encode())
        assert_refused_everywhere(shared, f"{header}.{payload}.{signature}", 403, "bad_jwt", BAD_JWT_PREFIX)
        assert_refused_everywhere(shared, f"{header}.{payload}.{signature}", 403, "bad_jwt", BAD_JWT_PREFIX,
                                  endpoints=[ADMIN_ENDPOINT])
    # A flipped bit in the signature.
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    payload = session["access_token"].split(".")[1]
    assert_refused_everywhere(shared, f"{header}.{payload}.{flipped}", 403, "bad_jwt", BAD_JWT_PREFIX)
    assert_user_untouched(shared, session["user"]["id"])
    assert_user_untouched(shared, victim["user"]["id"])


def test_signed_with_another_secret_is_refused(shared):
    session = signup_session(shared)
    claims = claims_of_session(session)
    forged = mint(claims, "an-attacker-secret-0123456789abcdefghijkl")
    assert_refused_everywhere(shared, forged, 403, "bad_jwt", BAD_JWT_PREFIX)
    admin = mint({"role": "service_role", "sub": None, "aud": None}, "an-attacker-secret-0123456789abcdefghijkl")
    assert_refused_everywhere(shared, admin, 403, "bad_jwt", BAD_JWT_PREFIX, endpoints=[ADMIN_ENDPOINT])


def test_other_hmac_algorithms_and_unknown_algorithms_are_refused(shared, jwt_secret):
    session = signup_session(shared)
    claims = claims_of_session(session)
    for alg in ("HS384", "HS512"):
        assert_refused_everywhere(shared, mint(claims, algorithm=alg), 403, "bad_jwt", BAD_JWT_PREFIX)
    # An RS256 header over an HMAC made with the secret: the secret is no RSA key.
    for alg in ("RS256", "ES256", "PS256", "EdDSA", "XX999"):
        forged = forge_hmac({"alg": alg, "typ": "JWT"}, claims, jwt_secret.encode())
        assert_refused_everywhere(shared, forged, 403, "bad_jwt", BAD_JWT_PREFIX)


def test_kid_naming_an_unknown_key_is_refused(shared):
    session = signup_session(shared)
    claims = claims_of_session(session)
    attacker = rsa_jwk("attacker-key")
    for kid in ("attacker-key", "../../../../etc/passwd", "' OR 1=1 --", "x" * 300):
        forged = jwt.encode(claims, attacker, algorithm="RS256", headers={"kid": kid})
        assert_refused_everywhere(shared, forged, 403, "bad_jwt", BAD_JWT_PREFIX)
        # HS256 under an unknown kid falls back to the secret (upstream), so only a token made
        # with the secret itself could pass: one made with another secret must not.
        other = mint(claims, "an-attacker-secret-0123456789abcdefghijkl", headers={"kid": kid})
        assert_refused_everywhere(shared, other, 403, "bad_jwt", BAD_JWT_PREFIX)


def test_embedded_keys_in_the_header_are_ignored(make_server, backend):
    """jwk / jku / x5u headers name the attacker's own key: the server must only use its own."""
    key = rsa_jwk("server-key")
    server = make_server(backend, GOTRUE_JWT_KEYS=json.dumps([key]))
    session = signup_session(server)
    claims = claims_of_session(session)
    attacker = rsa_jwk("server-key")  # same kid, different key
    public = {k: attacker[k] for k in ("kty", "n", "e", "kid", "alg")}
    for extra in ({"jwk": public}, {"jku": "http://127.0.0.1:1/jwks.json"}, {"x5u": "http://127.0.0.1:1/cert.pem"}):
        forged = jwt.encode(claims, attacker, algorithm="RS256", headers={"kid": "server-key", **extra})
        assert_refused_everywhere(server, forged, 403, "bad_jwt", BAD_JWT_PREFIX)
    assert call(server, USER_ENDPOINTS[0], session["access_token"]).status_code == 200


def _rsa_public_forms(key: dict) -> list[bytes]:
    """The ways an attacker might feed the server's RSA public key to HMAC."""
    public = {k: key[k] for k in ("kty", "n", "e")}
    pem = jwk.construct(public, "RS256").to_pem()
    published = {k: key[k] for k in ("kty", "n", "e", "kid", "alg")}
    return [pem, pem.strip(), json.dumps(public).encode(), json.dumps(published).encode(),
            base64.urlsafe_b64decode(key["n"] + "==")]


@pytest.mark.parametrize("with_oct_key", [True, False], ids=["rs256+oct", "rs256-only"])
def test_hs256_signed_with_the_rsa_public_key(make_server, backend, jwt_secret, with_oct_key):
    """Algorithm confusion: an HS256 token whose HMAC key is the server's published RSA key."""
    key = rsa_jwk("rsa-attack-1")
    keys = [key]
    if with_oct_key:
        keys.append({"kty": "oct", "k": b64url(jwt_secret.encode()), "kid": "legacy-hs", "alg": "HS256",
                     "key_ops": ["verify"]})
    server = make_server(backend, GOTRUE_JWT_KEYS=json.dumps(keys))
    session = signup_session(server)
    claims = claims_of_session(session)
    assert call(server, USER_ENDPOINTS[0], session["access_token"]).status_code == 200

    published = httpx.get(server.url + "/.well-known/jwks.json", timeout=TIMEOUT).json()["keys"]
    assert [k["kid"] for k in published] == ["rsa-attack-1"]  # never the oct key
    for secret in _rsa_public_forms(key):
        for header in ({"alg": "HS256", "typ": "JWT", "kid": "rsa-attack-1"}, {"alg": "HS256", "typ": "JWT"},
                       {"alg": "HS256", "typ": "JWT", "kid": "legacy-hs"}):
            forged = forge_hmac(header, claims, secret)
            assert_refused_everywhere(server, forged, 403, "bad_jwt", BAD_JWT_PREFIX)
            admin = forge_hmac(header, {**claims, "role": "service_role"}, secret)
            assert_refused_everywhere(server, admin, 403, "bad_jwt", BAD_JWT_PREFIX, endpoints=[ADMIN_ENDPOINT])

    # The legacy secret: accepted only while it is listed as a verify-only oct key.
    legacy = mint(claims)
    if with_oct_key:
        assert call(server, USER_ENDPOINTS[0], legacy).status_code == 200
    else:
        assert_refused_everywhere(server, legacy, 403, "bad_jwt", BAD_JWT_PREFIX)
    assert_user_untouched(server, session["user"]["id"])


# --- time claims ------------------------------------------------------------------------------


def test_expired_token_is_refused(shared):
    session = signup_session(shared)
    claims = claims_of_session(session)
    now = int(time.time())
    for exp in (now - 1, now - 3600, 0):
        token = mint({**claims, "iat": now - 7200, "exp": exp})
        assert_refused_everywhere(shared, token, 403, "bad_jwt", BAD_JWT_PREFIX)
    admin = mint({"role": "service_role", "sub": None, "aud": None, "iat": now - 7200, "exp": now - 5})
    assert_refused_everywhere(shared, admin, 403, "bad_jwt", BAD_JWT_PREFIX, endpoints=[ADMIN_ENDPOINT])


def test_not_yet_valid_token_is_refused(shared):
    session = signup_session(shared)
    claims = claims_of_session(session)
    now = int(time.time())
    token = mint({**claims, "nbf": now + 600})
    assert_refused_everywhere(shared, token, 403, "bad_jwt", BAD_JWT_PREFIX)
    admin = mint({"role": "service_role", "sub": None, "aud": None, "nbf": now + 600})
    assert_refused_everywhere(shared, admin, 403, "bad_jwt", BAD_JWT_PREFIX, endpoints=[ADMIN_ENDPOINT])
    # nbf in the past is fine.
    assert call(shared, USER_ENDPOINTS[0], mint({**claims, "nbf": now - 60})).status_code == 200


def test_token_without_exp_is_accepted_as_upstream(shared):
    """upstream parseJWTClaims (golang-jwt v5 without WithExpirationRequired) checks exp only when
    present: a correctly signed token without one is good, for a user and for an admin."""
    session = signup_session(shared)
    claims = claims_of_session(session)
    no_exp = mint({**claims, "exp": None})
    for endpoint in USER_ENDPOINTS[:2]:
        assert call(shared, endpoint, no_exp).status_code == 200, endpoint
    admin = mint({"role": "service_role", "iss": "supabase", "sub": None, "aud": None, "exp": None})
    assert call(shared, ADMIN_ENDPOINT, admin).status_code == 200
    # Still refused: the same token signed with another secret, and one whose exp has passed.
    forged = mint({**claims, "exp": None}, "an-attacker-secret-0123456789abcdefghijkl")
    assert_refused_everywhere(shared, forged, 403, "bad_jwt", BAD_JWT_PREFIX)
    expired = mint({"role": "service_role", "sub": None, "aud": None, "exp": int(time.time()) - 1})
    assert_refused_everywhere(shared, expired, 403, "bad_jwt", BAD_JWT_PREFIX + ", token has expired",
                              endpoints=[ADMIN_ENDPOINT])


def test_token_without_exp_is_refused_when_exp_is_required(make_server, backend):
    server = make_server(backend, GOTRUE_LITE_REQUIRE_EXP="true")
    session = signup_session(server)
    claims = claims_of_session(session)
    message = BAD_JWT_PREFIX + ', missing required key "exp" among claims'
    assert_refused_everywhere(server, mint({**claims, "exp": None}), 403, "bad_jwt", message)
    admin = mint({"role": "service_role", "sub": None, "aud": None, "exp": None})
    assert_refused_everywhere(server, admin, 403, "bad_jwt", message, endpoints=[ADMIN_ENDPOINT])
    assert_user_untouched(server, session["user"]["id"])
    # Tokens with exp are unaffected.
    assert call(server, USER_ENDPOINTS[0], session["access_token"]).status_code == 200
    assert call(server, ADMIN_ENDPOINT, server.service_role_key).status_code == 200


@pytest.mark.parametrize("exp", ["tomorrow", "", [1], {"a": 1}, True, 1e300])
def test_malformed_exp_is_refused(shared, exp):
    session = signup_session(shared)
    claims = claims_of_session(session)
    token = forge_hmac({"alg": "HS256", "typ": "JWT"}, {**claims, "exp": exp}, b"whatever")
    assert_refused_everywhere(shared, token, 403, "bad_jwt")


# --- well-signed tokens the server no longer honours ---------------------------------------------


def test_wrong_audience_on_get_user(shared):
    session = signup_session(shared)
    token = session["access_token"]
    for aud in ("someone-else", "authenticated2", "AUTHENTICATED", "anon"):
        resp = httpx.get(shared.url + "/user", headers={**bearer(token), "X-JWT-AUD": aud}, timeout=TIMEOUT)
        assert_error(resp, 400, "validation_failed", "Token audience doesn't match request audience")
    # A token minted for another audience is refused too when the server's default applies.
    other = mint({**claims_of_session(session), "aud": "other-audience"})
    resp = httpx.get(shared.url + "/user", headers={**bearer(other), "X-JWT-AUD": "authenticated"}, timeout=TIMEOUT)
    assert_error(resp, 400, "validation_failed", "Token audience doesn't match request audience")


def test_token_of_a_deleted_user(shared):
    session = signup_session(shared)
    user_id = session["user"]["id"]
    assert sql(shared, "DELETE FROM users WHERE id = $1", user_id) == 1
    assert_refused_everywhere(shared, session["access_token"], 403, "user_not_found")
    # A token naming a user that never existed.
    ghost = mint({**claims_of_session(session), "sub": str(uuid.uuid4()), "session_id": None})
    assert_refused_everywhere(shared, ghost, 403, "user_not_found")


def test_token_of_a_logged_out_session(shared):
    email = new_email()
    session = signup_session(shared, email)
    other = signup_session(shared)
    assert logout(shared, session["access_token"], "local").status_code == 204
    assert_refused_everywhere(shared, session["access_token"], 403, "session_not_found")
    # The same token re-signed with the real secret but naming a session that never existed.
    ghost = mint({**claims_of_session(other), "session_id": str(uuid.uuid4())})
    assert_refused_everywhere(shared, ghost, 403, "session_not_found")
    # Unaffected: another user's session.
    assert call(shared, USER_ENDPOINTS[0], other["access_token"]).status_code == 200


def test_admin_token_carrying_a_logged_out_session(shared):
    session = signup_session(shared)
    claims = claims_of_session(session)
    admin_with_session = mint({**claims, "role": "service_role"})
    assert call(shared, ADMIN_ENDPOINT, admin_with_session).status_code == 200
    assert logout(shared, session["access_token"]).status_code == 204
    assert_error(call(shared, ADMIN_ENDPOINT, admin_with_session), 403, "session_not_found")


def test_user_token_is_not_an_admin_token(shared):
    session = signup_session(shared)
    assert_error(call(shared, ADMIN_ENDPOINT, session["access_token"]), 403, "not_admin", "User not allowed")
    assert_error(call(shared, ADMIN_ENDPOINT, shared.anon_key), 403, "not_admin", "User not allowed")
    # The service_role key has no sub: it is no user.
    assert_refused_everywhere(shared, shared.service_role_key, 403, "bad_jwt", "invalid claim: missing sub claim",
                              endpoints=USER_ENDPOINTS[:2])


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "a.b", "....", "eyJhbGciOiJIUzI1NiJ9..", "x" * 6000,
                                   "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln", "W10.e30.", "bnVsbA.e30.sig"])
def test_garbage_tokens_are_403(shared, token):
    assert_refused_everywhere(shared, token, 403, "bad_jwt", BAD_JWT_PREFIX, endpoints=[*USER_ENDPOINTS,
                                                                                       ADMIN_ENDPOINT])


def test_claims_of_the_wrong_type(shared):
    session = signup_session(shared)
    claims = claims_of_session(session)
    for change, status in (({"sub": 12345}, 403), ({"sub": ["a"]}, 403), ({"sub": ""}, 403),
                           ({"session_id": 7}, 403), ({"session_id": {"a": 1}}, 403), ({"role": ["service_role"]}, None)):
        token = mint({**claims, **change})
        for endpoint in USER_ENDPOINTS:
            resp = call(shared, endpoint, token)
            if status is None:
                assert resp.status_code < 500, resp.text
            else:
                assert resp.status_code == status, (change, endpoint, resp.text)
                assert resp.json()["error_code"] == "bad_jwt", resp.text
        admin = call(shared, ADMIN_ENDPOINT, token)
        assert admin.status_code in (403,), (change, admin.text)
