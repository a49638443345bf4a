"""The legacy JavaScript clients against a real server (API.md §11): Netlify's gotrue-js (1.0 and
0.9, what netlify-identity-widget runs) and the GoTrueApi class of @supabase/gotrue-js 1.x.
Scripts: tests/clients/netlify_gotrue.mjs and gotrue_v1.mjs, one JSON line per step.

Node, npm and the installed packages are handled by the `node` fixture of test_clients_js.py
(skip with the reason when missing, fail under GOTRUE_LITE_REQUIRE_CLIENTS=1).
"""

from __future__ import annotations

import re

import pytest

from test_clients_js import MAIL_ENV, REFRESH_TOKEN, SITE_URL, UUID, CODE, node, run_js  # noqa: F401 - node is a fixture

PASSWORD = "correct-horse-battery-1"  # lib.mjs
TOKEN_HASH = re.compile(r"^[0-9a-f]{56}$")  # hex SHA-224

# A Netlify site's mail templates (Go syntax, as a Netlify deployment has them): the widget reads
# the token from the URL fragment and posts it to /verify.
NETLIFY_TEMPLATES = {
    "confirmation": '<h2>Confirm your signup</h2><p><a href="{{ .SiteURL }}/#confirmation_token={{ .TokenHash }}">'
                    "Confirm your mail</a></p>",
    "recovery": '<h2>Reset Password</h2><p><a href="{{ .SiteURL }}/#recovery_token={{ .TokenHash }}">'
                "Reset Password</a></p>",
    "invite": "<h2>You have been invited</h2><p>You have been invited to create a user on {{ .SiteURL }}.</p>"
              '<p><a href="{{ .SiteURL }}/#invite_token={{ .TokenHash }}">Accept the invite</a></p>',
}


def netlify_server(make_server, backend, tmp_path):
    env = dict(MAIL_ENV)
    for kind, body in NETLIFY_TEMPLATES.items():
        path = tmp_path / f"netlify-{kind}.html"
        path.write_text(body)
        env[f"GOTRUE_MAILER_TEMPLATES_{kind.upper()}"] = str(path)
    return make_server(backend, **env)


def calls(run, name: str) -> list[tuple[str, str, int]]:
    return run.requests(name)


def netlify_error(run, name: str, status: int, message: str, error_code: str) -> dict:
    """netlify's JSONHTTPError: HTTP status, message from the body's `msg`, the body kept."""
    error = run[name]["error"]
    assert error is not None, f"step {name} succeeded: {run[name]['data']}"
    assert (error["name"], error["status"], error["message"]) == ("JSONHTTPError", status, message), error
    assert error["details"]["error_code"] == error_code, error
    return error


def assert_netlify_user(data: dict, email: str, aud: str = "authenticated") -> dict:
    """A gotrue-js User with its token; returns the access-token claims."""
    assert UUID.match(data["id"]) and data["email"] == email and data["aud"] == aud
    token, claims = data["token"], data["claims"]
    assert token["token_type"] == "bearer" and REFRESH_TOKEN.match(token["refresh_token"])
    assert type(token["expires_in"]) is int and token["expires_in"] > 0
    # gotrue-js takes the expiry from the JWT: exp must be there, in seconds.
    assert token["expires_at"] == claims["exp"] * 1000
    assert claims["sub"] == data["id"] and claims["aud"] == aud and claims["email"] == email
    assert UUID.match(claims["session_id"])
    return claims


def amr(claims: dict) -> list[str]:
    return [entry["method"] for entry in claims["amr"]]


