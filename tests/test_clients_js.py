"""The published JavaScript clients against a real server: @supabase/auth-js and the `auth`
namespace of @supabase/supabase-js, run by Node (tests/clients/*.mjs, one JSON line per step).

Node and npm are needed. When tests/clients/node_modules is missing (or does not hold the pinned
versions) the first test runs `npm ci` there. Without node/npm, or when the install fails, the
tests are skipped with the reason — or fail, under GOTRUE_LITE_REQUIRE_CLIENTS=1 (CI).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from helpers import b64url, claims_of, rows

CLIENTS = Path(__file__).parent / "clients"
SITE_URL = "http://localhost:3000"
REFRESH_TOKEN = re.compile(r"^[a-z2-7]{12}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CODE = re.compile(r"^\d{6}$")
SCRIPT_TIMEOUT = 120  # seconds for one scenario (they take 1–5 s)
NPM_TIMEOUT = 600

# Mail flows send several messages to one address within seconds.
MAIL_ENV = {"GOTRUE_MAILER_AUTOCONFIRM": "false", "GOTRUE_SMTP_MAX_FREQUENCY": "1ms",
            "GOTRUE_RATE_LIMIT_EMAIL_SENT": "1000"}


# --- Node, npm and the installed packages ------------------------------------------------------


def _pinned() -> dict[str, str]:
    return json.loads((CLIENTS / "package.json").read_text())["dependencies"]


def _installed_mismatch() -> str | None:
    """Why node_modules does not hold what package.json pins (None when it does)."""
    for name, spec in _pinned().items():
        manifest = CLIENTS / "node_modules" / name / "package.json"
        if not manifest.is_file():
            return f"{name} is not installed"
        version = json.loads(manifest.read_text()).get("version")
        wanted = spec.rsplit("@", 1)[-1] if spec.startswith("npm:") else spec
        if re.fullmatch(r"\d+\.\d+\.\d+(-[\w.]+)?", wanted) and version != wanted:
            return f"{name} {version} is installed, package.json pins {wanted}"
    return None


def _prepare_clients() -> tuple[str | None, str | None]:
    """(path of node, None) when the clients can run, else (None, the reason they cannot)."""
    node = shutil.which("node")
    if node is None:
        return None, "node is not installed (needed to run the published JS clients)"
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"node does not run: {exc!r}"
    major = int(re.match(r"v(\d+)", version).group(1)) if re.match(r"v(\d+)", version) else 0
    if major < 20:
        return None, f"node {version} is too old (the clients need 20 or newer: fetch, WebCrypto)"
    # Several pytest processes (xdist workers, a colleague's run) may get here at once.
    lock_path = Path(tempfile.gettempdir()) / f"gotrue-lite-npm-{hashlib.sha1(str(CLIENTS).encode()).hexdigest()[:12]}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _install(node)


def _install(node: str) -> tuple[str | None, str | None]:
    mismatch = _installed_mismatch()
    if mismatch is None:
        return node, None
    npm = shutil.which("npm")
    if npm is None:
        return None, f"npm is not installed and tests/clients/node_modules is not ready ({mismatch})"
    try:
        proc = subprocess.run([npm, "ci", "--prefix", str(CLIENTS), "--no-audit", "--no-fund"],
                              capture_output=True, text=True, timeout=NPM_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"`npm ci --prefix tests/clients` did not finish: {exc!r}"
    if proc.returncode != 0:
        return None, (f"`npm ci --prefix tests/clients` failed ({proc.returncode}):\n"
                      f"{(proc.stdout + proc.stderr)[-2000:]}")
    mismatch = _installed_mismatch()
    if mismatch:
        return None, f"after `npm ci`, tests/clients/node_modules is still not ready: {mismatch}"
    return node, None


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable, once the pinned clients are installed; skip (or fail) otherwise."""
    path, problem = _prepare_clients()
    if problem:
        if os.environ.get("GOTRUE_LITE_REQUIRE_CLIENTS") == "1":
            pytest.fail(f"GOTRUE_LITE_REQUIRE_CLIENTS=1 but {problem}", pytrace=False)
        pytest.skip(problem)
    return path


# --- running a scenario ---------------------------------------------------------------------------


@dataclass
class Run:
    """The steps one scenario printed, by name."""

    script: str
    scenario: str
    tag: str
    steps: dict[str, dict[str, Any]]
    stderr: str

    def email(self, name: str) -> str:
        return f"{name}-{self.tag}@example.com"

    def __getitem__(self, name: str) -> dict[str, Any]:
        assert name in self.steps, f"{self.script} {self.scenario}: no step {name!r}; ran {list(self.steps)}"
        return self.steps[name]

    def ok(self, name: str) -> Any:
        """The data of a step that must have succeeded."""
        line = self[name]
        assert line["ok"], f"{self.script} {self.scenario} step {name!r} failed: {line['error']}\n{self._context(line)}"
        return line["data"]

    def error(self, name: str, status: int | None, code: str | None, error_name: str = "AuthApiError") -> dict:
        """The error of a step that must have failed as stated."""
        line = self[name]
        error = line["error"]
        assert error is not None, f"{self.script} {self.scenario} step {name!r} succeeded, expected {status} {code}: {line['data']}"
        assert (error["name"], error["status"], error["code"]) == (error_name, status, code), \
            f"{self.script} {self.scenario} step {name!r}: {error}\n{self._context(line)}"
        return error

    def events(self, name: str, client: str | None = None) -> list[str]:
        """Auth events fired during a step (INITIAL_SESSION, fired by every new client, left out)."""
        return [e["event"] for e in self[name]["events"]
                if e["event"] != "INITIAL_SESSION" and (client is None or e["client"] == client)]

    def requests(self, name: str) -> list[tuple[str, str, int]]:
        return [(r["method"], r["path"], r["status"]) for r in self[name]["requests"]]

    def all_requests(self) -> list[dict[str, Any]]:
        return [r for line in self.steps.values() for r in line["requests"]]

    def _context(self, line: dict) -> str:
        return f"requests: {self.requests(line['step'])}\nstderr: {self.stderr[-1500:]}"


def run_js(node: str, script: str, scenario: str, server, env: dict[str, str] | None = None,
           **extra_env: str) -> Run:
    # Starts with a letter: an all-digit tag in an address would read as the mailed code.
    tag = "t" + uuid.uuid4().hex[:10]
    env = {**os.environ, "GL_ANON_KEY": server.anon_key, "GL_SERVICE_ROLE_KEY": server.service_role_key,
           "GL_TAG": tag, **(env or {}), **extra_env}
    proc = subprocess.run([node, str(CLIENTS / script), scenario, server.url], cwd=CLIENTS, env=env,
                          capture_output=True, text=True, timeout=SCRIPT_TIMEOUT)
    steps: dict[str, dict[str, Any]] = {}
    for raw in proc.stdout.splitlines():
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            pytest.fail(f"{script} {scenario} printed a non-JSON line: {raw!r}\nstderr: {proc.stderr[-3000:]}")
        assert line["step"] not in steps, f"{script} {scenario}: step {line['step']!r} printed twice"
        steps[line["step"]] = line
    if "done" not in steps or proc.returncode != 0:
        crashed = steps.get("crashed")
        pytest.fail(f"{script} {scenario} did not finish (exit {proc.returncode}); last steps "
                    f"{list(steps)[-3:]}; crash: {crashed and (crashed['error'], crashed.get('stack'))}\n"
                    f"stderr: {proc.stderr[-3000:]}", pytrace=False)
    return Run(script, scenario, tag, steps, proc.stderr)


# --- shared checks -------------------------------------------------------------------------------


def assert_session(session: dict | None, email: str | None = None) -> dict:
    """A session as the client hands it to the app; returns its access-token claims."""
    assert session, "expected a session"
    assert session["token_type"] == "bearer"
    assert type(session["expires_in"]) is int and 0 < session["expires_in"] <= 3600
    assert type(session["expires_at"]) is int
    assert REFRESH_TOKEN.match(session["refresh_token"]), session["refresh_token"]
    user, claims = session["user"], session["claims"]
    assert user and UUID.match(user["id"])
    assert claims["sub"] == user["id"] and claims["exp"] == session["expires_at"]
    assert claims["aud"] == "authenticated" and claims["role"] == "authenticated"
    assert UUID.match(claims["session_id"])
    if email is not None:
        assert user["email"] == email and claims["email"] == email
    return claims


