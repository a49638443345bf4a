"""Issuing and verifying access-token JWTs, and the public key set at /.well-known/jwks.json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jose import jwk, jwt
from jose.backends.base import Key
from jose.exceptions import ExpiredSignatureError, JOSEError

SYMMETRIC = {"HS256", "HS384", "HS512"}


class TokenError(Exception):
    """The bearer token is not one this server accepts (signature, alg, expiry, shape)."""


@dataclass(frozen=True)
class _Key:
    kid: str
    alg: str
    key: Key  # signs
    verifier: Key  # verifies: the public half of an asymmetric key (python-jose's private EC keys cannot)
    public: dict[str, Any] | None  # the JWK published in jwks.json; None for secrets


def _load_jwk(data: dict[str, Any]) -> _Key:
    alg = data.get("alg") or "HS256"
    key = jwk.construct(data, alg)
    public = None
    verifier = key
    if alg not in SYMMETRIC:
        verifier = key.public_key()
        public = {k: v for k, v in verifier.to_dict().items() if k not in ("key_ops", "use")}
        public.update(kid=data["kid"], alg=alg, use="sig", key_ops=["verify"])
    return _Key(kid=data.get("kid", ""), alg=alg, key=key, verifier=verifier, public=public)


class KeySet:
    """The configured keys, parsed once at start-up: one signs, every one verifies."""

    def __init__(self, secret: str | None, key_id: str, keys: tuple[dict[str, Any], ...], valid_methods: tuple[str, ...]):
        self._by_kid: dict[str, _Key] = {}
        self._secret: _Key | None = None
        signer: _Key | None = None
        if secret:
            hmac_key = jwk.construct(secret, "HS256")
            self._secret = _Key(kid=key_id, alg="HS256", key=hmac_key, verifier=hmac_key, public=None)
        for data in keys:
            loaded = _load_jwk(data)
            if loaded.kid:
                self._by_kid[loaded.kid] = loaded
            if "sign" in (data.get("key_ops") or ()):
                signer = loaded
        if signer is None:
            signer = self._secret
        if signer is None:
            raise ValueError("no signing key: set GOTRUE_JWT_SECRET or GOTRUE_JWT_KEYS")
        self._signer = signer
        self._valid = set(valid_methods)
        self.jwks = {"keys": [k.public for k in self._by_kid.values() if k.public]}

    def sign(self, claims: dict[str, Any]) -> str:
        headers = {"kid": self._signer.kid} if self._signer.kid else None
        return jwt.encode(claims, self._signer.key, algorithm=self._signer.alg, headers=headers)

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
        try:
            header = jwt.get_unverified_header(token)
        except JOSEError as exc:
            raise TokenError("token is malformed") from exc
        key = self._key_for(header)
        try:
            claims = jwt.decode(
                token,
                key.verifier,
                algorithms=[key.alg],
                options={"verify_aud": False, "verify_iss": False, "require_exp": True, "verify_at_hash": False},
            )
        except ExpiredSignatureError as exc:
            raise TokenError("token has expired") from exc
        except JOSEError as exc:
            raise TokenError(str(exc) or "signature is invalid") from exc
        if not isinstance(claims, dict):
            raise TokenError("token is malformed")
        return claims
