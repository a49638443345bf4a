"""A stand-in ID-token verifier for the providers whose user data is an id_token (until oidc.py).

The providers call `verify(provider, id_token, …)` and nothing else, so the generic OIDC machinery
(providers/oidc.py, discovery and JWKS cache) can replace this module in one place. What it does is
upstream's ParseIDToken core (go-oidc's Verifier): discovery of the issuer, the signature against
the issuer's JWKS with an algorithm the discovery document allows, `iss` (unless skipped), `aud`
containing the client id, `exp`, and `at_hash` against the access token when present.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from jose import jwk
from jose.exceptions import JOSEError

from .base import ProviderError

if TYPE_CHECKING:
    from .base import OAuthProvider

_SUPPORTED = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512")
_TTL = 3600.0
_documents: dict[str, tuple[float, dict[str, Any]]] = {}
_key_sets: dict[str, tuple[float, list[dict[str, Any]]]] = {}


async def discover(provider: "OAuthProvider", issuer: str) -> dict[str, Any]:
    """The issuer's discovery document, cached for an hour per issuer."""
    cached = _documents.get(issuer)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    document = await provider.get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if not isinstance(document, dict) or not document.get("jwks_uri"):
        raise ProviderError("the issuer's discovery document has no jwks_uri", status=200)
    _documents[issuer] = (time.monotonic() + _TTL, document)
    return document


async def _keys(provider: "OAuthProvider", jwks_uri: str, *, fresh: bool) -> list[dict[str, Any]]:
    cached = _key_sets.get(jwks_uri)
    if cached and not fresh and cached[0] > time.monotonic():
        return cached[1]
    answer = await provider.get_json(jwks_uri)
    keys = answer.get("keys") if isinstance(answer, dict) else None
    if not isinstance(keys, list):
        raise ProviderError("the issuer's JWKS has no keys", status=200)
    _key_sets[jwks_uri] = (time.monotonic() + _TTL, keys)
    return keys


def _b64json(part: str) -> dict[str, Any]:
    value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


def unverified_claims(id_token: str) -> dict[str, Any]:
    """The payload without any check (Azure reads the issuer before choosing whom to ask)."""
    parts = id_token.split(".")
    if len(parts) != 3:
        raise ProviderError("invalid ID token")
    try:
        return _b64json(parts[1])
    except ValueError:
        raise ProviderError("invalid ID token") from None


def _at_hash(access_token: str, alg: str) -> str:
    digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[alg[-3:]]
    half = digest(access_token.encode()).digest()
    half = half[: len(half) // 2]
    return base64.urlsafe_b64encode(half).rstrip(b"=").decode()


async def verify(provider: "OAuthProvider", id_token: str, *, issuer: str, client_id: str,
                 skip_issuer_check: bool = False, access_token: str = "") -> dict[str, Any]:
    """The verified claims of `id_token`, or ProviderError."""
    parts = id_token.split(".")
    if len(parts) != 3:
        raise ProviderError("oidc: malformed jwt")
    try:
        header = _b64json(parts[0])
        payload = _b64json(parts[1])
    except ValueError:
        raise ProviderError("oidc: malformed jwt") from None
    document = await discover(provider, issuer)
    allowed = [a for a in document.get("id_token_signing_alg_values_supported") or ["RS256"]
               if a in _SUPPORTED]
    alg = header.get("alg")
    if alg not in allowed:
        raise ProviderError(f"oidc: id token signed with unsupported algorithm, expected {allowed} got {alg!r}")
    kid = header.get("kid")
    signed = f"{parts[0]}.{parts[1]}".encode()
    try:
        signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    except ValueError:
        raise ProviderError("oidc: malformed jwt signature") from None
    verified = False
    for fresh in (False, True):  # an unknown kid may be a rotated key: fetch the set once more
        keys = await _keys(provider, str(document["jwks_uri"]), fresh=fresh)
        candidates = [k for k in keys if isinstance(k, dict) and (kid is None or k.get("kid") == kid)]
        for candidate in candidates:
            try:
                if jwk.construct(candidate, alg).verify(signed, signature):
                    verified = True
                    break
            except (JOSEError, ValueError, TypeError, KeyError):
                continue
        if verified or (candidates and kid is not None):
            break
    if not verified:
        raise ProviderError("failed to verify signature: failed to verify id token signature")
    if not skip_issuer_check and payload.get("iss") != issuer:
        raise ProviderError(f"oidc: id token issued by a different provider, expected {issuer!r} "
                            f"got {payload.get('iss')!r}")
    audience = payload.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    if client_id not in audiences:
        raise ProviderError(f"oidc: expected audience {client_id!r} got {audiences!r}")
    expiry = payload.get("exp")
    if not isinstance(expiry, (int, float)) or expiry < time.time():
        raise ProviderError("oidc: token is expired")
    expected_hash = payload.get("at_hash")
    if expected_hash and _at_hash(access_token, alg) != expected_hash:
        raise ProviderError("access token hash does not match value in ID token")
    return payload
