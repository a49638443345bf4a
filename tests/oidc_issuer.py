"""A minimal OpenID issuer on 127.0.0.1 for the OIDC machinery's tests: a discovery document and
a JWKS (RSA, EC P-256, Ed25519 keys made with `cryptography`), key rotation, request counters
and failure switches; tokens are minted with PyJWT. (The full OpenID provider for end-to-end
flows is tests/idp/, npm oidc-provider.)

    with running_issuer() as issuer:
        token = issuer.mint({"sub": "u1", "aud": "client"})        # RS256, current key
        ... issuer.url is the issuer; issuer.rotate() replaces the keys ...
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import threading
import time
import uuid
from typing import Any, Iterator

import jwt as pyjwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


def b64url_int(value: int) -> str:
    data = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def at_hash(access_token: str, alg: str = "RS256") -> str:
    digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[alg[-3:]]
    full = digest(access_token.encode()).digest()
    return b64url(full[: len(full) // 2])


class Key:
    """A private key with its kid, its JWS alg, and its public JWK."""

    def __init__(self, kind: str, alg: str | None = None, *, pin_alg: bool = True):
        self.kid = f"{kind}-{uuid.uuid4().hex[:8]}"
        if kind == "rsa":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            numbers = self.private.public_key().public_numbers()
            self.alg = alg or "RS256"
            self.jwk = {"kty": "RSA", "n": b64url_int(numbers.n), "e": b64url_int(numbers.e)}
        elif kind == "ec":
            self.private = ec.generate_private_key(ec.SECP256R1())
            numbers = self.private.public_key().public_numbers()
            self.alg = alg or "ES256"
            self.jwk = {"kty": "EC", "crv": "P-256", "x": b64url(numbers.x.to_bytes(32, "big")),
                        "y": b64url(numbers.y.to_bytes(32, "big"))}
        elif kind == "ed25519":
            self.private = ed25519.Ed25519PrivateKey.generate()
            from cryptography.hazmat.primitives import serialization
            raw = self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            self.alg = alg or "EdDSA"
            self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
        else:
            raise ValueError(kind)
        self.jwk.update(kid=self.kid, use="sig")
        if pin_alg:
            self.jwk["alg"] = self.alg


class Issuer:
    """The issuer's state; served by a thread of its own (see running_issuer)."""

    def __init__(self, algorithms: list[str] | None = None, path: str = "") -> None:
        self.path = path  # the issuer URL's path, e.g. /realms/test (keycloak's shape)
        self.keys = [Key("rsa"), Key("ec"), Key("ed25519")]
        self.algorithms = algorithms or ["RS256", "ES256", "EdDSA", "PS256"]
        self.url = ""
        self.issuer_override: str | None = None  # the document claims another issuer
        self.fail_discovery: int | None = None  # HTTP status to answer discovery with
        self.fail_jwks: int | None = None
        self.hits = {"discovery": 0, "jwks": 0}
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def key(self) -> Key:
        return self.keys[0]

    def rotate(self) -> Key:
        """A new RSA key replaces the current one: tokens of the old one stop verifying."""
        self.keys[0] = Key("rsa")
        return self.keys[0]

    def document(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer_override if self.issuer_override is not None else self.url,
            "authorization_endpoint": self.url + "/auth",
            "token_endpoint": self.url + "/token",
            "userinfo_endpoint": self.url + "/userinfo",
            "jwks_uri": self.url + "/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": self.algorithms,
        }

    def claims(self, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": self.url, "sub": "subject-1", "aud": "client-1", "iat": now, "exp": now + 600,
                **extra}

    def mint(self, claims: dict[str, Any] | None = None, *, key: Key | None = None, alg: str | None = None,
             kid: str | None = None, headers: dict[str, Any] | None = None) -> str:
        key = key or self.key
        hdr: dict[str, Any] = {"kid": key.kid if kid is None else kid}
        if kid == "":
            hdr = {}
        hdr.update(headers or {})
        return pyjwt.encode(self.claims() if claims is None else claims, key.private,
                            algorithm=alg or key.alg, headers=hdr)

    # --- the HTTP side -----------------------------------------------------------------------

    def app(self) -> web.Application:
        async def discovery(request: web.Request) -> web.Response:
            self.hits["discovery"] += 1
            if self.fail_discovery:
                return web.json_response({"error": "unavailable"}, status=self.fail_discovery)
            return web.json_response(self.document())

        async def jwks(request: web.Request) -> web.Response:
            self.hits["jwks"] += 1
            if self.fail_jwks:
                return web.json_response({"error": "unavailable"}, status=self.fail_jwks)
            return web.json_response({"keys": [k.jwk for k in self.keys]})

        app = web.Application()
        app.router.add_get(self.path + "/.well-known/openid-configuration", discovery)
        app.router.add_get(self.path + "/jwks", jwks)
        return app


@contextlib.contextmanager
def running_issuer(**kwargs: Any) -> Iterator[Issuer]:
    issuer = Issuer(**kwargs)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True, name="oidc-issuer")
    thread.start()

    async def start() -> web.AppRunner:
        runner = web.AppRunner(issuer.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        issuer.url = f"http://127.0.0.1:{port}{issuer.path}"
        return runner

    runner = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield issuer
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
