"""A local OpenID provider for the tests: tests/idp/server.mjs (the npm package oidc-provider) on
loopback, serving Keycloak's paths under /realms/test, driven through its /_test/ control API.

Use the `idp` fixture (import it into the test module: `from idp import idp`). It is started once
per test process; `npm ci --prefix tests/idp` runs first when tests/idp/node_modules is missing.
Without node/npm, or when the install or the start fails, the tests are skipped with the reason —
or fail, under GOTRUE_LITE_REQUIRE_CLIENTS=1 (CI).

    idp.issuer                      http://127.0.0.1:<port>/realms/test (Keycloak's realm URL)
    idp.add_client(redirect_uris)   -> (client_id, client_secret), a confidential client
    idp.add_user(email=..., ...)    -> sub; log in as it with login_hint=<sub> on /authorize
    idp.mint_id_token(aud, ...)     an ID token signed by one of the provider's keys (or others)
    idp.code_flow(...)              a whole code flow without GoTrue: the token response
    with idp.fault("token", "hang"): ...   an endpoint that hangs or answers an error
    idp.rotate()                    publish the next signing key in the JWKS
    idp.requests()                  what the provider endpoints were asked
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

IDP_DIR = Path(__file__).parent / "idp"
NPM_TIMEOUT = 600
START_TIMEOUT = 30


def _pinned() -> dict[str, str]:
    return json.loads((IDP_DIR / "package.json").read_text())["dependencies"]


def _installed_mismatch() -> str | None:
    for name, wanted in _pinned().items():
        manifest = IDP_DIR / "node_modules" / name / "package.json"
        if not manifest.is_file():
            return f"{name} is not installed"
        version = json.loads(manifest.read_text()).get("version")
        if re.fullmatch(r"\d+\.\d+\.\d+", wanted) and version != wanted:
            return f"{name} {version} is installed, package.json pins {wanted}"
    return None


def _install() -> tuple[str | None, str | None]:
    """(node, None) when tests/idp can run, else (None, why not)."""
    node = shutil.which("node")
    if node is None:
        return None, "node is not installed (needed to run the local OpenID provider)"
    lock_path = Path(tempfile.gettempdir()) / f"gotrue-lite-idp-{hashlib.sha1(str(IDP_DIR).encode()).hexdigest()[:12]}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers and other test runs share node_modules
        mismatch = _installed_mismatch()
        if mismatch is None:
            return node, None
        npm = shutil.which("npm")
        if npm is None:
            return None, f"npm is not installed and tests/idp/node_modules is not ready ({mismatch})"
        try:
            proc = subprocess.run([npm, "ci", "--prefix", str(IDP_DIR), "--no-audit", "--no-fund"],
                                  capture_output=True, text=True, timeout=NPM_TIMEOUT)
        except (OSError, subprocess.SubprocessError) as exc:
            return None, f"`npm ci --prefix tests/idp` did not finish: {exc!r}"
        if proc.returncode != 0:
            return None, f"`npm ci --prefix tests/idp` failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-2000:]}"
        mismatch = _installed_mismatch()
        if mismatch:
            return None, f"after `npm ci`, tests/idp/node_modules is still not ready: {mismatch}"
        return node, None


class LocalIdP:
    """A running tests/idp/server.mjs and its control API."""

    def __init__(self, proc: subprocess.Popen, origin: str, issuer: str, stderr_path: Path, ca_file: str | None = None):
        self.proc = proc
        self.origin = origin
        self.issuer = issuer
        self.ca_file = ca_file  # the throw-away CA an https provider's certificate chains to
        self._stderr_path = stderr_path
        self._http = httpx.Client(timeout=30, verify=self.verify)

    @property
    def verify(self) -> Any:
        """What an HTTP client passes as `verify` to talk to this provider."""
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True

    # --- setup -------------------------------------------------------------------------

    def _control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = self._http.post(self.origin + path, json=body)
        assert resp.status_code in (200, 201), f"{path}: {resp.status_code} {resp.text}"
        return resp.json()

    def add_client(self, redirect_uris: list[str], client_id: str | None = None,
                   client_secret: str | None = None, **metadata: Any) -> tuple[str, str]:
        client_id = client_id or f"client-{uuid.uuid4().hex[:10]}"
        client_secret = client_secret or uuid.uuid4().hex
        self._control("/_test/clients", {"client_id": client_id, "client_secret": client_secret,
                                         "redirect_uris": redirect_uris, **metadata})
        return client_id, client_secret

    def add_user(self, sub: str | None = None, **claims: Any) -> str:
        """An account releasing `claims` by scope (email, email_verified, name, …); returns its sub."""
        sub = sub or f"user-{uuid.uuid4().hex[:12]}"
        self._control("/_test/users", {"sub": sub, "claims": claims})
        return sub

    def mint_id_token(self, aud: str | list[str], **spec: Any) -> str:
        """An ID token for `aud`; spec: sub, nonce, claims, key (current|es256|rotated|next|
        unknown), alg (RS256|ES256|none), expires_in, iat, nbf, access_token (→ at_hash), iss, kid."""
        return self._control("/_test/id_token", {"aud": aud, **spec})["id_token"]

    def rotate(self) -> str:
        """Publish the `next` key; returns its kid."""
        return self._control("/_test/rotate", {})["kid"]

    @contextlib.contextmanager
    def fault(self, endpoint: str, mode: str = "status", status: int = 500, body: Any = None,
              content_type: str = "application/json") -> Iterator[None]:
        """endpoint: discovery|auth|token|userinfo|certs; mode: hang (never answers) or status."""
        self._control("/_test/fault", {"endpoint": endpoint, "mode": mode, "status": status,
                                       "body": body, "content_type": content_type})
        try:
            yield
        finally:
            self._control("/_test/fault", {"endpoint": endpoint, "mode": "off"})

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        seen = self._http.get(self.origin + "/_test/requests").json()
        return [r for r in seen if endpoint is None or r["endpoint"] == endpoint]

    # --- a relying party without GoTrue --------------------------------------------------------

    def authorize(self, client_id: str, redirect_uri: str, login_hint: str, *, scope: str = "openid email profile",
                  **params: str) -> dict[str, str]:
        """Follow the provider's redirects as a browser would; the callback's query parameters."""
        query = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code",
                 "scope": scope, "state": uuid.uuid4().hex, "login_hint": login_hint, **params}
        with httpx.Client(timeout=30, verify=self.verify) as browser:
            resp = browser.get(f"{self.issuer}/protocol/openid-connect/auth", params=query)
            for _ in range(10):
                location = resp.headers.get("location")
                assert resp.is_redirect and location, f"{resp.status_code} {resp.text[:500]}"
                url = urljoin(str(resp.url), location)
                if url.startswith(redirect_uri):
                    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
                resp = browser.get(url)
        raise AssertionError("the provider did not redirect back")

    def code_flow(self, client_id: str, client_secret: str, redirect_uri: str, login_hint: str,
                  **params: str) -> dict[str, Any]:
        """A real authorization-code flow (nonce etc. in params); the token endpoint's answer."""
        answer = self.authorize(client_id, redirect_uri, login_hint, **params)
        assert "code" in answer, answer
        resp = self._http.post(f"{self.issuer}/protocol/openid-connect/token",
                               data={"grant_type": "authorization_code", "code": answer["code"],
                                     "redirect_uri": redirect_uri}, auth=(client_id, client_secret))
        assert resp.status_code == 200, resp.text
        return resp.json()

    def keycloak_env(self, redirect_uri: str, client_id: str, secret: str) -> dict[str, str]:
        """GOTRUE_EXTERNAL_KEYCLOAK_* settings pointing at this provider."""
        return {"GOTRUE_EXTERNAL_KEYCLOAK_ENABLED": "true", "GOTRUE_EXTERNAL_KEYCLOAK_CLIENT_ID": client_id,
                "GOTRUE_EXTERNAL_KEYCLOAK_SECRET": secret, "GOTRUE_EXTERNAL_KEYCLOAK_URL": self.issuer,
                "GOTRUE_EXTERNAL_KEYCLOAK_REDIRECT_URI": redirect_uri}

    def stderr(self) -> str:
        return self._stderr_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        self._http.close()
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # the server exits when its stdin closes
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_idp(directory: Path, *, https: bool = False) -> LocalIdP:
    """Start the provider; `https`: over TLS with a certificate from a throw-away CA."""
    node, problem = _install()
    if problem:
        raise RuntimeError(problem)
    stderr_path = directory / "idp.stderr"
    env, ca_file = dict(os.environ), None
    if https:
        from oidc_issuer import tls_files

        ca_file, _ = tls_files(directory)
        env.update(IDP_TLS_CERT=str(directory / "cert.pem"), IDP_TLS_KEY=str(directory / "key.pem"))
    with open(stderr_path, "w") as stderr:
        proc = subprocess.Popen([node, str(IDP_DIR / "server.mjs")], cwd=IDP_DIR, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT)
    if not first or not first[0].strip():
        proc.kill()
        proc.wait(timeout=10)
        raise RuntimeError(f"tests/idp/server.mjs did not start: {stderr_path.read_text(errors='replace')[-2000:]}")
    hello = json.loads(first[0])
    return LocalIdP(proc, hello["origin"], hello["issuer"], stderr_path, ca_file)


@pytest.fixture(scope="session")
def idp(tmp_path_factory) -> Iterator[LocalIdP]:
    """The local OpenID provider (one per test process); skip, or fail in CI, when it cannot run."""
    yield from _running(tmp_path_factory.mktemp("idp"))


@pytest.fixture(scope="session")
def idp_https(tmp_path_factory) -> Iterator[LocalIdP]:
    """The same provider served over https (its CA in `.ca_file`), for custom OIDC providers."""
    yield from _running(tmp_path_factory.mktemp("idp-https"), https=True)


def _running(directory: Path, **options: Any) -> Iterator[LocalIdP]:
    try:
        provider = start_idp(directory, **options)
    except RuntimeError as exc:
        if os.environ.get("GOTRUE_LITE_REQUIRE_CLIENTS") == "1":
            pytest.fail(f"GOTRUE_LITE_REQUIRE_CLIENTS=1 but the local OpenID provider cannot run: {exc}", pytrace=False)
        pytest.skip(f"the local OpenID provider cannot run: {exc}")
    try:
        yield provider
    finally:
        provider.stop()
