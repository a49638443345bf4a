"""GOTRUE_SESSIONS_SINGLE_PER_USER (SESSIONS.md §2.8, upstream internal/tokens/service.go): only
the user's most recently refreshed valid session (per tag) may refresh; older ones are refused,
not deleted. On both stores."""

from __future__ import annotations

from datetime import timedelta

import httpx

from helpers import (
    TIMEOUT, assert_error, bearer, new_email, refresh, rows, sign_in, signup_session, sql, utcnow,
)

NEWER_LOGIN = "Invalid Refresh Token: Session Expired (Revoked by Newer Login)"


def _session_id(server, session: dict) -> str:
    found = rows(server, "SELECT session_id FROM refresh_tokens WHERE token = $1", session["refresh_token"])
    return found[0]["session_id"]


def _two_sessions(server) -> tuple[dict, dict]:
    email = new_email()
    first = signup_session(server, email)
    second = sign_in(server, email)
    assert second.status_code == 200, second.text
    return first, second.json()


def test_an_older_session_cannot_refresh(make_server, backend):
    server = make_server(backend, GOTRUE_SESSIONS_SINGLE_PER_USER="true")
    first, second = _two_sessions(server)
    assert_error(refresh(server, first["refresh_token"]), 400, "session_expired", NEWER_LOGIN)
    # Nothing is deleted: the session stays, its access token works until it expires.
    assert rows(server, "SELECT id FROM sessions WHERE id = $1", _session_id(server, first))
    assert httpx.get(server.url + "/user", headers=bearer(first["access_token"]), timeout=TIMEOUT).status_code == 200
    # The newest session refreshes, again and again.
    resp = refresh(server, second["refresh_token"])
    assert resp.status_code == 200, resp.text
    resp = refresh(server, resp.json()["refresh_token"])
    assert resp.status_code == 200, resp.text
    # The refusal does not revoke anything: still refused for the same reason, not "Already Used".
    assert_error(refresh(server, first["refresh_token"]), 400, "session_expired", NEWER_LOGIN)
    # A third sign-in supersedes the second.
    third = sign_in(server, first["user"]["email"]).json()
    assert_error(refresh(server, resp.json()["refresh_token"]), 400, "session_expired", NEWER_LOGIN)
    assert refresh(server, third["refresh_token"]).status_code == 200


def test_sessions_of_other_users_do_not_count(make_server, backend):
    server = make_server(backend, GOTRUE_SESSIONS_SINGLE_PER_USER="true")
    mine = signup_session(server, new_email())
    signup_session(server, new_email())
    resp = refresh(server, mine["refresh_token"])
    assert resp.status_code == 200, resp.text


def test_a_newer_session_that_is_no_longer_valid_does_not_count(make_server, backend):
    server = make_server(backend, GOTRUE_SESSIONS_SINGLE_PER_USER="true")
    first, second = _two_sessions(server)
    sql(server, "UPDATE sessions SET not_after = $1 WHERE id = $2", utcnow() - timedelta(minutes=1),
        _session_id(server, second))
    resp = refresh(server, first["refresh_token"])
    assert resp.status_code == 200, resp.text


def test_sessions_with_different_tags_coexist(make_server, backend):
    server = make_server(backend, GOTRUE_SESSIONS_SINGLE_PER_USER="true", GOTRUE_SESSIONS_TAGS="web,mobile")
    first, second = _two_sessions(server)
    # first has no tag: it counts as "web", the first listed; second is a mobile session.
    sql(server, "UPDATE sessions SET tag = 'mobile' WHERE id = $1", _session_id(server, second))
    resp = refresh(server, first["refresh_token"])
    assert resp.status_code == 200, resp.text
    # An unlisted tag counts as the first listed: now both are "web", and first is the newer.
    sql(server, "UPDATE sessions SET tag = 'tv' WHERE id = $1", _session_id(server, second))
    assert_error(refresh(server, second["refresh_token"]), 400, "session_expired", NEWER_LOGIN)
    assert refresh(server, resp.json()["refresh_token"]).status_code == 200


def test_off_by_default(make_server, backend):
    server = make_server(backend)
    first, second = _two_sessions(server)
    for session in (first, second):
        resp = refresh(server, session["refresh_token"])
        assert resp.status_code == 200, resp.text

