"""Auth hooks over HTTP: each hook at its point in the flows, signed per Standard Webhooks (checked
by the `standardwebhooks` package in tests/hook_server.py), and upstream's answers when a hook
fails, times out, answers garbage or cannot be reached. Both stores."""

from __future__ import annotations

import socket
import time
import uuid

import pytest

from helpers import PASSWORD, assert_error, claims_of, new_email, post, refresh, rows, sign_in
from hook_server import OTHER_SECRET, SECRET, Reply, hook_server  # noqa: F401 - a fixture

UNCONFIRMED = {"GOTRUE_MAILER_AUTOCONFIRM": "false"}


def signup(server, email, password=PASSWORD, **body):
    return post(server, "/signup", {"email": email, "password": password, **body})


def count(server, table: str, where: str = "", *args) -> int:
    return rows(server, f"SELECT count(*) AS n FROM {table} {where}", *args)[0]["n"]


def with_claims(**extra):
    return lambda payload: {"claims": {**payload["claims"], **extra}}


# --- custom_access_token ---------------------------------------------------------------------


def test_custom_access_token_adds_claims_on_sign_up_sign_in_and_refresh(hook_server, make_server, backend):
    hooks = hook_server()
    hooks.answer("custom_access_token", with_claims(tenant="acme", user_role="admin"))
    server = make_server(backend, **hooks.env("custom_access_token"))
    email = new_email()
    first = signup(server, email)
    assert first.status_code == 200, first.text
    assert claims_of(first.json()["access_token"])["tenant"] == "acme"

    call = hooks.calls("custom_access_token")[-1]
    assert call.verified
    payload = call.payload
    assert payload["authentication_method"] == "password"
    assert payload["user_id"] == first.json()["user"]["id"]
    assert payload["metadata"]["name"] == "customize-access-token"
    uuid.UUID(payload["metadata"]["uuid"])
    assert payload["metadata"]["ip_address"] == "127.0.0.1"
    sent = payload["claims"]
    assert sent["sub"] == payload["user_id"] and sent["email"] == email and sent["aal"] == "aal1"
    assert {"aud", "exp", "iat", "role", "session_id", "is_anonymous", "amr"} <= set(sent)

    signed_in = sign_in(server, email)
    assert signed_in.status_code == 200, signed_in.text
    assert claims_of(signed_in.json()["access_token"])["user_role"] == "admin"

    refreshed = refresh(server, signed_in.json()["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert claims_of(refreshed.json()["access_token"])["tenant"] == "acme"
    assert hooks.calls("custom_access_token")[-1].payload["authentication_method"] == "token_refresh"
    # The server's own expiry, whatever the token says (upstream).
    assert refreshed.json()["expires_in"] == 3600


def test_custom_access_token_may_replace_standard_claims(hook_server, make_server, backend):
    hooks = hook_server()

    def answer(payload):
        claims = dict(payload["claims"])
        claims["role"] = "authenticated_plus"
        claims["app_metadata"] = {**claims["app_metadata"], "plan": "pro"}
        claims.pop("amr", None)  # not required
        return {"claims": claims}

    hooks.answer("custom_access_token", answer)
    server = make_server(backend, **hooks.env("custom_access_token"))
    body = signup(server, new_email()).json()
    claims = claims_of(body["access_token"])
    assert claims["role"] == "authenticated_plus" and claims["app_metadata"]["plan"] == "pro"
    assert "amr" not in claims


def test_claims_missing_required_ones_fail_the_sign_in_and_leave_no_session(hook_server, make_server, backend):
    hooks = hook_server()
    server = make_server(backend, **hooks.env("custom_access_token"))
    hooks.answer("custom_access_token", lambda p: {"claims": {**p["claims"], "tenant": "a"}})
    email = new_email()
    assert signup(server, email).status_code == 200

    def drop(payload):
        claims = dict(payload["claims"])
        del claims["session_id"], claims["email"]
        return {"claims": claims}

    hooks.answer("custom_access_token", drop)
    before = count(server, "sessions")
    resp = sign_in(server, email)
    assert_error(resp, 500, "unexpected_failure",
                 "output claims do not conform to the expected schema: \n"
                 "- (root): email is required\n- (root): session_id is required\n")
    assert count(server, "sessions") == before  # the session of the failed sign-in was undone

    hooks.answer("custom_access_token", lambda p: {"claims": {**p["claims"], "exp": "tomorrow"}})
    assert_error(sign_in(server, email), 500, "unexpected_failure",
                 "output claims do not conform to the expected schema: \n"
                 "- exp: Invalid type. Expected: integer, given: string\n")
    hooks.answer("custom_access_token", lambda p: {"not_claims": {}})
    assert_error(sign_in(server, email), 500, "unexpected_failure", "output claims field is missing")
    assert count(server, "sessions") == before


def test_a_failing_hook_on_refresh_leaves_the_refresh_token_usable(hook_server, make_server, backend):
    hooks = hook_server()
    server = make_server(backend, **hooks.env("custom_access_token"))
    hooks.answer("custom_access_token", lambda p: {"claims": p["claims"]})
    session = signup(server, new_email()).json()
    hooks.answer("custom_access_token", lambda p: Reply(status=500, body="{}"))
    assert_error(refresh(server, session["refresh_token"]), 500, "unexpected_failure",
                 "Unexpected status code returned from hook: 500")
    hooks.answer("custom_access_token", lambda p: {"claims": p["claims"]})
    again = refresh(server, session["refresh_token"])
    assert again.status_code == 200, again.text  # not spent by the failed attempt
    assert again.json()["refresh_token"] != session["refresh_token"]


# --- answers upstream refuses ----------------------------------------------------------------


@pytest.mark.parametrize("reply, status, code, message", [
    (Reply(status=500, body='{"oops": true}'), 500, "unexpected_failure", "Unexpected status code returned from hook: 500"),
    (Reply(status=400, body="{}"), 500, "unexpected_failure", "Invalid payload sent to hook"),
    (Reply(status=401, body="{}"), 500, "unexpected_failure", "Hook requires authorization token"),
    (Reply(status=503, body="{}"), 500, "unexpected_failure", "Service currently unavailable due to hook"),
    (Reply(body="<html>hello</html>", content_type="text/html"), 400, "hook_payload_invalid_content_type",
     "Invalid JSON response. Received content-type: text/html"),
    (Reply(body="not json at all"), 500, "unexpected_failure", "Error unmarshaling JSON output."),
    (Reply(body='{"error": {"http_code": 429, "message": "Slow down, tenant is over quota"}}'), 429, "unknown",
     "Slow down, tenant is over quota"),
    (Reply(body='{"error": {"message": "no code given"}}'), 500, "unexpected_failure", "no code given"),
    (Reply(body=b"{" + b'"x":"' + b"a" * (200 * 1024) + b'"}'), 422, "hook_payload_over_size_limit",
     "Payload size exceeded size limit of 204800 bytes"),
])
def test_bad_answers_abort_with_upstreams_error(hook_server, make_server, backend, reply, status, code, message):
    hooks = hook_server()
    hooks.answer("custom_access_token", lambda p: reply)
    server = make_server(backend, **hooks.env("custom_access_token"))
    email = new_email()
    resp = signup(server, email)
    assert_error(resp, status, code, message)
    # The sign-up and its session are one transaction: nothing of it is left.
    assert count(server, "users", "WHERE email = $1", email) == 0
    assert count(server, "sessions") == 0


def test_a_hook_that_times_out(hook_server, make_server, backend):
    hooks = hook_server()
    hooks.answer("custom_access_token", lambda p: Reply(body="{}", delay=7))
    server = make_server(backend, **hooks.env("custom_access_token"))
    started = time.monotonic()
    resp = signup(server, new_email())
    elapsed = time.monotonic() - started
    assert_error(resp, 422, "hook_timeout", "Failed to reach hook within maximum time of 5.000000 seconds")
    assert 4.5 < elapsed < 6.5, elapsed
    assert len(hooks.calls("custom_access_token")) == 1
    assert count(server, "users") == 0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_hook_is_tried_three_times(make_server, backend):
    port = _closed_port()
    server = make_server(backend, GOTRUE_HOOK_BEFORE_USER_CREATED_ENABLED="true",
                         GOTRUE_HOOK_BEFORE_USER_CREATED_URI=f"http://127.0.0.1:{port}/hook",
                         GOTRUE_HOOK_BEFORE_USER_CREATED_SECRETS=SECRET)
    started = time.monotonic()
    resp = signup(server, new_email())
    elapsed = time.monotonic() - started
    assert_error(resp, 422, "hook_timeout_after_retry", "Failed to reach hook after maximum retries")
    assert 3.5 < elapsed < 5.5, elapsed  # three attempts, two seconds apart
    assert count(server, "users") == 0


def test_several_secrets_each_sign_the_call(hook_server, make_server, backend):
    first, second = hook_server(SECRET), hook_server(OTHER_SECRET)
    # The same server URI cannot be two servers: configure each hook at one of them, both secrets.
    both = f"{SECRET}|{OTHER_SECRET}"
    server = make_server(backend, **first.env("before_user_created", secrets=both),
                         **second.env("after_user_created", secrets=both), **UNCONFIRMED)
    assert signup(server, new_email()).status_code == 200
    assert first.calls("before_user_created")[0].verified
    assert second.calls("after_user_created")[0].verified
    signature = first.calls("before_user_created")[0].headers["webhook-signature"]
    assert len(signature.split(" ")) == 2 and all(s.startswith("v1,") for s in signature.split(" "))


def test_a_wrong_secret_is_refused_by_the_hook(hook_server, make_server, backend):
    hooks = hook_server(SECRET)
    server = make_server(backend, **hooks.env("before_user_created", secrets=OTHER_SECRET))
    resp = signup(server, new_email())
    # The hook answers 401 to a signature it cannot verify: upstream's 500.
    assert_error(resp, 500, "unexpected_failure", "Hook requires authorization token")
    assert not hooks.calls("before_user_created")[0].verified
    assert count(server, "users") == 0


# --- before / after user created -------------------------------------------------------------


def test_before_user_created_can_refuse_a_sign_up(hook_server, make_server, backend):
    hooks = hook_server()

    def gate(payload):
        if not payload["user"]["email"].endswith("@example.com"):
            return {"error": {"http_code": 403, "message": "Only example.com addresses may sign up"}}
        return {}

    hooks.answer("before_user_created", gate)
    server = make_server(backend, **hooks.env("before_user_created", "after_user_created"), **UNCONFIRMED)
    outsider = f"someone-{uuid.uuid4().hex[:8]}@elsewhere.test"
    assert_error(signup(server, outsider), 403, "unknown", "Only example.com addresses may sign up")
    assert count(server, "users") == 0 and count(server, "identities") == 0
    assert hooks.calls("after_user_created") == []

    email = new_email()
    resp = signup(server, email, data={"name": "Ada"})
    assert resp.status_code == 200, resp.text
    before = hooks.calls("before_user_created")[-1].payload
    after = hooks.calls("after_user_created")[-1].payload
    assert before["metadata"]["name"] == "before-user-created"
    assert before["user"]["email"] == email and before["user"]["user_metadata"] == {"name": "Ada"}
    assert before["user"]["app_metadata"] == {"provider": "email", "providers": ["email"]}
    # The user that was announced is the one that was saved.
    assert before["user"]["id"] == resp.json()["id"] == after["user"]["id"]
    assert after["metadata"]["name"] == "after-user-created"
    assert after["user"]["identities"][0]["provider"] == "email"


def test_before_user_created_on_anonymous_sign_in_and_magic_link(hook_server, make_server, backend):
    hooks = hook_server()
    hooks.answer("before_user_created", lambda p: {"error": {"http_code": 400, "message": "closed"}})
    server = make_server(backend, **hooks.env("before_user_created"), GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED="true",
                         **UNCONFIRMED)
    assert_error(post(server, "/signup", {}), 400, "unknown", "closed")
    assert hooks.calls("before_user_created")[-1].payload["user"]["is_anonymous"] is True
    assert_error(post(server, "/otp", {"email": new_email()}), 400, "unknown", "closed")
    assert count(server, "users") == 0


def test_after_user_created_failure_is_upstreams_500_and_the_user_stays(hook_server, make_server, backend):
    hooks = hook_server()
    hooks.answer("after_user_created", lambda p: Reply(status=500, body="{}"))
    server = make_server(backend, **hooks.env("after_user_created"), **UNCONFIRMED)
    email = new_email()
    assert_error(signup(server, email), 500, "unexpected_failure", "Error invoking hook")
    assert count(server, "users", "WHERE email = $1", email) == 1


# --- password_verification_attempt -----------------------------------------------------------


def test_password_verification_attempt_rejects_and_logs_out(hook_server, make_server, backend):
    hooks = hook_server()
    failures: dict[str, int] = {}

    def judge(payload):
        if not payload["valid"]:
            failures[payload["user_id"]] = failures.get(payload["user_id"], 0) + 1
        if failures.get(payload["user_id"], 0) >= 2:
            return {"decision": "reject", "message": "Too many attempts, account locked",
                    "should_logout_user": True}
        return {"decision": "continue"}

    hooks.answer("password_verification_attempt", judge)
    server = make_server(backend, **hooks.env("password_verification_attempt"))
    email = new_email()
    session = signup(server, email).json()
    user_id = session["user"]["id"]
    assert sign_in(server, email).status_code == 200
    assert hooks.calls("password_verification_attempt")[-1].payload == {
        **hooks.calls("password_verification_attempt")[-1].payload, "user_id": user_id, "valid": True}
    assert_error(sign_in(server, email, "wrong-password-1"), 400, "invalid_credentials",
                 "Invalid login credentials")
    assert count(server, "sessions", "WHERE user_id = $1", user_id) == 2
    # The second failure makes the hook reject, and it logs the user out everywhere.
    assert_error(sign_in(server, email, "wrong-password-2"), 400, "invalid_credentials",
                 "Too many attempts, account locked")
    assert count(server, "sessions", "WHERE user_id = $1", user_id) == 0
    # Even the right password is refused now.
    assert_error(sign_in(server, email), 400, "invalid_credentials", "Too many attempts, account locked")
    assert refresh(server, session["refresh_token"]).status_code == 400


def test_password_rejection_without_a_message(hook_server, make_server, backend):
    hooks = hook_server()
    hooks.answer("password_verification_attempt", lambda p: {"decision": "reject"})
    server = make_server(backend, **hooks.env("password_verification_attempt"))
    email = new_email()
    assert signup(server, email).status_code == 200
    assert_error(sign_in(server, email), 400, "invalid_credentials",
                 "Further password verification attempts will be rejected.")
    hooks.answer("password_verification_attempt", lambda p: {"decision": 7})
    assert_error(sign_in(server, email), 500, "unexpected_failure", "Error unmarshaling JSON output.")


def test_admin_generate_link_asks_the_user_hooks(hook_server, make_server, backend):
    hooks = hook_server()
    hooks.answer("before_user_created", lambda p: {"error": {"http_code": 409, "message": "Invites are paused"}}
                 if p["user"]["email"].startswith("invitee") else {})
    server = make_server(backend, **hooks.env("before_user_created", "after_user_created"))
    admin = {"Authorization": f"Bearer {server.service_role_key}"}
    invitee = new_email("invitee")
    assert_error(post(server, "/admin/generate_link", {"type": "invite", "email": invitee}, headers=admin),
                 409, "unknown", "Invites are paused")
    assert count(server, "users") == 0
    email = new_email("linked")
    resp = post(server, "/admin/generate_link", {"type": "signup", "email": email, "password": PASSWORD},
                headers=admin)
    assert resp.status_code == 200, resp.text
    assert hooks.calls("after_user_created")[-1].payload["user"]["id"] == resp.json()["id"]


def test_secrets_stay_out_of_the_log(hook_server, make_server, backend, caplog):
    hooks = hook_server()
    hooks.answer("custom_access_token", lambda p: Reply(status=500, body="{}"))
    uri = hooks.uri("custom_access_token").replace("http://", "http://hookuser:url-password-123@")
    server = make_server(backend, GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_ENABLED="true",
                         GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_URI=uri, GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_SECRETS=SECRET)
    with caplog.at_level("INFO"):
        assert signup(server, new_email()).status_code == 500
    assert "errored out" in caplog.text  # the failure is logged…
    assert "url-password-123" not in caplog.text and SECRET.split("_", 1)[1] not in caplog.text  # …its secrets not
    assert hooks.calls("custom_access_token")[0].verified
