"""Issuing and verifying access-token JWTs, and the public key set at /.well-known/jwks.json."""

from __future__ import annotations

import base64
import hmac
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from jose import jwk
from jose.backends.base import Key

# Tokens are put together and taken apart here, and HMAC is computed with the standard library:
# python-jose's jwt.decode (which parses the header three times) took twice as long, on the path
# of every authenticated request. python-jose still loads every key, and signs and verifies with
# the asymmetric ones.
_HMAC_DIGESTS = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}
SYMMETRIC = set(_HMAC_DIGESTS)

# Exactly three base64url segments: no padding, no whitespace, nothing a lenient decoder would skip.
_COMPACT = re.compile(r"([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)")
# python-jose's claims encoding, so a token reads the same whichever signed it.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# NaN and Infinity are not JSON (RFC 8259), though Python's json reads them.
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


class TokenError(Exception):
    """The bearer token is not one this server accepts (signature, alg, expiry, shape)."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(segment: str) -> bytes:
    data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    # A last group of 2 or 3 characters has unused low bits; unless they are zero, one token
    # would have several spellings.
    tail = len(segment) % 4
    if tail and _b64encode(data[1 - tail:]) != segment[-tail:]:
        raise ValueError("not canonical base64url")
    return data


def _json_object(segment: str) -> dict[str, Any]:
    try:
        value = _DECODER.decode(_b64decode(segment).decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[…" nested past the C stack limit
        raise TokenError("token is malformed") from exc
    if not isinstance(value, dict):
        raise TokenError("token is malformed")
    return value


def _numeric(value: Any) -> bool:
    # bool is an int to Python, and 1e999 reads as infinity.
    return type(value) is int or (type(value) is float and math.isfinite(value))


def _check_claims(claims: dict[str, Any], require_exp: bool) -> None:
    """The registered claims, aud/iss left to the caller. Without require_exp, as upstream
    (golang-jwt v5 without WithExpirationRequired): a token with no exp (absent or null, which Go
    decodes alike) never expires; with it, as python-jose did with exp required."""
    if claims.get("exp") is None and not require_exp:
        claims = {k: v for k, v in claims.items() if k != "exp"}
    elif "exp" not in claims:
        raise TokenError('missing required key "exp" among claims')
    for name in ("exp", "iat", "nbf"):
        if name in claims and not _numeric(claims[name]):
            raise TokenError(f"{name} claim must be a number")
    # Whole seconds and no leeway, as python-jose compared them. Wall-clock time, not clock.now():
    # tests move clock.offset to age a session while its token stays valid.
    now = int(time.time())
    if int(claims.get("nbf", now)) > now:
        raise TokenError("The token is not yet valid (nbf)")
    if int(claims.get("exp", now)) < now:
        raise TokenError("token has expired")
    for name in ("sub", "jti"):
        if name in claims and not isinstance(claims[name], str):
            raise TokenError(f"{name} claim must be a string")


@dataclass(frozen=True)
class _Key:
    kid: str
    alg: str
    key: Key  # signs
    verifier: Key  # verifies: the public half of an asymmetric key (python-jose's private EC keys cannot)
    public: dict[str, Any] | None  # the JWK published in jwks.json; None for secrets
    secret: bytes | None = None  # an HMAC key's bytes, used without python-jose

    def signature(self, signing_input: bytes) -> bytes:
        if self.secret is None:
            return self.key.sign(signing_input)
        return hmac.digest(self.secret, signing_input, _HMAC_DIGESTS[self.alg])

    def signed(self, signing_input: bytes, signature: bytes) -> bool:
        if self.secret is not None:
            return hmac.compare_digest(self.signature(signing_input), signature)
        try:
            return self.verifier.verify(signing_input, signature)
        except Exception:  # as python-jose's jws.verify: a signature the key cannot even parse is no match
            return False


def _load(material: dict[str, Any] | str, alg: str, kid: str) -> _Key:
    key = jwk.construct(material, alg)
    if alg in SYMMETRIC:
        # python-jose has refused a PEM or SSH key posing as a secret; prepared_key is the bytes it HMACs with.
        return _Key(kid=kid, alg=alg, key=key, verifier=key, public=None, secret=key.prepared_key)
    verifier = key.public_key()
    public = {k: v for k, v in verifier.to_dict().items() if k not in ("key_ops", "use")}
    public.update(kid=kid, alg=alg, use="sig", key_ops=["verify"])
    return _Key(kid=kid, alg=alg, key=key, verifier=verifier, public=public)


class KeySet:
    """The configured keys, parsed once at start-up: one signs, every one verifies."""

    def __init__(self, secret: str | None, key_id: str, keys: tuple[dict[str, Any], ...], valid_methods: tuple[str, ...],
                 *, require_exp: bool = False):
        self._require_exp = require_exp  # GOTRUE_LITE_REQUIRE_EXP
        self._by_kid: dict[str, _Key] = {}
        self._secret: _Key | None = _load(secret, "HS256", key_id) if secret else None
        signer: _Key | None = None
        for data in keys:
            loaded = _load(data, data.get("alg") or "HS256", data.get("kid", ""))
            if loaded.kid:
                self._by_kid[loaded.kid] = loaded
            if "sign" in (data.get("key_ops") or ()):
                signer = loaded
        if signer is None:
            signer = self._secret
        if signer is None:
            raise ValueError("no signing key: set GOTRUE_JWT_SECRET or GOTRUE_JWT_KEYS")
        self._signer = signer
        # The header python-jose wrote: its fields, keys sorted, no spaces.
        header = {"alg": signer.alg, "typ": "JWT", **({"kid": signer.kid} if signer.kid else {})}
        self._header = _b64encode(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())
        self._valid = set(valid_methods)
        self.jwks = {"keys": [k.public for k in self._by_kid.values() if k.public]}

    def sign(self, claims: dict[str, Any]) -> str:
        signing_input = f"{self._header}.{_b64encode(_ENCODER.encode(claims).encode())}"
        return f"{signing_input}.{_b64encode(self._signer.signature(signing_input.encode()))}"

    def _key_for(self, header: dict[str, Any]) -> _Key:
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._valid:
            raise TokenError(f"signing method {alg} is invalid")
        kid = header.get("kid")
        key: _Key | None = None
        if isinstance(kid, str) and kid:
            key = self._by_kid.get(kid)
            if key is None and self._secret is not None and kid == self._secret.kid:
                key = self._secret
        if key is None and alg == "HS256":
            key = self._secret
        if key is None:
            raise TokenError("unrecognizable key")
        # The header's algorithm must be the key's own: an RSA public key never serves as an
        # HMAC secret, whatever the token claims.
        if key.alg != alg:
            raise TokenError(f"signing method {alg} is invalid")
        return key

    def verify(self, token: str) -> dict[str, Any]:
        segments = _COMPACT.fullmatch(token)
        if segments is None:
            raise TokenError("token is malformed")
        key = self._key_for(_json_object(segments[1]))
        try:
            signature = _b64decode(segments[3])
        except ValueError as exc:
            raise TokenError("token is malformed") from exc
        # The payload is read only once its signature holds.
        if not key.signed(token[: segments.end(2)].encode(), signature):
            raise TokenError("Signature verification failed.")
        claims = _json_object(segments[2])
        _check_claims(claims, self._require_exp)
        return claims