# --- netlify gotrue-js -------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1.0", "v0.9"])
def test_netlify_gotrue_js(node, make_server, backend, tmp_path, version):
    server = netlify_server(make_server, backend, tmp_path)
    run = run_js(node, "netlify_gotrue.mjs", version, server)
    ada, grace, cy = run.email("ada"), run.email("grace"), run.email("cy")

    # No request carries the Supabase version header, so every error is the legacy envelope.
    assert all(r["api_version"] is None for r in run.all_requests())

    settings = run.ok("settings")
    assert settings["autoconfirm"] is False and settings["disable_signup"] is False
    assert settings["external"]["email"] is True and settings["external"]["github"] is False
    assert settings["external_labels"] == {}

    signed_up = run.ok("signup")
    assert UUID.match(signed_up["id"]) and signed_up["email"] == ada
    assert signed_up["confirmation_sent_at"] and "access_token" not in signed_up
    assert signed_up["user_metadata"] == {"full_name": "Ada Lovelace"}
    assert calls(run, "signup") == [("POST", "/signup", 200)]

    netlify_error(run, "login_unconfirmed", 400, "Email not confirmed", "email_not_confirmed")
    [login_request] = run["login_unconfirmed"]["requests"]
    assert (login_request["method"], login_request["path"], login_request["query"]) == ("POST", "/token", {})
    assert "content-type" in login_request["headers"]  # form-encoded, grant_type inside the body

    mail = run.ok("confirmation_mail")
    assert mail["link"].startswith(f"{SITE_URL}/#confirmation_token=") and TOKEN_HASH.match(mail["token"])
    confirmed = run.ok("confirm")
    claims = assert_netlify_user(confirmed, ada)
    assert confirmed["id"] == signed_up["id"] and confirmed["confirmed_at"] and confirmed["email_confirmed_at"]
    assert confirmed["user_metadata"] == {"full_name": "Ada Lovelace", "email_verified": True}
    assert amr(claims) == ["otp"]
    assert calls(run, "confirm") == [("POST", "/verify", 200), ("GET", "/user", 200)]
    netlify_error(run, "confirm_again", 403, "Email link is invalid or has expired", "otp_expired")

    netlify_error(run, "login_wrong_password", 400, "Invalid login credentials", "invalid_credentials")
    logged_in = run.ok("login")
    login_claims = assert_netlify_user(logged_in, ada)
    assert amr(login_claims) == ["password"] and login_claims["session_id"] != claims["session_id"]
    assert calls(run, "login") == [("POST", "/token", 200), ("GET", "/user", 200)]
    assert run["login"]["requests"][1]["bearer"] == logged_in["token"]["access_token"]

    current = run.ok("currentUser")
    assert current["id"] == logged_in["id"] and current["token"] == logged_in["token"]
    assert calls(run, "currentUser") == []

    updated = run.ok("update")
    assert updated["user_metadata"] == {"full_name": "Ada Lovelace", "email_verified": True, "plan": "pro"}
    assert calls(run, "update") == [("PUT", "/user", 200)]
    assert run["update"]["requests"][0]["bearer"] == logged_in["token"]["access_token"]
    assert run.ok("getUserData")["user_metadata"]["plan"] == "pro"

    # user.jwt(): the cached token while fresh, a refresh (form body) once near expiry or forced.
    assert run.ok("jwt_fresh") == logged_in["token"]["access_token"] and calls(run, "jwt_fresh") == []
    # (a new access token may equal the old one to the byte when both come in one second)
    near = run.ok("jwt_near_expiry")
    assert near["after"]["access_token"] == near["access_token"]
    assert near["after"]["refresh_token"] != near["before"]["refresh_token"]
    assert REFRESH_TOKEN.match(near["after"]["refresh_token"])
    assert near["claims"]["session_id"] == login_claims["session_id"], "a refresh keeps the session"
    assert near["after"]["expires_at"] == near["claims"]["exp"] * 1000
    assert calls(run, "jwt_near_expiry") == [("POST", "/token", 200)]
    forced = run.ok("jwt_forced")
    assert forced["after"]["access_token"] == forced["access_token"]
    assert forced["after"]["refresh_token"] not in (forced["before"]["refresh_token"], near["after"]["refresh_token"])
    assert calls(run, "jwt_forced") == [("POST", "/token", 200)]
    concurrent = run.ok("jwt_concurrent")
    assert concurrent["tokens"][0] == concurrent["tokens"][1] == concurrent["after"]["access_token"]
    assert calls(run, "jwt_concurrent") == [("POST", "/token", 200)]

    assert run.ok("requestPasswordRecovery") == {}
    assert calls(run, "requestPasswordRecovery") == [("POST", "/recover", 200)]
    mail = run.ok("recovery_mail")
    assert mail["link"].startswith(f"{SITE_URL}/#recovery_token=") and TOKEN_HASH.match(mail["token"])
    recovered = run.ok("recover")
    assert amr(assert_netlify_user(recovered, ada)) == ["otp"]
    assert calls(run, "recover") == [("POST", "/verify", 200), ("GET", "/user", 200)]
    # A recovery session sets the new password without the old one.
    assert calls(run, "update_password") == [("PUT", "/user", 200)]
    netlify_error(run, "login_old_password", 400, "Invalid login credentials", "invalid_credentials")
    assert_netlify_user(run.ok("login_new_password"), ada)

    invite = run.ok("invite")
    assert invite["status"] == 200 and invite["body"]["email"] == grace and invite["body"]["invited_at"]
    mail = run.ok("invite_mail")
    assert mail["link"].startswith(f"{SITE_URL}/#invite_token=") and TOKEN_HASH.match(mail["token"])
    accepted = run.ok("acceptInvite")
    assert_netlify_user(accepted, grace)
    assert accepted["id"] == invite["body"]["id"]
    assert accepted["invited_at"] and accepted["confirmed_at"]
    assert accepted["user_metadata"] == {"team": "engines", "email_verified": True}
    assert calls(run, "acceptInvite") == [("POST", "/verify", 200), ("GET", "/user", 200)]
    # acceptInvite's password is the invited user's password from now on.
    assert_netlify_user(run.ok("login_invited"), grace)

    assert run.ok("logout") == {"currentUser": None, "token": None}
    assert calls(run, "logout") == [("POST", "/logout", 204)]
    after = run.ok("refresh_after_logout")
    assert after["status"] == 400 and after["body"]["error_code"] == "refresh_token_not_found"
    after = run.ok("user_after_logout")
    assert after["status"] == 403 and after["body"]["error_code"] == "session_not_found"

    # With an audience configured, every request says X-JWT-AUD and the account lives there.
    site_user = run.ok("audience_signup")
    assert site_user["aud"] == "netlify-site" and site_user["email"] == cy
    for name in ("audience_signup", "audience_confirm", "audience_login", "audience_update"):
        requests = run[name]["requests"]
        assert requests and all("x-jwt-aud" in r["headers"] for r in requests), (name, requests)
    assert_netlify_user(run.ok("audience_confirm"), cy, aud="netlify-site")
    assert_netlify_user(run.ok("audience_login"), cy, aud="netlify-site")
    assert run.ok("audience_update")["user_metadata"]["site"] == "blog"
    assert run.ok("audience_jwt_forced")["aud"] == "netlify-site"
    netlify_error(run, "audience_login_other_audience", 400, "Invalid login credentials", "invalid_credentials")


