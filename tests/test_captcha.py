"""Captcha protection (GOTRUE_SECURITY_CAPTCHA_*): the guarded routes, the exempt grants and admin
callers, and every answer of hCaptcha's and Turnstile's siteverify (a local server that speaks
their format), on both stores. Upstream: internal/api/middleware.go verifyCaptcha,
internal/security/captcha.go."""

from __future__ import annotations

import time

import httpx
import pytest

from captcha_server import CODES, Siteverify
from conftest import start_server
from helpers import PASSWORD, TIMEOUT, assert_error, bearer, new_email, post, rows, signup_session
from test_clients_js import node, run_js  # noqa: F401 - node is a fixture

SECRET = "0x4AAAAAAAtest-secret"
NO_TOKEN = "captcha protection: request disallowed (no captcha_token found)"
UNAVAILABLE = "captcha verification process failed"


def captcha_env(fake: Siteverify, **extra: str) -> dict[str, str]:
    return {"GOTRUE_SECURITY_CAPTCHA_ENABLED": "true", "GOTRUE_SECURITY_CAPTCHA_PROVIDER": fake.vendor,
            "GOTRUE_SECURITY_CAPTCHA_SECRET": SECRET, "GOTRUE_LITE_CAPTCHA_VERIFY_URL": fake.url, **extra}


@pytest.fixture(scope="module", params=["sqlite-hcaptcha", "postgres-turnstile", "sqlite-turnstile",
                                        "postgres-hcaptcha"])
def guarded(request, tmp_path_factory, postgres_problem):
    """(server, fake vendor): captcha on, anonymous sign-ins on, one per backend and vendor."""
    backend, vendor = request.param.split("-")
    if backend == "postgres" and postgres_problem:
        pytest.skip(postgres_problem)
    fake = Siteverify(vendor, SECRET).start()
    server = start_server(backend, tmp_path_factory.mktemp(request.param), captcha_env(
        fake, GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED="true", GOTRUE_SECURITY_CAPTCHA_TIMEOUT="1s",
        GOTRUE_SMTP_MAX_FREQUENCY="1ms", GOTRUE_RATE_LIMIT_EMAIL_SENT="1000"))
    yield server, fake
    server.stop()
    fake.stop()


@pytest.fixture
def fake(guarded):
    server, fake = guarded
    fake.mode = "normal"
    fake.requests.clear()
    yield fake
    fake.mode = "normal"


def meta(token: str | None) -> dict:
    return {"gotrue_meta_security": {"captcha_token": token}}


def users_with(server, email: str) -> list[dict]:
    return rows(server, "SELECT id FROM users WHERE email = $1", email)


def user_count(server) -> int:
    return rows(server, "SELECT count(*) AS n FROM users")[0]["n"]


# --- sign-up -------------------------------------------------------------------------------------


def test_signup_without_a_token_is_refused_and_the_vendor_not_asked(guarded, fake):
    server, _ = guarded
    email = new_email()
    for body in ({"email": email, "password": PASSWORD},
                 {"email": email, "password": PASSWORD, **meta(None)},
                 {"email": email, "password": PASSWORD, **meta("   ")},
                 {"email": email, "password": PASSWORD, "gotrue_meta_security": {}}):
        assert_error(post(server, "/signup", body), 400, "captcha_failed", NO_TOKEN)
    assert fake.requests == []
    assert users_with(server, email) == []


