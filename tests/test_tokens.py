"""gotrue_lite.tokens without a server: the standard-library HMAC path against python-jose, and tampering.

KeySet signs and verifies HS256/384/512 itself (hmac, base64, json): it must write the tokens
python-jose writes, read the ones it writes, and refuse everything it refused, and also what
python-jose let through: base64 it decoded leniently, a time claim that is a numeric string.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from jose import jwk, jwt
from jose.exceptions import JOSEError

from gotrue_lite import tokens
from gotrue_lite.tokens import KeySet, TokenError
from helpers import b64url, rsa_jwk

SECRET = "a-test-secret-of-at-least-thirty-two-characters"
DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
OPTIONS = {"verify_aud": False, "verify_iss": False, "require_exp": True, "verify_at_hash": False}


def unpadded_b64decode(text: str) -> bytes:
    """How python-jose (and many others) decode a segment: padding added, other characters skipped."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segment(value) -> str:
    return b64url(value if isinstance(value, bytes) else json.dumps(value).encode())


def forge(header, claims, key: bytes = SECRET.encode(), alg: str = "HS256") -> str:
    """A token with any header and payload (objects, or raw bytes), HMAC-signed with any key."""
    signing_input = f"{segment(header)}.{segment(claims)}"
    return f"{signing_input}.{b64url(hmac.new(key, signing_input.encode(), DIGESTS[alg]).digest())}"


def fresh(**changes) -> dict:
    now = int(time.time())
    claims = {"sub": "5f3c1b2a-8d4e-4f6a-9b7c-1d2e3f4a5b6c", "aud": "authenticated", "role": "authenticated",
              "iat": now, "exp": now + 3600, "email": "zoë@example.com", "app_metadata": {"providers": ["email"]},
              "amr": [{"method": "password", "timestamp": now}], "is_anonymous": False, "score": 1.5}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def oct_jwk(alg: str, kid: str) -> dict:
    key = {"kty": "oct", "k": b64url(f"{alg}-{SECRET}".encode()), "alg": alg, "key_ops": ["sign", "verify"]}
    return {**key, "kid": kid} if kid else key


def hmac_keyset(alg: str, kid: str) -> tuple[KeySet, str | dict]:
    """A KeySet signing with an `alg` key, and that key as python-jose takes it."""
    if alg == "HS256":  # GOTRUE_JWT_SECRET (with GOTRUE_JWT_KEY_ID)
        return KeySet(SECRET, kid, (), ("HS256",)), SECRET
    key = oct_jwk(alg, kid)
    return KeySet(None, "", (key,), (alg,)), key


HMAC_CASES = [(alg, kid) for alg in DIGESTS for kid in ("", "key-1")]


@pytest.fixture(scope="module")
def rsa_key() -> dict:
    return rsa_jwk("rsa-1")


@pytest.fixture
def keys() -> KeySet:
    return KeySet(SECRET, "", (), ("HS256",))


@pytest.fixture
def strict_keys() -> KeySet:
    """GOTRUE_LITE_REQUIRE_EXP=true: exp required, as python-jose required it."""
    return KeySet(SECRET, "", (), ("HS256",), require_exp=True)


# --- the same tokens as python-jose ------------------------------------------------------------


@pytest.mark.parametrize("alg,kid", HMAC_CASES)
def test_signing_writes_what_python_jose_writes(alg, kid):
    keyset, jose_key = hmac_keyset(alg, kid)
    claims = fresh()
    token = keyset.sign(claims)
    assert token == jwt.encode(claims, jose_key, algorithm=alg, headers={"kid": kid} if kid else None)
    header = jwt.get_unverified_header(token)
    assert header == ({"alg": alg, "kid": kid, "typ": "JWT"} if kid else {"alg": alg, "typ": "JWT"})
    assert jwt.decode(token, jose_key, algorithms=[alg], options=OPTIONS) == claims


@pytest.mark.parametrize("alg,kid", HMAC_CASES)
def test_python_jose_tokens_verify(alg, kid):
    keyset, jose_key = hmac_keyset(alg, kid)
    claims = fresh()
    token = jwt.encode(claims, jose_key, algorithm=alg, headers={"kid": kid} if kid else None)
    if alg != "HS256" and not kid:
        # Only the HS256 secret answers for a token that names no key (unchanged by the fast path).
        with pytest.raises(TokenError, match="unrecognizable key"):
            keyset.verify(token)
    else:
        assert keyset.verify(token) == claims
        assert keyset.verify(keyset.sign(claims)) == claims