def assert_secure_email_change(run, current: str, moved: str) -> dict:
    """The steps of lib.mjs secureEmailChange as the user sees them: a code mailed to each address
    (and again on resend), the first confirmation without a session, the second signs in at the
    new address. Returns the first pair of mails."""
    sent = run.ok("mail_email_change")
    assert (sent["new"]["to"], sent["current"]["to"]) == (moved, current)
    assert sent["new"]["type"] == sent["current"]["type"] == "email_change"
    resent = run.ok("mail_email_change_resent")
    assert resent["new"]["total"] == sent["new"]["total"] + 1
    assert resent["current"]["total"] == sent["current"]["total"] + 1
    half = run.ok("verifyOtp_email_change_new")
    assert half == {"user": None, "session": None}, "first of two confirmations: no session yet"
    assert run.events("verifyOtp_email_change_new") == []
    done = run.ok("verifyOtp_email_change_current")
    assert_session(done["session"], moved)
    assert "new_email" not in done["user"]
    assert run.events("verifyOtp_email_change_current") == ["SIGNED_IN"]
    assert run.ok("getUser_after_email_change")["user"]["email"] == moved
    assert_session(run.ok("signIn_new_email")["session"], moved)
    return sent


def amr_methods(claims: dict) -> list[str]:
    return [entry["method"] for entry in claims["amr"]]


def token_hash(address: str, otp: str) -> str:
    return hashlib.sha224(f"{address}{otp}".encode()).hexdigest()


