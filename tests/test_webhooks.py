"""Netlify-style webhooks (GOTRUE_WEBHOOK_*, netlify/gotrue api/hooks.go): a local endpoint that
checks the HS256 signature with PyJWT answers the validate, signup and login events; its metadata
is saved, its refusal leaves no user, and timeouts, 500s, garbage and an unreachable endpoint get
netlify's answers. Netlify's own gotrue-js client signs up against it (tests/clients/netlify_gotrue.mjs)."""

from __future__ import annotations

import socket
import time

import pytest

from gotrue_lite.config import ConfigError, load_settings
from helpers import PASSWORD, assert_error, claims_of, get_user, new_email, rows, sign_in, signup
from test_clients_js import MAIL_ENV, node, run_js  # noqa: F401 - node is a fixture
from test_clients_legacy import NETLIFY_TEMPLATES, assert_netlify_user, netlify_error
from webhook_server import NIL_UUID, SECRET, Received, WebhookServer, add_roles

REFUSED = "Failed to handle signup webhook"


@pytest.fixture
def webhook():
    server = WebhookServer().start()
    yield server
    server.stop()


def users_named(server, email: str) -> list[dict]:
    return rows(server, "SELECT id, raw_app_meta_data FROM users WHERE email = $1", email)


def assert_no_user(server, email: str) -> None:
    assert users_named(server, email) == []
    assert_error(sign_in(server, email), 400, "invalid_credentials")


def assert_signed(received: Received, event: str) -> None:
    assert received.header_event == f"identity_{event}"
    assert received.content_type == "application/json"
    assert received.instance_id == NIL_UUID
    claims = received.claims
    assert claims is not None and claims["iss"] == "gotrue" and claims["sub"] == NIL_UUID
    assert abs(claims["iat"] - time.time()) < 60


# --- what the events carry and what their answers change ---------------------------------------


def test_an_autoconfirmed_sign_up_is_validated_then_signed_up_and_keeps_the_roles(make_server, backend, webhook):
    server = make_server(backend, **webhook.env())
    webhook.answers["signup"] = add_roles("editor")
    email = new_email()
    resp = signup(server, email, data={"full_name": "Ada"})
    assert resp.status_code == 200, (resp.text, webhook.refused)
    session = resp.json()
    user = session["user"]
    # netlify replaces app_metadata with the answer's; the server's provider keys stay.
    assert user["app_metadata"] == {"provider": "email", "providers": ["email"], "roles": ["editor"]}
    assert user["user_metadata"] == {"full_name": "Ada", "vetted": True, "email_verified": True}
    assert claims_of(session["access_token"])["app_metadata"]["roles"] == ["editor"]
    assert get_user(server, session["access_token"]).json()["app_metadata"]["roles"] == ["editor"]

    validate, signed_up = webhook.received
    assert (validate.event, signed_up.event) == ("validate", "signup")
    for received, event in ((validate, "validate"), (signed_up, "signup")):
        assert_signed(received, event)
        assert received.user["id"] == user["id"] and received.user["email"] == email
        assert received.user["aud"] == "authenticated" and received.user["role"] == "authenticated"
    # Not yet confirmed when the events go out (netlify calls them before Confirm).
    assert validate.user["user_metadata"] == {"full_name": "Ada"} and "email_confirmed_at" not in validate.user
    assert validate.user["app_metadata"] == {"provider": "email", "providers": ["email"]}


def test_an_unlisted_event_is_not_sent(make_server, backend, webhook):
    server = make_server(backend, **webhook.env(events="login"))
    webhook.answers["login"] = add_roles("admin")
    webhook.answers["validate"] = [(400, {"msg": "never asked"})]
    email = new_email()
    assert signup(server, email).status_code == 200
    assert webhook.received == []
    resp = sign_in(server, email)
    assert resp.status_code == 200, resp.text
    [login] = webhook.received
    assert_signed(login, "login")
    assert login.user["email"] == email and "roles" not in login.user["app_metadata"]
    # The session issued after the webhook carries what it answered.
    assert claims_of(resp.json()["access_token"])["app_metadata"]["roles"] == ["admin"]
    assert resp.json()["user"]["user_metadata"]["vetted"] is True


