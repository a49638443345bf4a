"""Concurrency hardening: racing refreshes of one token, and a burst of sign-ups (issue 7).

SESSIONS.md §2.3/§2.6: racing refreshes of one active token all succeed and share one child
(the first rotates, the others hit the "lost response" rule); a refresh never answers 5xx, and
the token family stays a chain afterwards. SQLite serialises its writers, so a burst of
sign-ups queues instead of meeting "database is locked".
"""

from __future__ import annotations

import uuid

import pytest

from helpers import (
    PASSWORD, REFRESH_TOKEN, claims_of, concurrently, get_user, refresh, rows, signup_session,
)

ALREADY_USED = "refresh_token_already_used"


def _assert_token_response(body: dict) -> None:
    """assert_session's shape, with expires_at checked against the token's own iat: under a
    burst the first answers are seconds old by the time the last one arrives."""
    assert REFRESH_TOKEN.match(body.get("refresh_token") or ""), body
    assert body.get("token_type") == "bearer", body
    assert type(body.get("expires_in")) is int and body["expires_in"] > 0, body
    assert body["expires_at"] - body["expires_in"] == claims_of(body["access_token"])["iat"], body
    assert isinstance(body.get("user"), dict) and body["user"].get("id"), body


def _check_answers(responses) -> set[str]:
    """Each answer is a session or upstream's reuse error, never 5xx; returns the issued tokens."""
    issued: set[str] = set()
    for resp in responses:
        assert resp.status_code < 500, resp.text
        assert "database is locked" not in resp.text, resp.text
        if resp.status_code == 200:
            body = resp.json()
            _assert_token_response(body)
            issued.add(body["refresh_token"])
        else:
            assert resp.status_code == 400, resp.text
            assert resp.json().get("error_code") == ALREADY_USED, resp.text
    return issued


def _assert_family_consistent(server, session_id: str) -> list[dict]:
    """Exactly one active token in the session, and every revoked token has its child."""
    family = rows(server, "SELECT token, parent, revoked, session_id FROM refresh_tokens WHERE session_id = $1",
                  session_id)
    active = [t for t in family if not t["revoked"]]
    assert len(active) == 1, family
    tokens = {t["token"] for t in family}
    parents = {t["parent"] for t in family if t["parent"]}
    assert parents <= tokens, ("a child names a parent that does not exist", family)
    for token in family:
        if token["revoked"]:
            assert token["token"] in parents, ("a revoked token has no child", token, family)
    # A chain: each parent has exactly one child.
    children = [t["parent"] for t in family if t["parent"]]
    assert len(children) == len(set(children)), family
    return family


def _session_id_of(server, refresh_token: str) -> str:
    [row] = rows(server, "SELECT session_id FROM refresh_tokens WHERE token = $1", refresh_token)
    return row["session_id"]


def test_50_concurrent_refreshes_of_one_token(server):
    session = signup_session(server)
    first = session["refresh_token"]
    session_id = _session_id_of(server, first)

    responses = concurrently(server, "/token?grant_type=refresh_token", [{"refresh_token": first}] * 50)
    issued = _check_answers(responses)
    ok = [r for r in responses if r.status_code == 200]
    assert ok, "no refresh succeeded"
    # The one active token was rotated once; everyone who got a session got that same child.
    assert len(issued) == 1 and first not in issued, issued
    [child] = issued
    family = _assert_family_consistent(server, session_id)
    [active] = [t for t in family if not t["revoked"]]
    assert active["token"] == child and active["parent"] == first
    assert len(family) == 2, family  # no stray rows from the losers of the race

    # Everyone's access token works, and the chain goes on from the child.
    for resp in ok[:5]:
        assert get_user(server, resp.json()["access_token"]).status_code == 200
    again = refresh(server, child)
    assert again.status_code == 200, again.text
    _assert_family_consistent(server, session_id)


def test_50_concurrent_refreshes_mixing_old_and_current_tokens(server):
    """A stolen-token race: the parent, the current token and an old token at once.

    Whatever the interleaving, answers are sessions or the reuse error, and the family stays
    consistent (reuse detection revokes everything, or the chain simply grows).
    """
    session = signup_session(server)
    t0 = session["refresh_token"]
    t1 = refresh(server, t0).json()["refresh_token"]
    t2 = refresh(server, t1).json()["refresh_token"]
    session_id = _session_id_of(server, t0)

    bodies = [{"refresh_token": token} for token in (t0, t1, t2) * 17][:50]
    responses = concurrently(server, "/token?grant_type=refresh_token", bodies)
    _check_answers(responses)
    # t0 is neither active nor the active token's parent: reuse detection must fire for it.
    t0_answers = [r for r, b in zip(responses, bodies) if b["refresh_token"] == t0]
    assert any(r.status_code == 400 for r in t0_answers), [r.text for r in t0_answers]

    family = rows(server, "SELECT token, parent, revoked FROM refresh_tokens WHERE session_id = $1", session_id)
    tokens = {t["token"] for t in family}
    parents = [t["parent"] for t in family if t["parent"]]
    assert set(parents) <= tokens, family
    assert len(parents) == len(set(parents)), ("a token was rotated twice", family)
    assert len([t for t in family if not t["revoked"]]) <= 1, family


def test_200_concurrent_signups_on_sqlite(make_server):
    server = make_server("sqlite")
    emails = [f"burst-{uuid.uuid4().hex[:12]}@example.com" for _ in range(200)]
    responses = concurrently(server, "/signup", [{"email": e, "password": PASSWORD} for e in emails])
    problems = [(r.status_code, r.text[:200]) for r in responses if r.status_code != 200]
    assert not problems, problems[:5]
    assert not any("database is locked" in r.text for r in responses)
    for email, resp in zip(emails, responses):
        body = resp.json()
        _assert_token_response(body)
        assert body["user"]["email"] == email

    users = rows(server, "SELECT u.email, count(i.id) AS identities FROM users u "
                         "LEFT JOIN identities i ON i.user_id = u.id GROUP BY u.email")
    by_email = {u["email"]: u["identities"] for u in users}
    assert set(emails) <= set(by_email)
    assert all(by_email[e] == 1 for e in emails)
    sessions = rows(server, "SELECT count(*) AS n FROM sessions")[0]["n"]
    assert sessions == 200


@pytest.mark.parametrize("count", [30])
def test_concurrent_signups_of_one_email(server, count):
    """Racing sign-ups of the same address: one account, the others a clean 422, never 5xx."""
    email = f"race-{uuid.uuid4().hex[:12]}@example.com"
    responses = concurrently(server, "/signup", [{"email": email, "password": PASSWORD}] * count)
    statuses = [r.status_code for r in responses]
    assert all(s < 500 for s in statuses), [r.text for r in responses if r.status_code >= 500]
    assert statuses.count(200) >= 1, statuses
    for resp in responses:
        if resp.status_code != 200:
            assert resp.status_code == 422 and resp.json()["error_code"] == "user_already_exists", resp.text
    [user] = rows(server, "SELECT id FROM users WHERE email = $1", email)
    identities = rows(server, "SELECT id FROM identities WHERE user_id = $1", user["id"])
    assert len(identities) == 1
