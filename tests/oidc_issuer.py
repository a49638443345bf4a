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
        self.person: dict[str, Any] = {"sub": "subject-1"}  # who logs in at /auth
        self.codes: dict[str, dict[str, Any]] = {}
        self.token_requests: list[dict[str, str]] = []
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

        async def authorize(request: web.Request) -> web.Response:
            # a non-interactive login as `self.person`: straight back with a code
            q = request.query
            code = uuid.uuid4().hex
            self.codes[code] = {"client_id": q.get("client_id"), "nonce": q.get("nonce"),
                                "redirect_uri": q.get("redirect_uri")}
            raise web.HTTPFound(f"{q['redirect_uri']}?code={code}&state={q.get('state', '')}")

        async def token(request: web.Request) -> web.Response:
            form = dict(await request.post())
            self.token_requests.append({**form, "authorization": request.headers.get("Authorization", "")})
            grant = self.codes.pop(form.get("code", ""), None)
            if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                return web.json_response({"error": "invalid_grant"}, status=400)
            access = uuid.uuid4().hex
            claims = self.claims(**{k: v for k, v in self.person.items()})
            claims["aud"] = grant["client_id"]
            claims["at_hash"] = at_hash(access)
            if grant["nonce"]:
                claims["nonce"] = grant["nonce"]
            return web.json_response({"access_token": access, "token_type": "Bearer", "expires_in": 300,
                                      "id_token": self.mint(claims)})

        app = web.Application()
        app.router.add_get(self.path + "/.well-known/openid-configuration", discovery)
        app.router.add_get(self.path + "/jwks", jwks)
        app.router.add_get(self.path + "/auth", authorize)
        app.router.add_post(self.path + "/token", token)
        return app


def tls_files(directory) -> tuple[str, "ssl.SSLContext"]:
    """A throw-away CA and a certificate for 127.0.0.1 it signed: (CA PEM path, server context)."""
    import datetime
    import ipaddress
    import ssl
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    directory = Path(directory)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gotrue-lite test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return str(directory / "ca.pem"), context


@contextlib.contextmanager
def running_issuer(*, tls=None, **kwargs: Any) -> Iterator[Issuer]:
    """`tls`: a server SSLContext (tls_files) to serve https."""
    issuer = Issuer(**kwargs)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True, name="oidc-issuer")
    thread.start()

    async def start() -> web.AppRunner:
        runner = web.AppRunner(issuer.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        issuer.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}{issuer.path}"
        return runner

    runner = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield issuer
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