# --- @supabase/gotrue-js 1.x GoTrueApi -------------------------------------------------------------


def v1_error(run, name: str, status: int, message: str) -> None:
    """GoTrueApi errors are {message, status}: the message from `msg`, nothing else kept."""
    error = run[name]["error"]
    assert error is not None, f"step {name} succeeded: {run[name]['data']}"
    assert (error["status"], error["message"]) == (status, message), error


def assert_v1_session(data: dict, email: str) -> dict:
    assert data["token_type"] == "bearer" and REFRESH_TOKEN.match(data["refresh_token"])
    assert type(data["expires_in"]) is int and data["expires_in"] > 0
    assert type(data["expires_at"]) is int
    assert data["user"]["email"] == email
    claims = data["claims"]
    assert claims["sub"] == data["user"]["id"] and claims["aud"] == "authenticated"
    return claims


def test_supabase_gotrue_js_v1_api(node, make_server, backend):
    server = make_server(backend, GOTRUE_SMTP_MAX_FREQUENCY="1ms", GOTRUE_RATE_LIMIT_EMAIL_SENT="1000")
    run = run_js(node, "gotrue_v1.mjs", "api", server)
    ada, grace = run.email("ada"), run.email("grace")
    requests = run.all_requests()
    assert requests and all(r["api_version"] is None for r in requests)
    assert all(r["apikey"] in (server.anon_key, server.service_role_key) for r in requests)

    signed_up = run.ok("signUpWithEmail")
    assert amr(assert_v1_session(signed_up, ada)) == ["password"]
    assert signed_up["user"]["user_metadata"]["name"] == "Ada"
    [request] = run["signUpWithEmail"]["requests"]
    assert (request["method"], request["path"], request["status"]) == ("POST", "/signup", 200)
    assert request["query"] == {"redirect_to": f"{SITE_URL}/welcome"}
    v1_error(run, "signUpWithEmail_existing", 422, "User already registered")
    v1_error(run, "signUpWithEmail_weak_password", 422, "Password should be at least 6 characters.")

    v1_error(run, "signInWithEmail_wrong_password", 400, "Invalid login credentials")
    session = run.ok("signInWithEmail")
    claims = assert_v1_session(session, ada)
    assert run["signInWithEmail"]["requests"][0]["query"] == {"grant_type": "password"}

    assert run.ok("sendMagicLinkEmail") == {}
    [request] = run["sendMagicLinkEmail"]["requests"]
    assert (request["path"], request["query"]) == ("/otp", {"redirect_to": f"{SITE_URL}/magic"})
    mail = run.ok("magic_link_mail")
    assert mail["type"] == "magiclink" and mail["redirect_to"] == f"{SITE_URL}/magic" and CODE.match(mail["code"])
    # verifyOTP puts redirect_to in the body, next to the token: accepted.
    assert amr(assert_v1_session(run.ok("verifyOTP_magiclink"), ada)) == ["otp"]
    v1_error(run, "sendMagicLinkEmail_no_signup", 422, "Signups not allowed for otp")

    assert run.ok("resetPasswordForEmail") == {}
    mail = run.ok("recovery_mail")
    assert mail["type"] == "recovery" and mail["redirect_to"] == f"{SITE_URL}/reset"
    assert run.ok("resetPasswordForEmail_unknown") == {}

    refreshed = run.ok("refreshAccessToken")
    assert refreshed["refresh_token"] != session["refresh_token"]
    assert assert_v1_session(refreshed, ada)["session_id"] == claims["session_id"]
    assert run["refreshAccessToken"]["requests"][0]["query"] == {"grant_type": "refresh_token"}
    assert run.ok("refreshAccessToken_again")["refresh_token"] != refreshed["refresh_token"]
    v1_error(run, "refreshAccessToken_reused", 400, "Invalid Refresh Token: Already Used")
    v1_error(run, "refreshAccessToken_invalid", 400, "Refresh token is not valid")

    again = run.ok("signInWithEmail_again")
    user = run.ok("getUser")
    assert user["id"] == again["user"]["id"] and user["email"] == ada
    assert run["getUser"]["requests"][0]["bearer"] == again["access_token"]
    error = run["getUser_bad_jwt"]["error"]
    assert error["status"] == 403 and error["message"].startswith("invalid JWT: unable to parse or verify signature")
    assert run.ok("updateUser")["user_metadata"] == {"name": "Ada", "email_verified": True, "plan": "pro"}
    run.ok("signOut")
    assert calls(run, "signOut") == [("POST", "/logout", 204)]
    v1_error(run, "getUser_after_signOut", 403, "Session from session_id claim in JWT does not exist")

    v1_error(run, "inviteUserByEmail_anon", 403, "User not allowed")
    invited = run.ok("inviteUserByEmail")
    assert invited["email"] == grace and invited["invited_at"] and invited["user_metadata"] == {"team": "engines"}
    assert run["inviteUserByEmail"]["requests"][0]["query"] == {"redirect_to": f"{SITE_URL}/join"}
    mail = run.ok("invite_mail")
    assert mail["type"] == "invite" and mail["redirect_to"] == f"{SITE_URL}/join"
    assert run.ok("inviteUserByEmail_existing")["id"] == invited["id"]  # not confirmed yet: re-invited
    assert invited["id"] in [u["id"] for u in run.ok("listUsers")]
    v1_error(run, "deleteUser_anon", 403, "User not allowed")
    assert run.ok("deleteUser") == {}
    assert calls(run, "deleteUser") == [("DELETE", f"/admin/users/{invited['id']}", 200)]
    v1_error(run, "getUserById_deleted", 404, "User not found")
    v1_error(run, "deleteUser_unknown", 404, "User not found")