def test_asymmetric_keys_still_sign_and_verify_with_python_jose(rsa_key):
    from cryptography.hazmat.primitives.asymmetric import ec

    numbers = ec.generate_private_key(ec.SECP256R1()).private_numbers()
    ec_key = {"kty": "EC", "alg": "ES256", "kid": "ec-1", "crv": "P-256", "key_ops": ["verify"],
              "x": b64url(numbers.public_numbers.x.to_bytes(32, "big")),
              "y": b64url(numbers.public_numbers.y.to_bytes(32, "big")),
              "d": b64url(numbers.private_value.to_bytes(32, "big"))}
    keyset = KeySet(SECRET, "", (rsa_key, ec_key), ("RS256", "ES256", "HS256"))
    claims = fresh()
    token = keyset.sign(claims)  # the RSA key has "sign" in key_ops
    # RS256 (PKCS#1 v1.5) is deterministic: the very token python-jose writes.
    assert token == jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    public = {k: rsa_key[k] for k in ("kty", "n", "e")}
    assert jwt.decode(token, public, algorithms=["RS256"], options=OPTIONS) == claims
    assert keyset.verify(token) == claims
    ec_token = jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "ec-1"})
    assert keyset.verify(ec_token) == claims
    assert keyset.verify(jwt.encode(claims, SECRET, algorithm="HS256")) == claims
    with pytest.raises(TokenError, match="Signature verification failed"):
        keyset.verify(ec_token[:-4] + ("AAAA" if ec_token[-4:] != "AAAA" else "BBBB"))


# What each claims change does to a token signed with the right secret, given the time now.
CLAIM_VARIANTS = {
    "valid": lambda now: {},
    "expired": lambda now: {"exp": now - 1},
    "long expired": lambda now: {"exp": 0},
    "no exp": lambda now: {"exp": None},
    "nbf in the future": lambda now: {"nbf": now + 600},
    "nbf in the past": lambda now: {"nbf": now - 600},
    "iat in the future": lambda now: {"iat": now + 600},  # neither checks iat against the clock
    "float times": lambda now: {"iat": now + 0.5, "nbf": now - 0.5, "exp": now + 60.5},
    "sub not a string": lambda now: {"sub": 12345},
    "jti not a string": lambda now: {"jti": 7},
    "jti a string": lambda now: {"jti": "abc"},
    "iat not a number": lambda now: {"iat": "yesterday"},
    "exp not a number": lambda now: {"exp": "tomorrow"},
    "aud and iss not checked": lambda now: {"aud": ["x", "y"], "iss": 42},
}


@pytest.mark.parametrize("name", CLAIM_VARIANTS)
def test_claims_are_judged_as_python_jose_judged_them(keys, strict_keys, name):
    token = forge({"alg": "HS256", "typ": "JWT"}, fresh(**CLAIM_VARIANTS[name](int(time.time()))))
    try:
        expected = jwt.decode(token, SECRET, algorithms=["HS256"], options=OPTIONS)
    except JOSEError:
        expected = None
    try:
        got = strict_keys.verify(token)
    except TokenError:
        got = None
    assert got == expected
    # By default the one difference is upstream's: a token without exp is good.
    lax = jwt.decode(token, SECRET, algorithms=["HS256"], options={**OPTIONS, "require_exp": False})  \
        if name == "no exp" else expected
    try:
        assert keys.verify(token) == lax
    except TokenError:
        assert lax is None


def test_a_token_without_exp_never_expires_unless_exp_is_required(keys, strict_keys, monkeypatch):
    """upstream parseJWTClaims: golang-jwt v5 without WithExpirationRequired checks exp only when
    present; JSON null decodes to no exp there as well. GOTRUE_LITE_REQUIRE_EXP refuses both."""
    hs = {"alg": "HS256", "typ": "JWT"}
    service_key = {"role": "service_role", "iss": "supabase", "iat": int(time.time())}
    for claims in (fresh(exp=None), {**fresh(), "exp": None}, service_key):
        token = forge(hs, claims)
        assert keys.verify(token) == claims
        with pytest.raises(TokenError):
            strict_keys.verify(token)
    monkeypatch.setattr(tokens.time, "time", lambda: 32_503_680_000.0)  # the year 3000
    assert keys.verify(forge(hs, service_key)) == service_key
    # Everything else about the token is still checked: a future nbf, a malformed exp.
    for claims in (fresh(exp=None, nbf=32_503_690_000), fresh(exp="never"), fresh(exp=[None])):
        with pytest.raises(TokenError):
            keys.verify(forge(hs, claims))
    with pytest.raises(TokenError, match="Signature verification failed"):
        keys.verify(forge(hs, service_key, b"an-attacker-secret-0123456789abcdefghijkl"))