def test_empty_and_null_answers_change_nothing(make_server, backend, webhook):
    server = make_server(backend, **webhook.env())
    webhook.answers["validate"] = [(200, None)]  # 200 with no body
    webhook.answers["signup"] = [(202, b"null")]
    webhook.answers["login"] = [(200, {"app_metadata": None, "other": 1})]
    email = new_email()
    user = signup(server, email, data={"a": 1}).json()["user"]
    assert user["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert user["user_metadata"] == {"a": 1, "email_verified": True}
    assert sign_in(server, email).json()["user"]["app_metadata"] == user["app_metadata"]
    assert webhook.events() == ["validate", "signup", "login"]


def test_without_a_secret_nothing_is_signed(make_server, backend):
    unsigned = WebhookServer(secret=None).start()
    try:
        server = make_server(backend, **unsigned.env(events="validate"))
        assert signup(server, new_email()).status_code == 200
        [validate] = unsigned.received
        assert validate.claims is None and validate.header_event == "identity_validate"
    finally:
        unsigned.stop()


def test_a_path_is_sent_to_the_site(make_server, backend, webhook):
    origin, path = webhook.url.rsplit("/", 1)
    server = make_server(backend, GOTRUE_SITE_URL=origin, **webhook.env(GOTRUE_WEBHOOK_URL="/" + path))
    webhook.answers["validate"] = [(200, {"user_metadata": {"checked": "yes"}})]
    assert signup(server, new_email()).json()["user"]["user_metadata"]["checked"] == "yes"


def test_a_wrong_secret_is_refused_by_the_site_and_so_is_the_sign_up(make_server, backend, webhook):
    server = make_server(backend, **webhook.env(GOTRUE_WEBHOOK_SECRET="not-" + SECRET))
    email = new_email()
    assert_error(signup(server, email), 422, "unknown", REFUSED)
    assert len(webhook.refused) == 3 and webhook.refused[0].startswith("signature:")
    assert_no_user(server, email)


# --- refusals and failures: nothing written ----------------------------------------------------


@pytest.mark.parametrize("autoconfirm, event", [("true", "validate"), ("true", "signup"), ("false", "validate")])
def test_a_refusal_leaves_no_user(make_server, backend, webhook, autoconfirm, event):
    server = make_server(backend, GOTRUE_MAILER_AUTOCONFIRM=autoconfirm, GOTRUE_SMTP_MAX_FREQUENCY="1ms",
                         **webhook.env())
    webhook.answers[event] = [(403, {"error": "not on the list"})]
    email = new_email()
    assert_error(signup(server, email), 422, "unknown", REFUSED)
    # netlify tries GOTRUE_WEBHOOK_RETRIES times (3 by default) before giving up.
    assert webhook.events().count(event) == 3
    assert_no_user(server, email)
    # Once the site agrees, the same address signs up.
    webhook.answers[event] = [(204, None)]
    assert signup(server, email).status_code == 200
    assert len(users_named(server, email)) == 1


def test_a_refused_login_issues_no_session(make_server, backend, webhook):
    server = make_server(backend, **webhook.env(events="login", GOTRUE_WEBHOOK_RETRIES="1"))
    email = new_email()
    assert signup(server, email).status_code == 200
    query = "SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = $1"
    before = rows(server, query, email)
    webhook.answers["login"] = [(401, None)]
    assert_error(sign_in(server, email), 422, "unknown", REFUSED)
    assert webhook.events() == ["login"]  # GOTRUE_WEBHOOK_RETRIES=1: one attempt
    assert rows(server, query, email) == before


def test_a_500_is_retried_and_the_next_answer_counts(make_server, backend, webhook):
    server = make_server(backend, **webhook.env(events="validate"))
    webhook.answers["validate"] = [(500, {"error": "cold start"}), (200, {"app_metadata": {"roles": ["beta"]}})]
    resp = signup(server, new_email())
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["app_metadata"]["roles"] == ["beta"]
    assert webhook.events() == ["validate", "validate"]


def test_a_webhook_that_times_out_every_time(make_server, backend, webhook):
    server = make_server(backend, **webhook.env(events="validate", GOTRUE_WEBHOOK_TIMEOUT_SEC="1",
                                                GOTRUE_WEBHOOK_RETRIES="2"))
    webhook.stall = 1.5
    email = new_email()
    started = time.monotonic()
    assert_error(signup(server, email), 504, "unknown", "Failed to perform webhook in time frame (1 seconds)")
    assert 2 <= time.monotonic() - started < 10
    assert webhook.events() == ["validate", "validate"]
    assert_no_user(server, email)


def test_an_unreachable_webhook_is_not_retried(make_server, backend):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}/identity"
    server = make_server(backend, GOTRUE_WEBHOOK_URL=url + "?token=kept-out-of-errors",
                         GOTRUE_WEBHOOK_EVENTS="validate")
    email = new_email()
    body = assert_error(signup(server, email), 502, "unknown", f"Failed to connect to {url}")
    assert "kept-out" not in str(body)
    assert_no_user(server, email)


@pytest.mark.parametrize("answer", [b"<html>oops</html>", b"[1, 2]", b'{"app_metadata": "admin"}'])
def test_an_answer_that_is_not_the_expected_json(make_server, backend, webhook, answer):
    server = make_server(backend, **webhook.env(events="validate"))
    webhook.answers["validate"] = [(200, answer)]
    email = new_email()
    resp = signup(server, email)
    body = assert_error(resp, 500, "unexpected_failure")
    assert body["msg"].startswith("Webhook returned malformed JSON: "), body
    assert webhook.events() == ["validate"]  # an answer is not retried
    assert_no_user(server, email)