def mails(server, address: str) -> list[dict]:
    resp = httpx.get(f"{server.url}/_dev/mail", params={"email": address}, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()["messages"]


def _b64int(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def private_jwk(alg: str, kid: str) -> dict:
    """A fresh private ES256 or RS256 JWK that may sign."""
    if alg == "ES256":
        numbers = ec.generate_private_key(ec.SECP256R1()).private_numbers()
        members = {"kty": "EC", "crv": "P-256",
                   "x": b64url(numbers.public_numbers.x.to_bytes(32, "big")),
                   "y": b64url(numbers.public_numbers.y.to_bytes(32, "big")),
                   "d": b64url(numbers.private_value.to_bytes(32, "big"))}
    else:
        numbers = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers()
        members = {"kty": "RSA", "n": _b64int(numbers.public_numbers.n), "e": _b64int(numbers.public_numbers.e),
                   "d": _b64int(numbers.d), "p": _b64int(numbers.p), "q": _b64int(numbers.q),
                   "dp": _b64int(numbers.dmp1), "dq": _b64int(numbers.dmq1), "qi": _b64int(numbers.iqmp)}
    return {**members, "kid": kid, "alg": alg, "key_ops": ["sign", "verify"]}


def asymmetric_keys(alg: str, secret: str) -> tuple[str, str]:
    """GOTRUE_JWT_KEYS with an asymmetric signing key and the HS256 secret kept for verifying
    the anon/service_role keys; and the signing key's kid."""
    kid = f"js-{alg.lower()}-{uuid.uuid4().hex[:8]}"
    signing = private_jwk(alg, kid)
    legacy = {"kty": "oct", "k": b64url(secret.encode()), "kid": "legacy-hs256", "alg": "HS256",
              "key_ops": ["verify"]}
    return json.dumps([signing, legacy]), kid


# --- @supabase/auth-js ------------------------------------------------------------------------


def test_auth_js_password_session_flows(node, make_server, backend):
    server = make_server(backend, GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED="true")
    run = run_js(node, "auth_js.mjs", "password", server)
    ada = run.email("ada")

    assert run.ok("initialize")["session"] is None
    assert [e["event"] for e in run["initialize"]["events"]] == ["INITIAL_SESSION"]

    # signUp with data and emailRedirectTo; autoconfirm is on, so a session comes back.
    data = run.ok("signUp")
    claims = assert_session(data["session"], ada)
    user = data["user"]
    assert user["email_confirmed_at"] and user["is_anonymous"] is False
    assert user["user_metadata"]["name"] == "Ada" and user["user_metadata"]["plan"] == "pro"
    assert user["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert [i["provider"] for i in user["identities"]] == ["email"]
    assert amr_methods(claims) == ["password"] and claims["aal"] == "aal1" and claims["is_anonymous"] is False
    [request] = run["signUp"]["requests"]
    assert (request["method"], request["path"], request["status"]) == ("POST", "/signup", 200)
    assert request["query"] == {"redirect_to": f"{SITE_URL}/welcome"}
    assert request["api_version"] == "2024-01-01"
    assert run.events("signUp") == ["SIGNED_IN"]

    run.error("signUp_existing", 422, "user_already_exists")
    weak = run.error("signUp_weak_password", 422, "weak_password", "AuthWeakPasswordError")
    assert weak["reasons"] == ["length"]
    run.error("signUp_invalid_email", 400, "validation_failed")
    for name in ("signIn_wrong_password", "signIn_unknown_user"):
        run.error(name, 400, "invalid_credentials")
        assert run.events(name) == []

    signed_in = run.ok("signInWithPassword")["session"]
    claims = assert_session(signed_in, ada)
    assert signed_in["user"]["id"] == user["id"]
    assert claims["session_id"] != data["session"]["claims"]["session_id"], "every sign-in is a new session"
    assert run.events("signInWithPassword") == ["SIGNED_IN"]

    assert run.ok("getSession")["session"]["access_token"] == signed_in["access_token"]
    assert run.requests("getSession") == []
    assert run.ok("getUser")["user"]["id"] == user["id"]
    assert run.requests("getUser") == [("GET", "/user", 200)]
    assert run["getUser"]["requests"][0]["bearer"] == signed_in["access_token"]

    # HS256 tokens: getClaims cannot verify locally and asks the server (GET /user).
    got = run.ok("getClaims")
    assert got["header"]["alg"] == "HS256" and "kid" not in got["header"]
    assert got["claims"]["sub"] == user["id"] and got["claims"]["session_id"] == claims["session_id"]
    assert run.requests("getClaims") == [("GET", "/user", 200)]

    refreshed = run.ok("refreshSession")["session"]
    assert_session(refreshed, ada)
    assert refreshed["refresh_token"] != signed_in["refresh_token"]
    assert refreshed["claims"]["session_id"] == claims["session_id"]
    assert run.events("refreshSession") == ["TOKEN_REFRESHED"]
    [request] = run["refreshSession"]["requests"]
    assert (request["path"], request["query"], request["status"]) == ("/token", {"grant_type": "refresh_token"}, 200)
    assert run.ok("getSession_after_refresh")["session"]["access_token"] == refreshed["access_token"]
    run.ok("getUser_after_refresh")

    adopted = run.ok("setSession")
    assert adopted["session"]["access_token"] == refreshed["access_token"]
    assert adopted["user"]["id"] == user["id"]
    assert run.events("setSession", "adopter") == ["SIGNED_IN"]

    updated = run.ok("updateUser_data")["user"]
    assert updated["user_metadata"] == {"plan": "team", "theme": "dark", "email_verified": True}
    assert run.events("updateUser_data") == ["USER_UPDATED"]
    assert run.error("updateUser_weak_password", 422, "weak_password", "AuthWeakPasswordError")["reasons"] == ["length"]
    run.ok("updateUser_password")
    assert run.events("updateUser_password") == ["USER_UPDATED"]
    run.error("updateUser_same_password", 422, "same_password")
    run.error("signIn_old_password", 400, "invalid_credentials")
    assert_session(run.ok("signIn_new_password")["session"], ada)

    # An email change stays pending until confirmed, even with autoconfirm on.
    changed = run.ok("updateUser_email")["user"]
    assert changed["email"] == ada and changed["new_email"] == run.email("ada-new")
    assert changed["email_change_sent_at"]
    assert run["updateUser_email"]["requests"][0]["query"] == {"redirect_to": f"{SITE_URL}/changed"}
    run.error("updateUser_email_taken", 422, "email_exists")
    latest = run.ok("getUser_after_updates")["user"]
    assert latest["user_metadata"]["plan"] == "team" and latest["new_email"] == run.email("ada-new")

    # Refresh-token rotation as the client sees it.
    rotated = run.ok("refresh_rotate")["session"]
    again = run.ok("refresh_parent_again")["session"]
    assert again["refresh_token"] == rotated["refresh_token"], "the parent of the active token gets the active one"
    run.ok("refresh_rotate_again")
    run.error("refresh_reuse_old_token", 400, "refresh_token_already_used")
    run.error("refresh_after_reuse", 400, "refresh_token_already_used")

    # Anonymous users.
    anon = run.ok("signInAnonymously")
    claims = assert_session(anon["session"])
    assert anon["user"]["is_anonymous"] is True and anon["user"]["email"] == ""
    assert anon["user"]["identities"] == [] and anon["user"]["user_metadata"] == {"color": "blue"}
    assert claims["is_anonymous"] is True and amr_methods(claims) == ["anonymous"]
    assert run.events("signInAnonymously") == ["SIGNED_IN"]
    assert run.ok("anonymous_getClaims")["claims"]["is_anonymous"] is True
    run.error("anonymous_updateUser_password_only", 422, "validation_failed")
    converted = run.ok("anonymous_updateUser_email")["user"]
    assert converted["email"] == run.email("was-anon") and converted["email_confirmed_at"]
    assert converted["is_anonymous"] is False

    run.ok("signInWithOtp_new_user")
    otp_user = run.ok("verifyOtp_new_user")
    assert otp_user["mail"]["kind"] == "magic_link", "autoconfirm: created confirmed, then a magic link"
    assert_session(otp_user["session"], run.email("ada-otp"))

    # signOut (global by default).
    assert run.ok("signOut") is None
    assert run.events("signOut") == ["SIGNED_OUT"]
    [request] = run["signOut"]["requests"]
    assert (request["path"], request["query"], request["status"]) == ("/logout", {"scope": "global"}, 204)
    assert run.ok("getSession_after_signOut")["session"] is None
    run.error("getUser_after_signOut", 400, None, "AuthSessionMissingError")
    assert run.requests("getUser_after_signOut") == []
    # The old access token is still a valid JWT, but its session is gone: 403 session_not_found,
    # which auth-js turns into AuthSessionMissingError.
    run.error("old_access_token_after_signOut", 400, None, "AuthSessionMissingError")
    assert run.requests("old_access_token_after_signOut") == [("GET", "/user", 403)]

    for request in run.all_requests():
        assert request["api_version"] == "2024-01-01" and request["apikey"] == server.anon_key

    # The whole life of the main client, in order.
    assert [e["event"] for line in run.steps.values() for e in line["events"] if e["client"] == "main"] == [
        "INITIAL_SESSION",
        "SIGNED_IN",  # signUp
        "SIGNED_IN",  # signInWithPassword
        "TOKEN_REFRESHED",
        "USER_UPDATED", "USER_UPDATED", "USER_UPDATED",  # data, password, email
        "SIGNED_OUT",
    ]


def test_auth_js_sign_out_scopes(node, make_server, backend):
    run = run_js(node, "auth_js.mjs", "signout", make_server(backend))

    assert run.ok("signOut_others") is None
    assert run.events("signOut_others") == [], "scope others keeps the current session"
    assert run["signOut_others"]["requests"][0]["query"] == {"scope": "others"}
    run.ok("others_current_session_kept")
    run.error("others_other_session_gone", 400, None, "AuthSessionMissingError")
    assert run.requests("others_other_session_gone") == [("GET", "/user", 403)]
    assert run.events("others_other_session_gone", "b") == ["SIGNED_OUT"]
    run.error("others_other_refresh_gone", 400, "refresh_token_not_found")
    # A local sign-out whose session is already gone on the server still signs out locally.
    assert run.ok("signOut_local_session_already_gone") is None
    assert run.requests("signOut_local_session_already_gone") == [("POST", "/logout", 403)]
    assert run.events("signOut_local_session_already_gone") == ["SIGNED_OUT"]

    assert run.ok("signOut_local") is None
    assert run["signOut_local"]["requests"][0]["query"] == {"scope": "local"}
    assert run.requests("signOut_local") == [("POST", "/logout", 204)]
    assert run.events("signOut_local") == ["SIGNED_OUT"]
    assert run.ok("local_getSession")["session"] is None
    run.error("local_old_token_rejected", 400, None, "AuthSessionMissingError")
    run.ok("local_other_session_kept")

    assert run.ok("signOut_global") is None
    assert run.requests("signOut_global") == [("POST", "/logout", 204)]
    assert run.events("signOut_global") == ["SIGNED_OUT"]
    assert run.ok("global_getSession")["session"] is None
    run.error("global_other_session_gone", 400, None, "AuthSessionMissingError")
    run.error("global_refresh_gone", 400, "refresh_token_not_found")
    assert run.ok("signOut_without_session") is None
    assert run.requests("signOut_without_session") == []


def test_auth_js_email_codes_and_token_hashes(node, make_server, backend):
    server = make_server(backend, **MAIL_ENV)
    run = run_js(node, "auth_js.mjs", "otp", server)
    otto, moved = run.email("otp"), run.email("otp-moved")

    # Confirmation pending: a bare user, no session, no event.
    pending = run.ok("signUp_unconfirmed")
    assert pending["session"] is None
    user = pending["user"]
    assert user["email"] == otto and user["confirmation_sent_at"] and "email_confirmed_at" not in user
    assert user["user_metadata"] == {"name": "Otto"} and len(user["identities"]) == 1
    assert run.events("signUp_unconfirmed") == []
    run.error("signIn_unconfirmed", 400, "email_not_confirmed")
    again = run.ok("signUp_again_unconfirmed")
    assert again["session"] is None and again["user"]["id"] == user["id"], "the real user, mail re-sent"
    assert run.ok("resend_signup") == {"user": None, "session": None}

    mail = run.ok("mail_confirmation")
    assert mail["total"] == 3, "sign-up, sign-up again and resend each sent a confirmation"
    assert (mail["type"], mail["redirect_to"]) == ("signup", f"{SITE_URL}/confirmed")
    assert CODE.match(mail["code"]) and mail["token_hash"] == token_hash(otto, mail["code"])

    run.error("verifyOtp_wrong_code", 403, "otp_expired")
    confirmed = run.ok("verifyOtp_signup")
    claims = assert_session(confirmed["session"], otto)
    assert confirmed["user"]["email_confirmed_at"] and amr_methods(claims) == ["otp"]
    assert run.events("verifyOtp_signup") == ["SIGNED_IN"]
    # The app-side test for "already registered" when confirmations are on: no identities.
    existing = run.ok("signUp_existing_confirmed")
    assert existing["session"] is None and existing["user"]["email"] == otto
    assert existing["user"]["identities"] == [] and existing["user"]["id"] != user["id"]
    run.error("verifyOtp_signup_reused", 403, "otp_expired")
    assert run.ok("getUser_confirmed")["user"]["user_metadata"]["email_verified"] is True
    assert run.ok("resend_signup_confirmed") == {"user": None, "session": None}

    # Magic link / email OTP: the code, then the link's token hash.
    assert run.ok("signInWithOtp") == {"user": None, "session": None}
    assert run["signInWithOtp"]["requests"][0]["query"] == {"redirect_to": f"{SITE_URL}/magic"}
    mail = run.ok("mail_magiclink")
    assert (mail["type"], mail["redirect_to"]) == ("magiclink", f"{SITE_URL}/magic")
    assert CODE.match(mail["code"]) and mail["token_hash"] == token_hash(otto, mail["code"])
    assert amr_methods(assert_session(run.ok("verifyOtp_email_code")["session"], otto)) == ["otp"]
    assert run.events("verifyOtp_email_code") == ["SIGNED_IN"]
    run.ok("signInWithOtp_again")
    assert run.ok("mail_magiclink_again")["type"] == "magiclink"
    assert_session(run.ok("verifyOtp_token_hash")["session"], otto)
    assert run.events("verifyOtp_token_hash") == ["SIGNED_IN"]
    run.error("verifyOtp_token_hash_reused", 403, "otp_expired")

    newcomer = run.email("otp-new")
    run.ok("signInWithOtp_new_user")
    assert run.ok("mail_new_user")["kind"] == "confirmation"
    created = run.ok("verifyOtp_new_user_token_hash")
    assert_session(created["session"], newcomer)
    assert created["user"]["user_metadata"]["source"] == "otp" and created["user"]["email_confirmed_at"]
    run.error("signInWithOtp_no_create", 422, "otp_disabled")

    # Recovery by code fires PASSWORD_RECOVERY; the new password then works.
    assert run.ok("resetPasswordForEmail") == {}
    assert run["resetPasswordForEmail"]["requests"][0]["query"] == {"redirect_to": f"{SITE_URL}/reset"}
    mail = run.ok("mail_recovery")
    assert (mail["type"], mail["redirect_to"]) == ("recovery", f"{SITE_URL}/reset") and CODE.match(mail["code"])
    assert_session(run.ok("verifyOtp_recovery")["session"], otto)
    assert run.events("verifyOtp_recovery") == ["PASSWORD_RECOVERY"]
    run.ok("updateUser_password_after_recovery")
    assert run.events("updateUser_password_after_recovery") == ["USER_UPDATED"]
    assert_session(run.ok("signIn_after_recovery")["session"], otto)
    assert run.ok("resetPasswordForEmail_unknown") == {}
    assert mails(server, run.email("otp-unknown")) == []

    # Reauthentication: a code by mail, used as the nonce of a password change.
    assert run.ok("reauthenticate") == {"user": None, "session": None}
    assert run.requests("reauthenticate") == [("GET", "/reauthenticate", 200)]
    mail = run.ok("mail_reauthentication")
    assert CODE.match(mail["code"])
    run.ok("updateUser_password_with_nonce")
    assert_session(run.ok("signIn_after_nonce")["session"], otto)

    # Secure email change: both codes needed; the first answers without a session.
    changing = run.ok("updateUser_email")["user"]
    assert changing["email"] == otto and changing["new_email"] == moved
    run.ok("resend_email_change")
    assert_secure_email_change(run, otto, moved)

    confirmations = [m for m in mails(server, otto) if m["kind"] == "confirmation"]
    assert len(confirmations) == 3, "neither sign-up nor resend for a confirmed address sends mail"


def test_auth_js_pkce_email_links(node, make_server, backend):
    server = make_server(backend, GOTRUE_MAILER_AUTOCONFIRM="false")
    run = run_js(node, "auth_js.mjs", "pkce", server)
    pkce = run.email("pkce")

    signed_up = run.ok("signUp")
    assert signed_up["session"] is None and signed_up["user"]["email"] == pkce
    assert any(key.endswith("-code-verifier") for key in run.ok("verifier_stored")["keys"])
    run.error("resend_too_soon", 429, "over_email_send_rate_limit")

    def callback(prefix: str, redirect: str, method: str, email: str, event: str = "SIGNED_IN") -> dict:
        mail = run.ok(f"{prefix}_mail")
        assert mail["token_hash"].startswith("pkce_"), mail
        assert mail["redirect_to"] == redirect
        hop = run.ok(f"{prefix}_follow_link")
        assert hop["status"] == 303 and hop["base"] == redirect, hop
        assert UUID.match(hop["query"].get("code", "")), hop
        assert "access_token" not in hop["fragment"] and "error" not in hop["query"], hop
        data = run.ok(f"{prefix}_exchangeCodeForSession")
        claims = assert_session(data["session"], email)
        assert amr_methods(claims) == [method]
        assert run.events(f"{prefix}_exchangeCodeForSession") == [event]
        [request] = run[f"{prefix}_exchangeCodeForSession"]["requests"]
        assert (request["path"], request["query"], request["status"]) == ("/token", {"grant_type": "pkce"}, 200)
        # A link is single use: the second click redirects with the error in query and fragment.
        reused = run.ok(f"{prefix}_link_reused")
        assert reused["status"] == 303 and reused["base"] == redirect
        for params in (reused["query"], reused["fragment"]):
            assert (params.get("error"), params.get("error_code")) == ("access_denied", "otp_expired"), reused
            assert params.get("error_description"), reused
        return data

    confirmed = callback("signup", f"{SITE_URL}/callback", "email/signup", pkce)
    assert confirmed["user"]["email_confirmed_at"] and confirmed["redirectType"] is None
    # The verifier the exchange used is gone (auth-js keeps its per-flow slot bookkeeping).
    legacy = [k for k in run.ok("verifier_stored")["keys"] if k.endswith("-code-verifier") and "-flow" not in k]
    assert legacy and not set(legacy) & set(run.ok("verifier_removed")["keys"])
    run.error("exchange_without_verifier", 400, "pkce_code_verifier_not_found", "AuthPKCECodeVerifierMissingError")
    assert run.requests("exchange_without_verifier") == []

    assert run.ok("signInWithOtp") == {"user": None, "session": None}
    callback("magiclink", f"{SITE_URL}/magic", "magiclink", pkce)

    assert run.ok("resetPasswordForEmail") == {}
    values = run.ok("recovery_verifier_stored")["values"]
    assert any(json.loads(v).endswith("/recovery") for v in values if v.startswith('"')), values
    recovered = callback("recovery", f"{SITE_URL}/reset", "recovery", run.email("pkce-reset"), "PASSWORD_RECOVERY")
    assert recovered["redirectType"] == "recovery"
    run.ok("updateUser_password_after_recovery")
    assert_session(run.ok("signIn_after_recovery")["session"], run.email("pkce-reset"))

    run.error("exchange_bad_verifier", 400, "bad_code_verifier")

    # Email change with PKCE: the first link only acknowledges, the second carries the code.
    assert run.ok("updateUser_email")["user"]["new_email"] == run.email("pkce-moved")
    first, second = run.ok("email_change_follow_first"), run.ok("email_change_follow_second")
    assert first["status"] == second["status"] == 303
    assert first["base"] == second["base"] == f"{SITE_URL}/moved"
    assert first["query"].get("message") and "code" not in first["query"], first
    assert UUID.match(second["query"].get("code", "")), second
    moved = run.ok("email_change_exchangeCodeForSession")
    claims = assert_session(moved["session"], run.email("pkce-moved"))
    assert amr_methods(claims) == ["email_change"]


def test_auth_js_reads_verify_redirects_from_the_url(node, make_server, backend):
    """detectSessionInUrl: the client parses GET /verify's redirect (implicit flow) itself."""
    run = run_js(node, "auth_js.mjs", "url", make_server(backend, GOTRUE_MAILER_AUTOCONFIRM="false"))
    reset = run.email("url-reset")

    hop = run.ok("recovery_follow_link")
    assert hop["status"] == 303 and hop["base"] == f"{SITE_URL}/reset"
    assert hop["query"] == {"next": "account"}, "the redirect target keeps its own query"
    fragment = hop["fragment"]
    assert fragment["type"] == "recovery" and fragment["token_type"] == "bearer" and "sb" in fragment
    assert fragment["access_token"] and REFRESH_TOKEN.match(fragment["refresh_token"])
    assert int(fragment["expires_in"]) > 0 and int(fragment["expires_at"]) > 0

    landed = run.ok("recovery_initialize")
    assert_session(landed["session"], reset)
    assert landed["session"]["access_token"] == fragment["access_token"]
    assert landed["hash_after"] == ""
    assert run.requests("recovery_initialize") == [("GET", "/user", 200)]
    assert run.events("recovery_initialize") == ["PASSWORD_RECOVERY"]

    hop = run.ok("recovery_link_reused")
    assert hop["status"] == 303 and hop["base"] == f"{SITE_URL}/reset"
    assert hop["fragment"]["error"] == "access_denied" and hop["fragment"]["error_code"] == "otp_expired"
    assert hop["fragment"]["error_description"]
    error = run.error("reused_initialize", 500, None, "AuthImplicitGrantRedirectError")
    assert error["details"] == {"error": "access_denied", "code": "otp_expired"}
    assert error["message"] == hop["fragment"]["error_description"]
    assert run["reused_initialize"]["data"]["session"] is None, "a failed landing leaves no session"

    hop = run.ok("signup_follow_link")
    assert hop["status"] == 303 and hop["fragment"]["type"] == "signup"
    landed = run.ok("signup_initialize")
    assert_session(landed["session"], run.email("url-signup"))
    assert landed["session"]["user"]["email_confirmed_at"]
    assert run.events("signup_initialize") == ["SIGNED_IN"]


def test_auth_js_weak_password_notice_and_refresh_inside_get_session(node, make_server):
    server = make_server("sqlite", GOTRUE_JWT_EXP="60", GOTRUE_PASSWORD_MIN_LENGTH="12")
    run = run_js(node, "auth_js.mjs", "edge", server)
    address = run.email("edge")

    run.ok("admin_createUser_short_password")  # the admin API applies no strength policy
    signed_in = run.ok("signIn_weak_password")
    assert_session(signed_in["session"], address)
    assert signed_in["session"]["expires_in"] == 60
    assert signed_in["weakPassword"] == {"message": "Password should be at least 12 characters.",
                                         "reasons": ["length"]}

    # 60 s is inside auth-js's expiry margin: getSession() refreshes before answering.
    fresh = run.ok("getSession_near_expiry")["session"]
    assert_session(fresh, address)
    assert fresh["refresh_token"] != signed_in["session"]["refresh_token"]
    assert run.requests("getSession_near_expiry") == [("POST", "/token", 200)]
    assert run.events("getSession_near_expiry") == ["TOKEN_REFRESHED"]
    run.ok("getUser_after_auto_refresh")
    assert run.requests("getUser_after_auto_refresh") == [("POST", "/token", 200), ("GET", "/user", 200)]

    assert run.error("updateUser_short_password", 422, "weak_password", "AuthWeakPasswordError")["reasons"] == ["length"]
    run.ok("updateUser_long_password")
    strong = run.ok("signIn_strong_password")
    assert_session(strong["session"], address)
    assert "weakPassword" not in strong


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_auth_js_get_claims_verifies_asymmetric_tokens_via_jwks(node, make_server, jwt_secret, alg):
    keys, kid = asymmetric_keys(alg, jwt_secret)
    run = run_js(node, "auth_js.mjs", "claims", make_server("sqlite", GOTRUE_JWT_KEYS=keys))

    session = run.ok("signUp")["session"]
    assert_session(session, run.email("claims"))
    assert session["jwt_header"] == {"alg": alg, "typ": "JWT", "kid": kid}
    run.ok("getUser")

    got = run.ok("getClaims")
    assert got["header"] == {"alg": alg, "typ": "JWT", "kid": kid}
    assert got["claims"]["sub"] == session["user"]["id"]
    assert run.requests("getClaims") == [("GET", "/.well-known/jwks.json", 200)], "verified locally"
    run.ok("getClaims_cached")
    assert run.requests("getClaims_cached") == [], "the key set is cached"
    run.error("getClaims_forged", 400, "invalid_jwt", "AuthInvalidJwtError")
    assert run.requests("getClaims_forged") == []

    assert run.ok("refreshSession")["session"]["jwt_header"]["kid"] == kid
    assert run.ok("admin_listUsers")["total"] == 1, "the HS256 service_role key still verifies"


def test_auth_js_admin_api(node, make_server, backend):
    server = make_server(backend)
    run = run_js(node, "auth_js.mjs", "admin", server)
    e = lambda n: run.email(f"adm{n}")  # noqa: E731

    grace = run.ok("createUser")["user"]
    assert grace["email"] == e(1) and grace["email_confirmed_at"]
    assert grace["user_metadata"] == {"name": "Grace", "email_verified": True}
    assert grace["app_metadata"] == {"provider": "email", "providers": ["email"], "plan": "gold"}
    assert [i["provider"] for i in grace["identities"]] == ["email"]
    run.error("createUser_existing", 422, "email_exists")
    assert_session(run.ok("signIn_created_user")["session"], e(1))
    run.error("signIn_unconfirmed_created_user", 400, "email_not_confirmed")

    # Four users so far; two per page.
    page1 = run.ok("listUsers_page1")
    assert len(page1["users"]) == 2 and page1["aud"] == "authenticated"
    assert (page1["nextPage"], page1["lastPage"], page1["total"]) == (2, 2, 4)
    assert run["listUsers_page1"]["requests"][0]["query"] == {"page": "1", "per_page": "2"}
    page2 = run.ok("listUsers_page2")
    assert len(page2["users"]) == 2 and (page2["nextPage"], page2["lastPage"], page2["total"]) == (None, 2, 4)
    assert {u["id"] for u in page1["users"]}.isdisjoint(u["id"] for u in page2["users"])
    everyone = run.ok("listUsers_default")
    assert run["listUsers_default"]["requests"][0]["query"] == {"page": "", "per_page": ""}
    assert len(everyone["users"]) == 4 and (everyone["lastPage"], everyone["total"]) == (1, 4)
    assert {u["email"] for u in everyone["users"]} == {e(1), e(2), e(3), e(10)}

    bob = run.ok("getUserById")["user"]
    assert bob["email"] == e(2) and "email_confirmed_at" not in bob
    run.error("getUserById_unknown", 404, "user_not_found")
    bob = run.ok("updateUserById")["user"]
    assert bob["email_confirmed_at"] and bob["user_metadata"] == {"nickname": "bob", "email_verified": True}
    assert bob["app_metadata"]["tier"] == 2
    assert_session(run.ok("signIn_after_confirm")["session"], e(2))
    run.ok("updateUserById_password")
    assert_session(run.ok("signIn_after_admin_password")["session"], e(2))
    assert run.ok("updateUserById_ban")["user"]["banned_until"]
    run.error("signIn_banned", 400, "user_banned")
    assert "banned_until" not in run.ok("updateUserById_unban")["user"]
    assert run.ok("mfa_listFactors") == {"factors": []}

    invited = run.ok("inviteUserByEmail")["user"]
    assert invited["email"] == e(4) and invited["invited_at"] and invited["user_metadata"] == {"team": "blue"}
    assert run["inviteUserByEmail"]["requests"][0]["query"] == {"redirect_to": f"{SITE_URL}/join"}
    mail = run.ok("inviteUserByEmail_mail")
    assert (mail["kind"], mail["type"], mail["redirect_to"]) == ("invite", "invite", f"{SITE_URL}/join")
    run.error("inviteUserByEmail_existing", 422, "email_exists")
    accepted = run.ok("invite_verifyOtp")
    claims = assert_session(accepted["session"], e(4))
    assert accepted["user"]["email_confirmed_at"] and amr_methods(claims) == ["otp"]
    assert run.events("invite_verifyOtp") == ["SIGNED_IN"]
    run.ok("invite_updateUser_password")
    assert_session(run.ok("invite_signIn")["session"], e(4))

    expected = {  # type: (address the token hash is computed from, verification type, link type)
        "signup": (e(5), "signup", "signup"),
        "invite": (e(6), "invite", "invite"),
        "magiclink": (e(1), "magiclink", "magiclink"),
        "recovery": (e(10), "recovery", "recovery"),
        "email_change_current": (e(3), "email_change_current", "email_change"),
        "email_change_new": (e(7), "email_change_new", "email_change"),
    }
    for kind, (address, verification, link_type) in expected.items():
        data = run.ok(f"generateLink_{kind}")
        props, user = data["properties"], data["user"]
        assert props["verification_type"] == verification
        assert CODE.match(props["email_otp"]) and props["hashed_token"] == token_hash(address, props["email_otp"])
        link = httpx.URL(props["action_link"])
        assert link.path == "/verify" and link.params["token"] == props["hashed_token"]
        assert link.params["type"] == link_type and link.params["redirect_to"] == props["redirect_to"]
        assert "action_link" not in user and UUID.match(user["id"])
        assert mails(server, address) == [], "generate_link sends no mail"
    assert run.ok("generateLink_signup")["properties"]["redirect_to"] == f"{SITE_URL}/welcome"
    assert run.ok("generateLink_signup")["user"]["user_metadata"] == {"via": "link"}
    assert run.ok("generateLink_invite")["user"]["invited_at"]
    assert run.ok("generateLink_recovery")["properties"]["redirect_to"] == f"{SITE_URL}/reset"
    assert run.ok("generateLink_email_change_new")["user"]["new_email"] == e(7)
    run.error("generateLink_recovery_unknown", 404, "user_not_found")

    assert_session(run.ok("verify_generated_magiclink")["session"], e(1))
    signed_up = run.ok("verify_generated_signup_otp")
    assert_session(signed_up["session"], e(5))
    assert signed_up["user"]["email_confirmed_at"]
    hop = run.ok("follow_generated_recovery")
    assert hop["status"] == 303 and hop["base"] == f"{SITE_URL}/reset"
    assert hop["fragment"]["type"] == "recovery" and hop["fragment"]["access_token"]

    run.error("admin_with_anon_key", 403, "not_admin")
    run.error("admin_with_user_token", 403, "not_admin")

    deleted = run.ok("deleteUser")
    assert deleted["user"]["id"] == bob["id"]
    assert [(m, s) for m, _, s in run.requests("deleteUser")] == [("GET", 200), ("DELETE", 200)]
    run.error("getUserById_deleted", 404, "user_not_found")
    run.ok("deleteUser_soft")
    ghost = run.ok("getUserById_soft_deleted")["user"]
    assert ghost["deleted_at"] and ghost["email"] != e(9)
    run.error("signIn_soft_deleted", 400, "invalid_credentials")

    assert run.ok("admin_signOut") is None
    [request] = run["admin_signOut"]["requests"]
    assert (request["path"], request["query"], request["status"]) == ("/logout", {"scope": "global"}, 204)
    run.error("admin_signOut_token_rejected", 400, None, "AuthSessionMissingError")

    for request in run.all_requests():
        if request["client"] == "admin" and request["path"] != "/logout":  # signOut sends the user's JWT
            assert request["bearer"] == server.service_role_key and request["api_version"] == "2024-01-01"


# --- @supabase/supabase-js ----------------------------------------------------------------------


def assert_gateway_requests(run: Run, server, admin_clients: tuple[str, ...] = ("admin",)) -> None:
    """supabase-js calls <url>/auth/v1/…, always with the apikey header and X-Client-Info, and a
    bearer: the user's access token on user endpoints, the API key otherwise."""
    requests = run.all_requests()
    assert requests
    for request in requests:
        assert request["path"].startswith("/auth/v1/"), request
        key = server.service_role_key if request["client"] in admin_clients else server.anon_key
        assert request["apikey"] == key, request
        assert request["bearer"], request
        if request["path"] not in ("/auth/v1/user", "/auth/v1/logout", "/auth/v1/reauthenticate"):
            assert request["bearer"] == key, request
        assert (request["client_info"] or "").startswith("supabase-js/"), request
        assert request["api_version"] == "2024-01-01"


def test_supabase_js_auth_under_auth_v1(node, make_server, backend):
    server = make_server(backend, GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED="true")
    run = run_js(node, "supabase_js.mjs", "core", server)
    lin = run.email("sb")
    assert_gateway_requests(run, server)

    data = run.ok("signUp")
    assert_session(data["session"], lin)
    assert data["user"]["user_metadata"]["name"] == "Lin"
    assert run["signUp"]["requests"][0]["query"] == {"redirect_to": f"{SITE_URL}/welcome"}
    assert run.events("signUp") == ["SIGNED_IN"]
    run.error("signUp_existing", 422, "user_already_exists")
    run.error("signUp_weak_password", 422, "weak_password", "AuthWeakPasswordError")
    run.error("signIn_wrong_password", 400, "invalid_credentials")

    session = run.ok("signInWithPassword")["session"]
    assert_session(session, lin)
    assert run.ok("getSession")["session"]["access_token"] == session["access_token"]
    assert run.ok("getUser")["user"]["email"] == lin
    assert run["getUser"]["requests"][0]["bearer"] == session["access_token"]
    assert run.ok("getClaims")["claims"]["sub"] == session["user"]["id"]
    assert run.requests("getClaims") == [("GET", "/auth/v1/user", 200)]
    refreshed = run.ok("refreshSession")["session"]
    assert_session(refreshed, lin)
    assert refreshed["refresh_token"] != session["refresh_token"]
    assert run.events("refreshSession") == ["TOKEN_REFRESHED"]
    assert run.ok("updateUser")["user"]["user_metadata"]["name"] == "Lin Yu"
    assert run.events("updateUser") == ["USER_UPDATED"]
    assert run.ok("resetPasswordForEmail") == {}
    anon = run.ok("signInAnonymously")
    assert_session(anon["session"])
    assert anon["user"]["is_anonymous"] is True

    assert run.ok("signOut_local") is None
    assert run["signOut_local"]["requests"][0]["query"] == {"scope": "local"}
    assert run.events("signOut_local") == ["SIGNED_OUT"]
    run.ok("after_local_main_still_in")
    assert run.ok("signOut") is None
    assert run.requests("signOut") == [("POST", "/auth/v1/logout", 204)]
    assert run.events("signOut") == ["SIGNED_OUT"]
    assert run.ok("getSession_after_signOut")["session"] is None
    assert [e["event"] for line in run.steps.values() for e in line["events"] if e["client"] == "app"] == [
        "INITIAL_SESSION", "SIGNED_IN", "SIGNED_IN", "TOKEN_REFRESHED", "USER_UPDATED", "SIGNED_OUT"]

    created = run.ok("admin_createUser")["user"]
    assert created["email"] == run.email("sb-admin")
    assert created["user_metadata"] == {"by": "admin", "email_verified": True}
    listed = run.ok("admin_listUsers")
    assert len(listed["users"]) == 1 and (listed["nextPage"], listed["lastPage"], listed["total"]) == (2, 3, 3)
    assert run.ok("admin_getUserById")["user"]["id"] == created["id"]
    assert run.ok("admin_updateUserById")["user"]["user_metadata"] == {"level": 3, "email_verified": True}
    props = run.ok("admin_generateLink")["properties"]
    assert props["verification_type"] == "magiclink" and props["redirect_to"] == f"{SITE_URL}/magic"
    assert run.ok("admin_inviteUserByEmail")["user"]["invited_at"]
    assert run.ok("admin_deleteUser")["user"]["id"] == created["id"]
    run.error("admin_with_anon_key", 403, "not_admin")


def test_supabase_js_email_flows(node, make_server, backend):
    server = make_server(backend, **MAIL_ENV)
    run = run_js(node, "supabase_js.mjs", "email", server)
    address = run.email("sb-mail")
    assert_gateway_requests(run, server)

    assert run.ok("signUp")["session"] is None
    assert run.ok("resend_signup") == {"user": None, "session": None}
    assert run["resend_signup"]["requests"][0]["query"] == {"redirect_to": f"{SITE_URL}/confirmed"}
    mail = run.ok("mail_confirmation")
    assert mail["link"].startswith(f"{server.url}/verify?")
    assert mail["total"] == 2, "sign-up and resend each sent a confirmation"
    assert (mail["type"], mail["redirect_to"]) == ("signup", f"{SITE_URL}/confirmed")
    assert_session(run.ok("verifyOtp_signup")["session"], address)
    assert run.events("verifyOtp_signup") == ["SIGNED_IN"]

    assert run.ok("resetPasswordForEmail") == {}
    assert run.ok("mail_recovery")["type"] == "recovery"
    assert_session(run.ok("verifyOtp_recovery")["session"], address)
    assert run.events("verifyOtp_recovery") == ["PASSWORD_RECOVERY"]
    run.ok("updateUser_password")

    # signInWithOtp, then the mailed code; again, then the link's token hash.
    assert run.ok("signInWithOtp") == {"user": None, "session": None}
    assert run["signInWithOtp"]["requests"][0]["query"] == {"redirect_to": f"{SITE_URL}/magic"}
    mail = run.ok("mail_magiclink")
    assert (mail["type"], mail["redirect_to"]) == ("magiclink", f"{SITE_URL}/magic")
    assert CODE.match(mail["code"]) and mail["token_hash"] == token_hash(address, mail["code"])
    by_code = run.ok("verifyOtp_email_code")["session"]
    assert amr_methods(assert_session(by_code, address)) == ["otp"]
    assert run.events("verifyOtp_email_code") == ["SIGNED_IN"]
    run.ok("signInWithOtp_again")
    mail = run.ok("mail_magiclink_again")
    assert mail["type"] == "magiclink" and mail["token_hash"] == token_hash(address, mail["code"])
    by_hash = run.ok("verifyOtp_token_hash")["session"]
    assert_session(by_hash, address)
    assert run.events("verifyOtp_token_hash") == ["SIGNED_IN"]
    assert run.requests("verifyOtp_token_hash") == [("POST", "/auth/v1/verify", 200)]
    run.error("verifyOtp_token_hash_reused", 403, "otp_expired")

    # setSession: another client takes over the tokens (checked with GET /user, no refresh).
    adopted = run.ok("setSession")["session"]
    assert (adopted["access_token"], adopted["refresh_token"]) == (by_hash["access_token"], by_hash["refresh_token"])
    assert adopted["user"]["email"] == address
    assert run.requests("setSession") == [("GET", "/auth/v1/user", 200)]
    assert run.events("setSession") == ["SIGNED_IN"]
    assert run.ok("getUser_adopted")["user"]["id"] == by_hash["user"]["id"]

    # signOut({scope: 'others'}): the caller's session survives, the others' do not.
    assert run.ok("signOut_others") is None
    assert run["signOut_others"]["requests"][0]["query"] == {"scope": "others"}
    assert run.requests("signOut_others") == [("POST", "/auth/v1/logout", 204)]
    assert run.events("signOut_others") == []
    assert run.ok("others_current_session_kept")["user"]["email"] == address
    run.error("others_other_session_gone", 400, None, "AuthSessionMissingError")
    assert run.requests("others_other_session_gone") == [("GET", "/auth/v1/user", 403)]
    assert run.events("others_other_session_gone", "hash") == ["SIGNED_OUT"]
    run.error("others_other_refresh_gone", 400, "refresh_token_not_found")

    # reauthenticate mails a code that is the nonce of a password change.
    assert run.ok("reauthenticate") == {"user": None, "session": None}
    assert run.requests("reauthenticate") == [("GET", "/auth/v1/reauthenticate", 200)]
    assert run["reauthenticate"]["requests"][0]["bearer"] == by_code["access_token"]
    assert CODE.match(run.ok("mail_reauthentication")["code"])
    run.ok("updateUser_password_with_nonce")
    assert run.events("updateUser_password_with_nonce") == ["USER_UPDATED"]

    # updateUser({email}): secure change, a code to each address; resend sends both again.
    moved = run.email("sb-moved")
    changing = run.ok("updateUser_email")["user"]
    assert changing["email"] == address and changing["new_email"] == moved
    assert run["updateUser_email"]["requests"][0]["query"] == {"redirect_to": f"{SITE_URL}/moved"}
    assert run.ok("resend_email_change") == {"user": None, "session": None}
    sent = assert_secure_email_change(run, address, moved)
    assert sent["new"]["redirect_to"] == f"{SITE_URL}/moved"

    run.ok("signInWithOtp_pkce")
    hop = run.ok("follow_link")
    assert hop["status"] == 303 and hop["base"] == f"{SITE_URL}/callback" and UUID.match(hop["query"]["code"])
    claims = assert_session(run.ok("exchangeCodeForSession")["session"], run.email("sb-pkce"))
    assert amr_methods(claims) == ["magiclink"]
    assert run.requests("exchangeCodeForSession") == [("POST", "/auth/v1/token", 200)]


def test_supabase_js_get_claims_uses_jwks_under_auth_v1(node, make_server, jwt_secret):
    keys, kid = asymmetric_keys("ES256", jwt_secret)
    server = make_server("sqlite", GOTRUE_JWT_KEYS=keys)
    run = run_js(node, "supabase_js.mjs", "claims", server)
    session = run.ok("signUp")["session"]
    assert session["jwt_header"]["kid"] == kid
    assert run.ok("getClaims")["claims"]["sub"] == session["user"]["id"]
    assert run.requests("getClaims") == [("GET", "/auth/v1/.well-known/jwks.json", 200)]
    run.ok("getUser")


def test_browser_preflight_allows_what_the_js_clients_send(node, make_server):
    """In a browser every call above is cross-origin: the preflight must allow each request
    header the clients sent, and responses must expose the headers the clients read."""
    server = make_server("sqlite", GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED="true")
    run = run_js(node, "supabase_js.mjs", "core", server)
    sent = {name.lower() for request in run.all_requests() for name in request["headers"]}
    assert {"apikey", "authorization", "content-type", "x-client-info", "x-supabase-api-version"} <= sent

    origin = "http://localhost:3000"
    for method, path in [("POST", "/auth/v1/token"), ("GET", "/auth/v1/admin/users"), ("PUT", "/auth/v1/user")]:
        resp = httpx.options(f"{server.url}{path}", headers={
            "Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": ", ".join(sorted(sent))}, timeout=30)
        assert resp.status_code in (200, 204), resp.text
        assert resp.headers["access-control-allow-origin"] == origin
        allowed = {h.strip().lower() for h in resp.headers["access-control-allow-headers"].split(",")}
        assert sent <= allowed, f"not allowed by the preflight: {sent - allowed}"
        assert method in resp.headers["access-control-allow-methods"]

    resp = httpx.post(f"{server.url}/auth/v1/token?grant_type=password", timeout=30,
                      json={"email": "nobody@example.com", "password": "whatever-1"},
                      headers={"Origin": origin, "X-Supabase-Api-Version": "2024-01-01"})
    assert resp.status_code == 400 and resp.json()["code"] == "invalid_credentials"
    assert resp.headers["access-control-allow-origin"] == origin
    exposed = {h.strip().lower() for h in resp.headers["access-control-expose-headers"].split(",")}
    # auth-js reads the error code only when it can see the version header; listUsers reads these.
    assert {"x-supabase-api-version", "x-total-count", "link"} <= exposed


# --- phone ------------------------------------------------------------------------------------------


def phone_run(node, make_server, backend, script: str, scenario: str, count: int) -> tuple[Run, list[str], object]:
    """A phone-enabled server without SMS provider (texts land in its dev outbox, where the script
    reads the codes), `count` fresh numbers, and the scenario's run."""
    from phone_e2e import untested_number

    server = make_server(backend, GOTRUE_EXTERNAL_PHONE_ENABLED="true", GOTRUE_MAILER_AUTOCONFIRM="false",
                         GOTRUE_SMS_MAX_FREQUENCY="1ms")
    numbers = [untested_number() for _ in range(count)]
    return run_js(node, script, scenario, server, GL_PHONES=",".join(numbers)), numbers, server


def assert_phone_flows(run: Run, numbers: list[str]) -> None:
    """The steps of lib.mjs phoneFlows as the user sees them."""
    p1, p2, p3, _p4 = numbers

    pending = run.ok("signUp_phone")
    assert pending["session"] is None and pending["user"]["phone"] == p1
    assert pending["user"]["user_metadata"] == {"name": "Pat"} and "phone_confirmed_at" not in pending["user"]
    sms = run.ok("sms_signup")
    assert sms["kind"] == "sms" and sms["to"] == p1 and CODE.match(sms["code"]) and sms["total"] == 1
    run.error("signIn_phone_unconfirmed", 400, "phone_not_confirmed")
    run.error("verifyOtp_sms_wrong", 403, "otp_expired")
    confirmed = run.ok("verifyOtp_sms")
    claims = assert_session(confirmed["session"])
    assert claims["phone"] == p1 and amr_methods(claims) == ["otp"] and confirmed["user"]["phone_confirmed_at"]
    assert run.events("verifyOtp_sms") == ["SIGNED_IN"]
    assert amr_methods(assert_session(run.ok("signInWithPassword_phone")["session"])) == ["password"]

    assert run.ok("signInWithOtp_phone_new") == {"user": None, "session": None}
    assert run.ok("sms_otp_new")["to"] == p2
    created = run.ok("verifyOtp_phone_new")
    assert_session(created["session"])
    assert created["user"]["phone"] == p2 and created["user"]["user_metadata"] == {"source": "otp"}
    # auth-js hands the message id on: here the outbox entry's
    sms = run.ok("sms_otp")
    assert sms["total"] == 2
    assert run.ok("signInWithOtp_phone") == {"user": None, "session": None, "messageId": sms["id"]}
    assert_session(run.ok("verifyOtp_phone")["session"])
    run.error("signInWithOtp_phone_no_create", 422, "otp_disabled")
    run.error("signInWithOtp_whatsapp", 400, "validation_failed")

    changing = run.ok("updateUser_phone")["user"]
    assert changing["phone"] == p1 and changing["new_phone"] == p3
    assert run.ok("sms_phone_change")["to"] == p3
    resent = run.ok("sms_phone_change_resent")
    assert resent["total"] == 2
    assert run.ok("resend_phone_change") == {"user": None, "session": None, "messageId": resent["id"]}
    moved = run.ok("verifyOtp_phone_change")
    assert assert_session(moved["session"])["phone"] == p3
    assert run.ok("getUser_after_phone_change")["user"]["phone"] == p3
    assert run.ok("resend_sms_confirmed") == {"user": None, "session": None}

    assert run.ok("reauthenticate_phone") == {"user": None, "session": None}
    [(method, path, status)] = run.requests("reauthenticate_phone")
    assert (method, path.removeprefix("/auth/v1"), status) == ("GET", "/reauthenticate", 200)
    assert run.ok("sms_reauthentication")["total"] == 3  # change, resend, nonce
    # the session is fresh: upstream asks for no nonce yet, and takes this one (PH tests the check)
    run.ok("updateUser_password_with_nonce")
    assert_session(run.ok("signIn_after_nonce")["session"])


def test_auth_js_phone_flows(node, make_server, backend):
    run, numbers, _server = phone_run(node, make_server, backend, "auth_js.mjs", "phone", 4)
    assert_phone_flows(run, numbers)


def test_supabase_js_phone_flows(node, make_server, backend):
    run, numbers, server = phone_run(node, make_server, backend, "supabase_js.mjs", "phone", 4)
    assert_gateway_requests(run, server)
    assert_phone_flows(run, numbers)


def test_auth_js_mfa_totp(node, make_server, backend):
    """auth-js's mfa namespace with TOTP codes computed in Node (RFC 6238), and the admin's."""
    server = make_server(backend, GOTRUE_MFA_PHONE_ENROLL_ENABLED="true", GOTRUE_MFA_PHONE_VERIFY_ENABLED="true")
    run = run_js(node, "auth_js.mjs", "mfa", server)
    email = run.email("mfa")

    assert run.ok("aal_before")["currentLevel"] == "aal1" and run.ok("aal_before")["nextLevel"] == "aal1"
    enrolled = run.ok("enroll")
    assert enrolled["type"] == "totp" and enrolled["friendly_name"] == "phone app"
    # auth-js prefixes the raw SVG the server sends.
    assert enrolled["totp"]["qr_code"].startswith("data:image/svg+xml;utf-8,<?xml")
    assert enrolled["totp"]["uri"].startswith(f"otpauth://totp/Example:{email}?algorithm=SHA1&digits=6&issuer=Example")
    run.error("enroll_duplicate_name", 422, "mfa_factor_name_conflict")
    pending = run.ok("listFactors_pending")
    assert [f["status"] for f in pending["all"]] == ["unverified"] and pending["totp"] == []

    challenge = run.ok("challenge")
    assert challenge["type"] == "totp" and challenge["expires_at"] > time.time()
    run.error("verify_wrong", 422, "mfa_verification_failed")
    stepped = run.ok("verify")
    claims = claims_of(stepped["access_token"])
    assert claims["aal"] == "aal2" and amr_methods(claims) == ["totp", "password"]
    assert "MFA_CHALLENGE_VERIFIED" in run.events("verify", "main")
    run.error("verify_reused_challenge", 422, "mfa_ip_address_mismatch")
    # The client stored the aal2 session it was given.
    assert run.ok("session_after_verify")["refresh_token"] == stepped["refresh_token"]
    aal = run.ok("aal_after")
    assert (aal["currentLevel"], aal["nextLevel"]) == ("aal2", "aal2")
    assert [m["method"] for m in aal["currentAuthenticationMethods"]] == ["totp", "password"]
    factors = run.ok("listFactors")
    assert [f["id"] for f in factors["totp"]] == [enrolled["id"]] and factors["totp"][0]["status"] == "verified"
    assert run.ok("refreshSession")["session"]["claims"]["aal"] == "aal2"

    aal = run.ok("aal_signin")
    assert (aal["currentLevel"], aal["nextLevel"]) == ("aal1", "aal2")
    run.error("enroll_at_aal1", 403, "insufficient_aal")
    run.error("unenroll_at_aal1", 422, "insufficient_aal")
    run.error("challengeAndVerify_replayed", 422, "mfa_verification_failed")
    assert claims_of(run.ok("challengeAndVerify")["access_token"])["aal"] == "aal2"
    assert run.ok("aal_later")["currentLevel"] == "aal2"

    assert "id" in run.ok("unenroll_pending")
    listed = run.ok("admin_listFactors")["factors"]
    assert {f["friendly_name"] for f in listed} == {"phone app", "spare2"}
    assert run.ok("admin_deleteFactor")["data"]["friendly_name"] == "spare2"
    run.error("admin_deleteFactor_again", 404, "mfa_factor_not_found")

    assert run.ok("unenroll") == {"id": enrolled["id"]}
    assert run.ok("refresh_after_unenroll")["session"]["claims"]["aal"] == "aal1"
    aal = run.ok("aal_after_unenroll")
    assert (aal["currentLevel"], aal["nextLevel"]) == ("aal1", "aal1")
    assert run.ok("listFactors_after_unenroll")["all"] == []
    user_id = claims_of(run.ok("session_after_verify")["access_token"])["sub"]
    assert rows(server, "SELECT id FROM mfa_factors WHERE user_id = $1", user_id) == []

    phone = run.ok("enroll_phone")
    assert phone["type"] == "phone" and phone["friendly_name"] == "mobile" and phone["phone"].startswith("+1555")
    assert run.ok("challenge_phone")["type"] == "phone"
    sms = run.ok("sms")
    assert sms["kind"] == "sms" and len(sms["code"]) == 6
    claims = claims_of(run.ok("verify_phone")["access_token"])
    assert claims["aal"] == "aal2" and amr_methods(claims) == ["mfa/phone", "password"]
    assert run.ok("aal_phone")["currentLevel"] == "aal2"
    assert [f["id"] for f in run.ok("listFactors_phone")["phone"]] == [phone["id"]]


def test_auth_js_mfa_webauthn(node, make_server, backend):
    """auth-js's mfa.webauthn.register / authenticate, with a software authenticator standing in
    for navigator.credentials (tests/clients/soft_authenticator.mjs)."""
    server = make_server(backend, GOTRUE_MFA_WEB_AUTHN_ENROLL_ENABLED="true", GOTRUE_MFA_WEB_AUTHN_VERIFY_ENABLED="true",
                         GOTRUE_WEBAUTHN_RP_ID="localhost", GOTRUE_WEBAUTHN_RP_DISPLAY_NAME="Example",
                         GOTRUE_WEBAUTHN_RP_ORIGINS=SITE_URL)
    run = run_js(node, "auth_js.mjs", "webauthn", server)
    claims = claims_of(run.ok("register")["access_token"])
    assert claims["aal"] == "aal2" and amr_methods(claims) == ["mfa/webauthn", "password"]
    assert "MFA_CHALLENGE_VERIFIED" in run.events("register", "main")
    # enrol, challenge (creation options), verify (the attestation)
    assert [(m, p.removeprefix("/auth/v1")) for m, p, _s in run.requests("register")][:3] == [
        ("POST", "/factors"), ("POST", f"/factors/{run.ok('listFactors')['webauthn'][0]['id']}/challenge"),
        ("POST", f"/factors/{run.ok('listFactors')['webauthn'][0]['id']}/verify")]
    assert run.ok("aal_registered")["currentLevel"] == "aal2"
    [factor] = run.ok("listFactors")["webauthn"]
    assert factor["friendly_name"] == "security key" and factor["status"] == "verified"
    aal = run.ok("aal_later")
    assert (aal["currentLevel"], aal["nextLevel"]) == ("aal1", "aal2")
    assert claims_of(run.ok("authenticate")["access_token"])["aal"] == "aal2"
    assert run.ok("aal_authenticated")["currentLevel"] == "aal2"
    run.error("authenticate_wrong_origin", 422, "mfa_verification_failed")
    calls = run.ok("authenticator_calls")
    assert calls[0] == {"kind": "create", "rp": {"name": "Example", "id": "localhost"}, "user": run.email("key")}
    assert [c["kind"] for c in calls] == ["create", "get", "get"] and calls[1]["allow"] == 1
    [row] = rows(server, "SELECT web_authn_credential FROM mfa_factors WHERE id = $1", factor["id"])
    assert row["web_authn_credential"]["authenticator"]["signCount"] == 2
