"""POST /logout: scopes, what keeps working afterwards, and the 204 (API.md §5.12, SESSIONS.md §2.9)."""

from __future__ import annotations

import httpx
import pytest
from jose import jwt

from helpers import (
    assert_error, bearer, get_user, logout, mint, new_email, refresh, shared, sign_in, signup_session,  # noqa: F401
)


def three_sessions(server) -> list[dict]:
    """One user signed in three times: three sessions, each with its own tokens."""
    email = new_email()
    sessions = [signup_session(server, email)]
    for _ in range(2):
        resp = sign_in(server, email)
        assert resp.status_code == 200, resp.text
        sessions.append(resp.json())
    return sessions


def works(server, session: dict) -> bool:
    """Whether a session survived: its refresh token still refreshes (and its access token is accepted)."""
    user = get_user(server, session["access_token"])
    resp = refresh(server, session["refresh_token"])
    if resp.status_code == 200:
        assert user.status_code == 200, user.text
        session["refresh_token"] = resp.json()["refresh_token"]
        session["access_token"] = resp.json()["access_token"]
        return True
    assert_error(resp, 400, "refresh_token_not_found")
    assert_error(user, 403, "session_not_found", "Session from session_id claim in JWT does not exist")
    return False


def assert_logged_out(resp: httpx.Response) -> None:
    assert resp.status_code == 204, resp.text
    assert resp.content == b""


def test_scope_local(shared):
    a, b, c = three_sessions(shared)
    assert_logged_out(logout(shared, a["access_token"], "local"))
    assert [works(shared, s) for s in (a, b, c)] == [False, True, True]


def test_scope_others(shared):
    a, b, c = three_sessions(shared)
    assert_logged_out(logout(shared, a["access_token"], "others"))
    assert [works(shared, s) for s in (a, b, c)] == [True, False, False]


@pytest.mark.parametrize("scope", [None, "", "global"])
def test_scope_global(shared, scope):
    a, b, c = three_sessions(shared)
    other_user = signup_session(shared)
    assert_logged_out(logout(shared, b["access_token"], scope))
    assert [works(shared, s) for s in (a, b, c)] == [False, False, False]
    assert works(shared, other_user)


def test_token_without_session_logs_out_everywhere(shared):
    a, b, _c = three_sessions(shared)
    claims = {k: v for k, v in jwt.get_unverified_claims(a["access_token"]).items() if k != "session_id"}
    assert_logged_out(logout(shared, mint(claims), "local"))
    assert [works(shared, s) for s in (a, b)] == [False, False]


def test_unsupported_scope(shared):
    a, b, _c = three_sessions(shared)
    assert_error(logout(shared, a["access_token"], "everything"), 400, "validation_failed",
                 'Unsupported logout scope "everything"')
    assert_error(logout(shared, a["access_token"], "LOCAL"), 400, "validation_failed")
    assert works(shared, a) and works(shared, b)


def test_logout_reads_no_body(shared):
    a, b, c = three_sessions(shared)
    for session, content in ((a, b""), (b, b"{}"), (c, b"{not json at all")):
        resp = httpx.post(shared.url + "/logout?scope=local", content=content, timeout=60,
                          headers={**bearer(session["access_token"]), "Content-Type": "application/json"})
        assert_logged_out(resp)
    assert [works(shared, s) for s in (a, b, c)] == [False, False, False]


def test_logout_twice(shared):
    a, b, _c = three_sessions(shared)
    assert_logged_out(logout(shared, a["access_token"], "local"))
    assert_error(logout(shared, a["access_token"], "local"), 403, "session_not_found")
    assert works(shared, b)


def test_logout_needs_a_user_token(shared):
    assert_error(httpx.post(shared.url + "/logout", timeout=60), 401, "no_authorization")
    assert_error(logout(shared, shared.service_role_key), 403, "bad_jwt", "invalid claim: missing sub claim")
    assert_error(logout(shared, "not.a.jwt"), 403, "bad_jwt")