# --- tampering ----------------------------------------------------------------------------------


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:]


def _tampered(rsa_key) -> dict[str, str]:
    # A good token whose signature has a - or _, which a lenient decoder also reads as + or /.
    good = next(token for token in (jwt.encode(fresh(jti=str(n)), SECRET, algorithm="HS256") for n in range(200))
                if {"-", "_"} & set(token.rsplit(".", 1)[1]))
    header, payload, signature = good.split(".")
    claims = jwt.get_unverified_claims(good)
    hs = {"alg": "HS256", "typ": "JWT"}
    public_pem = jwk.construct({k: rsa_key[k] for k in ("kty", "n", "e")}, "RS256").to_pem()
    # The signature's last character carries 2 unused bits (32 bytes = 43 characters): set one.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sloppy = signature[:-1] + alphabet[alphabet.index(signature[-1]) | 1]
    not_utf8 = b'{"alg":"HS256\xff"}'
    # Each of these decodes, with base64.urlsafe_b64decode, to the good token's own signature.
    lenient = {
        "base64 padding": f"{header}.{payload}.{signature}=",
        "base64 standard alphabet": f"{header}.{payload}.{signature.replace('-', '+').replace('_', '/')}",
        "base64 junk characters": f"{header}.{payload}.{signature[:8]}!*!*{signature[8:]}",
        "base64 non-zero unused bits": f"{header}.{payload}.{sloppy}",
    }
    for token in lenient.values():
        assert unpadded_b64decode(token.rsplit(".", 1)[1]) == unpadded_b64decode(signature), token
    return {
        **lenient,
        "header changed": f"{segment({**hs, 'typ': 'JWS'})}.{payload}.{signature}",
        "header kid added": f"{segment({**hs, 'kid': 'x'})}.{payload}.{signature}",
        "payload changed": f"{header}.{segment({**claims, 'role': 'service_role'})}.{signature}",
        "payload exp extended": f"{header}.{segment({**claims, 'exp': claims['exp'] + 86400})}.{signature}",
        "signature flipped": f"{header}.{payload}.{_flip(signature, 5)}",
        "signature truncated": f"{header}.{payload}.{signature[:-2]}",
        "signature empty": f"{header}.{payload}.",
        "signature of another secret": forge(hs, claims, b"an-attacker-secret-0123456789abcdefghijkl"),
        "alg none": f"{segment({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "alg None": f"{segment({'alg': 'None', 'typ': 'JWT'})}.{payload}.",
        "alg none, real signature": f"{segment({'alg': 'none', 'typ': 'JWT'})}.{payload}.{signature}",
        "alg empty": f"{segment({'alg': '', 'typ': 'JWT'})}.{payload}.{signature}",
        "alg missing": f"{segment({'typ': 'JWT'})}.{payload}.{signature}",
        "alg not a string": f"{segment({'alg': ['HS256'], 'typ': 'JWT'})}.{payload}.{signature}",
        "alg HS384 with the secret": forge({"alg": "HS384"}, claims, alg="HS384"),
        "alg HS512 with the secret": forge({"alg": "HS512"}, claims, alg="HS512"),
        "alg RS256, HMAC with the secret": forge({"alg": "RS256", "kid": "rsa-1"}, claims),
        "alg HS256, HMAC with the RSA PEM": forge({"alg": "HS256", "kid": "rsa-1"}, claims, public_pem),
        "alg RS256 from an unknown kid": jwt.encode(claims, rsa_jwk("other"), algorithm="RS256",
                                                    headers={"kid": "other"}),
        "base64 padding in the header": f"{header}==.{payload}.{signature}",
        "base64 whitespace": f"{header}.{payload[:10]} {payload[10:]}.{signature}",
        "base64 newline at the end": f"{good}\n",
        "base64 non-ASCII": f"{header}.{payload}.{signature[:-1]}é",
        "base64 one character too many": f"{header}.{payload}.{signature}A",
        "two segments": f"{header}.{payload}",
        "four segments": f"{good}.{signature}",
        "empty": "",
        "dots": "..",
        "header not JSON": f"{segment(b'not json')}.{payload}.{signature}",
        "header not UTF-8": f"{segment(not_utf8)}.{payload}.{signature}",
        "header a list": f"{segment([hs])}.{payload}.{signature}",
        "header null": f"{segment(b'null')}.{payload}.{signature}",
        "header nested past the stack": f"{segment(b'[' * 100_000)}.{payload}.{signature}",
        "payload a list": forge(hs, [claims]),
        "payload a string": forge(hs, "claims"),
        "payload a number": forge(hs, b"42"),
        "payload not JSON": forge(hs, b"{not json"),
        "payload exp NaN": forge(hs, json.dumps({**claims, "exp": float("nan")}).encode()),
        "payload exp Infinity": forge(hs, json.dumps({**claims, "exp": float("inf")}).encode()),
        "payload exp 1e999": forge(hs, json.dumps(claims).replace(str(claims["exp"]), "1e999").encode()),
        "exp a numeric string": forge(hs, {**claims, "exp": str(claims["exp"])}),
        "exp true": forge(hs, {**claims, "exp": True}),
        "exp a list": forge(hs, {**claims, "exp": [claims["exp"]]}),
        "expired": forge(hs, fresh(exp=int(time.time()) - 1)),
        "expired long ago": forge(hs, fresh(exp=0)),
        "nbf in the future": forge(hs, fresh(nbf=int(time.time()) + 60)),
        "nbf a string": forge(hs, fresh(nbf="now")),
        "iat a list": forge(hs, fresh(iat=[1])),
        "sub a number": forge(hs, fresh(sub=12345)),
        "jti an object": forge(hs, fresh(jti={"a": 1})),
    }