def test_signup_with_a_good_token_passes_once(guarded, fake):
    server, _ = guarded
    email, token = new_email(), fake.issue()
    resp = post(server, "/signup", {"email": email, "password": PASSWORD, **meta(token)},
                headers={"X-Forwarded-For": "203.0.113.7"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["email"] == email
    assert len(users_with(server, email)) == 1
    # What the vendor received: its own form fields, the configured secret, the user's address.
    assert fake.requests == [{"content_type": "application/x-www-form-urlencoded",
                              "form": {"secret": SECRET, "response": token, "remoteip": "203.0.113.7"}}]

    # The vendor's tokens are single-use: the same token again is its refusal, nothing written.
    again = new_email()
    resp = post(server, "/signup", {"email": again, "password": PASSWORD, **meta(token)})
    assert_error(resp, 400, "captcha_failed",
                 f"captcha protection: request disallowed ({CODES[fake.vendor]['seen']})")
    assert users_with(server, again) == []


def test_a_refused_token_writes_nothing(guarded, fake):
    server, _ = guarded
    email, before = new_email(), user_count(server)
    resp = post(server, "/signup", {"email": email, "password": PASSWORD, **meta("made-up-token")})
    assert_error(resp, 400, "captcha_failed", "captcha protection: request disallowed (invalid-input-response)")
    assert user_count(server) == before
    assert fake.requests[0]["form"]["response"] == "made-up-token"
    assert fake.requests[0]["form"]["remoteip"] == "127.0.0.1"


def test_anonymous_sign_in_needs_a_token(guarded, fake):
    server, _ = guarded
    before = user_count(server)
    assert_error(post(server, "/signup", {}), 400, "captcha_failed", NO_TOKEN)
    assert_error(post(server, "/signup", {"data": {"a": 1}}), 400, "captcha_failed", NO_TOKEN)
    assert user_count(server) == before
    resp = post(server, "/signup", meta(fake.issue()))
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["is_anonymous"] is True
    assert user_count(server) == before + 1


def test_a_bad_body_is_still_bad_json(guarded, fake):
    server, _ = guarded
    resp = httpx.post(server.url + "/signup", content=b"{not json", timeout=TIMEOUT)
    assert_error(resp, 400, "bad_json")
    resp = post(server, "/signup", {"email": new_email(), "gotrue_meta_security": "token"})
    assert_error(resp, 400, "bad_json")
    assert fake.requests == []


# --- the other guarded routes --------------------------------------------------------------------


def _admin_user(server) -> str:
    """A confirmed user made through the admin API (which no captcha guards)."""
    email = new_email()
    resp = httpx.post(server.url + "/admin/users", json={"email": email, "password": PASSWORD, "email_confirm": True},
                      headers=bearer(server.service_role_key), timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text
    return email


@pytest.mark.parametrize("path, body", [
    ("/token?grant_type=password", lambda email: {"email": email, "password": PASSWORD}),
    ("/token?grant_type=web3", lambda email: {}),
    ("/token?grant_type=nonsense", lambda email: {}),
    ("/recover", lambda email: {"email": email}),
    ("/resend", lambda email: {"type": "signup", "email": email}),
    ("/magiclink", lambda email: {"email": email}),
    ("/otp", lambda email: {"email": email}),
])
def test_guarded_routes_refuse_without_a_token(guarded, fake, path, body):
    server, _ = guarded
    email = _admin_user(server)
    for prefix in ("", "/auth/v1"):
        assert_error(post(server, prefix + path, body(email)), 400, "captcha_failed", NO_TOKEN)
    assert fake.requests == []


def test_password_grant_with_a_token(guarded, fake):
    server, _ = guarded
    email = _admin_user(server)
    resp = post(server, "/token?grant_type=password", {"email": email, "password": PASSWORD, **meta(fake.issue())})
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["email"] == email
    # A refused token on a correct password: no session.
    sessions = rows(server, "SELECT count(*) AS n FROM sessions")[0]["n"]
    resp = post(server, "/token?grant_type=password", {"email": email, "password": PASSWORD, **meta("forged")})
    assert_error(resp, 400, "captcha_failed", "captcha protection: request disallowed (invalid-input-response)")
    assert rows(server, "SELECT count(*) AS n FROM sessions")[0]["n"] == sessions


def test_form_bodies_carry_the_token_in_bracket_notation(guarded, fake):
    server, _ = guarded
    email = _admin_user(server)
    form = {"grant_type": "password", "username": email, "password": PASSWORD}
    resp = httpx.post(server.url + "/token", data=form, timeout=TIMEOUT)
    assert_error(resp, 400, "captcha_failed", NO_TOKEN)
    resp = httpx.post(server.url + "/token", data={**form, "gotrue_meta_security[captcha_token]": fake.issue()},
                      timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text
    # The exempt grants are exempt in a form too.
    resp = httpx.post(server.url + "/token", data={"grant_type": "refresh_token", "refresh_token": "abcdefghijkl"},
                      timeout=TIMEOUT)
    assert_error(resp, 400, "refresh_token_not_found")


@pytest.mark.parametrize("path, body", [
    ("/recover", lambda email: {"email": email}),
    ("/resend", lambda email: {"type": "signup", "email": email}),
    ("/magiclink", lambda email: {"email": email}),
    ("/otp", lambda email: {"email": email, "create_user": False}),
])
def test_mail_routes_with_a_token(guarded, fake, path, body):
    server, _ = guarded
    email = _admin_user(server)
    resp = post(server, path, {**body(email), **meta(fake.issue())})
    assert resp.status_code == 200, resp.text
    assert len(fake.requests) == 1


def test_grants_that_continue_a_sign_in_are_exempt(guarded, fake):
    server, _ = guarded
    session = post(server, "/signup", {"email": new_email(), "password": PASSWORD, **meta(fake.issue())}).json()
    fake.requests.clear()
    resp = post(server, "/token?grant_type=refresh_token", {"refresh_token": session["refresh_token"]})
    assert resp.status_code == 200, resp.text
    # pkce and id_token reach their own checks (a missing code, an unconfigured provider).
    resp = post(server, "/token?grant_type=pkce", {"auth_code": "nope", "code_verifier": "x" * 43})
    assert resp.json().get("error_code") != "captcha_failed", resp.text
    resp = post(server, "/token?grant_type=id_token", {"provider": "google", "id_token": "x"})
    assert resp.json().get("error_code") != "captcha_failed", resp.text
    # grant_type in a JSON body counts as the handler counts it.
    resp = post(server, "/token", {"grant_type": "refresh_token", "refresh_token": session["refresh_token"]})
    assert resp.json().get("error_code") != "captcha_failed", resp.text
    assert fake.requests == []


def test_admin_callers_skip_the_captcha(guarded, fake):
    server, _ = guarded
    email = new_email()
    resp = post(server, "/signup", {"email": email, "password": PASSWORD},
                headers=bearer(server.service_role_key))
    assert resp.status_code == 200, resp.text
    resp = post(server, "/token?grant_type=password", {"email": email, "password": PASSWORD},
                headers=bearer(server.service_role_key))
    assert resp.status_code == 200, resp.text
    # The anon key and a user's own token are no admin credentials.
    for key in (server.anon_key, resp.json()["access_token"]):
        resp = post(server, "/signup", {"email": new_email(), "password": PASSWORD}, headers=bearer(key))
        assert_error(resp, 400, "captcha_failed", NO_TOKEN)
    assert fake.requests == []


def test_unguarded_routes_do_not_ask(guarded, fake):
    server, _ = guarded
    session = signup_session(server, new_email(), **meta(fake.issue()))
    fake.requests.clear()
    assert httpx.get(server.url + "/user", headers=bearer(session["access_token"]), timeout=TIMEOUT).status_code == 200
    assert httpx.get(server.url + "/settings", timeout=TIMEOUT).status_code == 200
    resp = post(server, "/verify", {"type": "signup", "token_hash": "0" * 56})
    assert resp.json().get("error_code") != "captcha_failed", resp.text
    resp = post(server, "/logout", headers=bearer(session["access_token"]))
    assert resp.status_code == 204, resp.text
    assert fake.requests == []


# --- the vendor misbehaving ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["html-502", "garbage", "slow"])
def test_an_unusable_vendor_answer_is_a_500_and_writes_nothing(guarded, fake, mode):
    server, _ = guarded
    fake.mode, fake.slow_seconds = mode, 5.0
    email, before = new_email(), user_count(server)
    started = time.monotonic()
    resp = post(server, "/signup", {"email": email, "password": PASSWORD, **meta(fake.issue())})
    elapsed = time.monotonic() - started
    body = assert_error(resp, 500, "unexpected_failure", UNAVAILABLE)
    assert body.get("error_id"), body
    assert user_count(server) == before
    assert len(fake.requests) == (0 if mode == "slow" else 1)
    if mode == "slow":
        # GOTRUE_SECURITY_CAPTCHA_TIMEOUT=1s: the request does not wait for the vendor's 5 s.
        assert 0.9 <= elapsed < 4.0, elapsed


def test_a_json_refusal_with_an_error_status_is_a_refusal(guarded, fake):
    # Upstream decodes the body whatever the status: Turnstile's JSON 500 is a refusal.
    server, _ = guarded
    fake.mode = "json-500"
    resp = post(server, "/signup", {"email": new_email(), "password": PASSWORD, **meta(fake.issue())})
    assert_error(resp, 400, "captcha_failed", "captcha protection: request disallowed (internal-error)")


@pytest.mark.parametrize("vendor", ["hcaptcha", "turnstile"])
def test_wrong_secret_and_unreachable_vendor(make_server, backend, vendor):
    fake = Siteverify(vendor, "the-real-secret").start()
    try:
        server = make_server(backend, **captcha_env(fake))
        email = new_email()
        resp = post(server, "/signup", {"email": email, "password": PASSWORD, **meta(fake.issue())})
        assert_error(resp, 400, "captcha_failed", "captcha protection: request disallowed (invalid-input-secret)")
        assert fake.requests[0]["form"]["secret"] == SECRET
    finally:
        fake.stop()
    # Nothing listens there any more.
    resp = post(server, "/signup", {"email": email, "password": PASSWORD, **meta("any")})
    assert_error(resp, 500, "unexpected_failure", UNAVAILABLE)
    assert users_with(server, email) == []


def test_captcha_off_asks_nobody(make_server, backend):
    fake = Siteverify("hcaptcha", SECRET).start()
    try:
        server = make_server(backend, GOTRUE_LITE_CAPTCHA_VERIFY_URL=fake.url)
        resp = post(server, "/signup", {"email": new_email(), "password": PASSWORD})
        assert resp.status_code == 200, resp.text
        assert fake.requests == []
    finally:
        fake.stop()


def test_siteverify_urls_by_provider(tmp_path):
    from gotrue_lite.captcha import siteverify_url
    from gotrue_lite.config import load_settings

    def url(**env):
        return siteverify_url(load_settings(environ=env, dotenv=False, cwd=tmp_path))

    assert url() == "https://hcaptcha.com/siteverify"
    assert url(GOTRUE_SECURITY_CAPTCHA_PROVIDER="turnstile") == \
        "https://challenges.cloudflare.com/turnstile/v0/siteverify"
    assert url(GOTRUE_SECURITY_CAPTCHA_PROVIDER="turnstile",
               GOTRUE_LITE_CAPTCHA_VERIFY_URL="http://127.0.0.1:1/v") == "http://127.0.0.1:1/v"


def test_captcha_and_per_ip_limits_in_upstreams_order(make_server, backend):
    """/otp (and /recover, /resend, /magiclink) count the request before the captcha is checked;
    /signup and /token check the captcha first, so a refused captcha spends nothing."""
    from gotrue_lite.ratelimit import BURST

    fake = Siteverify("turnstile", SECRET).start()
    try:
        server = make_server(backend, **captcha_env(fake, GOTRUE_RATE_LIMIT_HEADER="X-Real-IP"))
        ip = {"X-Real-IP": "198.51.100.4"}
        for _ in range(BURST + 3):
            resp = post(server, "/signup", {"email": new_email(), "password": PASSWORD}, headers=ip)
            assert_error(resp, 400, "captcha_failed", NO_TOKEN)
        resp = post(server, "/signup", {"email": new_email(), "password": PASSWORD, **meta(fake.issue())}, headers=ip)
        assert resp.status_code == 200, resp.text

        for _ in range(BURST):
            assert_error(post(server, "/otp", {"email": new_email()}, headers=ip), 400, "captcha_failed", NO_TOKEN)
        assert_error(post(server, "/otp", {"email": new_email()}, headers=ip), 429, "over_request_rate_limit")
        assert fake.requests and len(fake.requests) == 1
    finally:
        fake.stop()


# --- the published clients -----------------------------------------------------------------------


def test_supabase_auth_client_passes_captcha_tokens(guarded, fake):
    from supabase_auth import SyncGoTrueClient
    from supabase_auth.errors import AuthApiError

    server, _ = guarded
    client = SyncGoTrueClient(url=server.url, auto_refresh_token=False, persist_session=False,
                              headers={"apikey": server.anon_key, "Authorization": f"Bearer {server.anon_key}"})
    try:
        email = new_email()
        with pytest.raises(AuthApiError) as refused:
            client.sign_up({"email": email, "password": PASSWORD})
        assert (refused.value.status, refused.value.code, refused.value.message) == (400, "captcha_failed", NO_TOKEN)
        assert users_with(server, email) == []

        res = client.sign_up({"email": email, "password": PASSWORD, "options": {"captcha_token": fake.issue()}})
        assert res.session is not None and res.user.email == email
        res = client.sign_in_with_password({"email": email, "password": PASSWORD,
                                            "options": {"captcha_token": fake.issue()}})
        assert res.session is not None
        # Refreshing needs no token.
        assert client.refresh_session(res.session.refresh_token).session is not None

        with pytest.raises(AuthApiError) as refused:
            client.sign_in_with_password({"email": email, "password": PASSWORD,
                                          "options": {"captcha_token": "stale"}})
        assert refused.value.code == "captcha_failed"
        assert refused.value.message == "captcha protection: request disallowed (invalid-input-response)"

        client.reset_password_for_email(email, {"captcha_token": fake.issue()})
        client.sign_in_with_otp({"email": email, "options": {"captcha_token": fake.issue(),
                                                             "should_create_user": False}})
        client.resend({"type": "signup", "email": email, "options": {"captcha_token": fake.issue()}})
        anonymous = client.sign_in_anonymously({"options": {"captcha_token": fake.issue()}})
        assert anonymous.user.is_anonymous is True
        assert len(fake.requests) == 7  # the seven calls that carried a token
        assert {r["form"]["secret"] for r in fake.requests} == {SECRET}
    finally:
        client.close()


def test_auth_js_passes_captcha_tokens(guarded, fake, node):
    server, _ = guarded
    tokens = [fake.issue() for _ in range(6)]
    run = run_js(node, "auth_js.mjs", "captcha", server, env={"GL_CAPTCHA_TOKENS": ",".join(tokens)})
    for step in ("signUp_no_token", "signIn_no_token", "signInAnonymously_no_token"):
        assert run.error(step, 400, "captcha_failed")["message"] == NO_TOKEN
    refused = run.error("signIn_bad_token", 400, "captcha_failed")
    assert refused["message"] == "captcha protection: request disallowed (invalid-input-response)"
    email = run.email("cap")
    assert run.ok("signUp")["session"]["user"]["email"] == email
    assert run.ok("signInWithPassword")["session"]["user"]["email"] == email
    assert run.ok("refreshSession")["session"]
    for step in ("resetPasswordForEmail", "signInWithOtp", "resend"):
        run.ok(step)
    assert run.ok("signInAnonymously")["session"]["user"]["is_anonymous"] is True
    # Every issued token went to the vendor once, with the secret; the forged one too.
    sent = [r["form"]["response"] for r in fake.requests]
    assert sorted(sent) == sorted(tokens + ["forged-token"])