def test_gotrue_v1_api_phone_methods(node, make_server, backend):
    from test_clients_js import phone_run

    run, (p1, p2), _server = phone_run(node, make_server, backend, "gotrue_v1.mjs", "phone", 2)
    pending = run.ok("signUpWithPhone")
    assert pending["phone"] == p1 and "access_token" not in pending and pending["user_metadata"] == {"name": "Pat"}
    assert CODE.match(run.ok("sms_signup")["code"])
    v1_error(run, "signInWithPhone_unconfirmed", 400, "Phone not confirmed")
    v1_error(run, "verifyMobileOTP_wrong", 403, "Token has expired or is invalid")
    assert amr(assert_v1_session(run.ok("verifyMobileOTP"), "")) == ["otp"]
    assert run.ok("verifyMobileOTP")["user"]["phone"] == p1
    assert amr(assert_v1_session(run.ok("signInWithPhone"), "")) == ["password"]
    assert run.ok("sendMobileOTP") == {"message_id": run.ok("sms_signin")["id"]}
    assert amr(assert_v1_session(run.ok("verifyMobileOTP_signin"), "")) == ["otp"]
    assert run.ok("sendMobileOTP_new") == {}
    assert run.ok("sms_new")["to"] == p2
    assert run.ok("verifyOTP_new")["user"]["phone"] == p2
    v1_error(run, "sendMobileOTP_no_create", 422, "Signups not allowed for otp")
    v1_error(run, "signUpWithPhone_bad_number", 400, "Invalid phone number format (E.164 required)")