def test_every_tampering_is_refused(rsa_key):
    keyset = KeySet(SECRET, "", (rsa_key,), ("HS256", "HS384", "HS512", "RS256"))
    assert keyset.verify(jwt.encode(fresh(), SECRET, algorithm="HS256"))["role"] == "authenticated"
    accepted = {}
    for name, token in _tampered(rsa_key).items():
        try:
            accepted[name] = keyset.verify(token)
        except TokenError:
            pass
    assert not accepted


def test_refusals_say_why(strict_keys):
    keys = strict_keys
    claims = fresh()
    hs = {"alg": "HS256", "typ": "JWT"}
    for token, message in (
        ("a.b", "token is malformed"),
        (forge({"alg": "none"}, claims), "signing method none is invalid"),
        (forge({"alg": "RS256", "kid": "nope"}, claims), "signing method RS256 is invalid"),
        (forge(hs, claims, b"another-key"), "Signature verification failed."),
        (forge(hs, fresh(exp=None)), 'missing required key "exp" among claims'),
        (forge(hs, fresh(exp=int(time.time()) - 10)), "token has expired"),
        (forge(hs, fresh(nbf=int(time.time()) + 60)), "The token is not yet valid (nbf)"),
        (forge(hs, fresh(exp="soon")), "exp claim must be a number"),
        (forge(hs, fresh(sub=1)), "sub claim must be a string"),
    ):
        with pytest.raises(TokenError) as caught:
            keys.verify(token)
        assert str(caught.value) == message, token


def test_times_are_whole_seconds_without_leeway(keys, monkeypatch):
    # As python-jose: int(exp) < int(now) has expired, int(nbf) > int(now) is not yet valid.
    monkeypatch.setattr(tokens.time, "time", lambda: 1_000_000.75)
    hs = {"alg": "HS256"}
    assert keys.verify(forge(hs, {"exp": 1_000_000})) == {"exp": 1_000_000}
    assert keys.verify(forge(hs, {"exp": 1_000_000.2, "nbf": 1_000_000.9})) == {"exp": 1_000_000.2, "nbf": 1_000_000.9}
    for claims in ({"exp": 999_999}, {"exp": 999_999.99}, {"exp": 2_000_000, "nbf": 1_000_001}):
        with pytest.raises(TokenError):
            keys.verify(forge(hs, claims))


def test_hmac_secrets_that_are_public_keys_are_refused_at_start_up(rsa_key):
    pem = jwk.construct({k: rsa_key[k] for k in ("kty", "n", "e")}, "RS256").to_pem().decode()
    with pytest.raises(JOSEError):
        KeySet(pem, "", (), ("HS256",))