# --- settings ------------------------------------------------------------------------------


def test_settings_from_the_environment_and_the_toml_section(tmp_path):
    settings = load_settings(environ={}, dotenv=False, cwd=tmp_path)
    assert (settings.webhook.url, settings.webhook.events) == ("", ())
    assert (settings.webhook.retries, settings.webhook.timeout_sec) == (3, 5)  # netlify's defaults for 0
    (tmp_path / "gotrue_lite.toml").write_text(
        '[webhook]\nurl = "https://example.com/hook"\nsecret = "s3cret"\nevents = ["signup", "login"]\n'
        'retries = 5\ntimeout_sec = 2\n')
    settings = load_settings(environ={}, dotenv=False, cwd=tmp_path)
    webhook = settings.webhook
    assert (webhook.url, webhook.secret, webhook.events, webhook.retries, webhook.timeout_sec) == (
        "https://example.com/hook", "s3cret", ("signup", "login"), 5, 2)
    assert "s3cret" not in repr(settings)
    env = {"GOTRUE_WEBHOOK_EVENTS": "validate", "GOTRUE_WEBHOOK_RETRIES": "1"}
    settings = load_settings(environ=env, dotenv=False, cwd=tmp_path)
    assert (settings.webhook.events, settings.webhook.retries) == (("validate",), 1)
    env = {"GOTRUE_WEBHOOK_RETRIES": "0", "GOTRUE_WEBHOOK_TIMEOUT_SEC": "-1"}
    settings = load_settings(environ=env, dotenv=False, cwd=tmp_path)
    assert (settings.webhook.retries, settings.webhook.timeout_sec) == (3, 5)


def test_a_url_that_is_neither_absolute_nor_a_path_stops_the_start(tmp_path):
    with pytest.raises(ConfigError, match="^GOTRUE_WEBHOOK_URL: expected an absolute http/https URL"):
        load_settings(environ={"GOTRUE_WEBHOOK_URL": "ftp://example.com/x"}, dotenv=False, cwd=tmp_path)


# --- Netlify's gotrue-js against a site with an identity function ----------------------------------


def test_netlify_gotrue_js_signs_up_and_sees_the_roles(node, make_server, backend, tmp_path, webhook):
    env = {**MAIL_ENV, **webhook.env()}
    for kind, body in NETLIFY_TEMPLATES.items():
        path = tmp_path / f"netlify-{kind}.html"
        path.write_text(body)
        env[f"GOTRUE_MAILER_TEMPLATES_{kind.upper()}"] = str(path)
    server = make_server(backend, **env)

    def validate(received: Received):
        # A site that keeps one address out, as identity-validate functions do.
        return (400, {"error": "blocked"}) if received.user["email"].startswith("mallory") else (204, None)

    def login(received: Received):
        roles = received.user["app_metadata"].get("roles", [])
        return 200, {"app_metadata": {**received.user["app_metadata"], "roles": [*roles, "reader"]}}

    webhook.answers.update(validate=validate, signup=add_roles("editor"), login=login)
    run = run_js(node, "netlify_gotrue.mjs", "webhooks", server)
    ada, mallory = run.email("ada"), run.email("mallory")

    signed_up = run.ok("signup")
    assert signed_up["email"] == ada and "roles" not in signed_up["app_metadata"]
    confirmed = run.ok("confirm")
    claims = assert_netlify_user(confirmed, ada)
    assert confirmed["id"] == signed_up["id"]
    assert confirmed["app_metadata"]["roles"] == ["editor"] and claims["app_metadata"]["roles"] == ["editor"]
    assert confirmed["user_metadata"] == {"full_name": "Ada Lovelace", "vetted": True, "email_verified": True}
    logged_in = run.ok("login")
    login_claims = assert_netlify_user(logged_in, ada)
    assert logged_in["app_metadata"]["roles"] == ["editor", "reader"]
    assert login_claims["app_metadata"]["roles"] == ["editor", "reader"]

    netlify_error(run, "signup_refused", 422, REFUSED, "unknown")
    netlify_error(run, "login_refused_user", 400, "Invalid login credentials", "invalid_credentials")
    assert users_named(server, mallory) == []

    assert webhook.events() == ["validate", "signup", "login", "validate", "validate", "validate"]
    validate_ada, signup_ada, login_ada = webhook.received[:3]
    assert validate_ada.user["id"] == signup_ada.user["id"] == login_ada.user["id"] == signed_up["id"]
    assert "email_confirmed_at" not in signup_ada.user  # sent before the confirmation, as netlify does
    for received in webhook.received:
        assert_signed(received, received.event)
