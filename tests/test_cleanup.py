"""Housekeeping (GOTRUE_DB_CLEANUP_ENABLED, upstream's models/cleanup.go): with it on, a background
task deletes expired one-time tokens, flow states, MFA challenges, unverified factors and the refresh
tokens of ended sessions in small batches, on both stores; fresh rows and live sessions stay."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from gotrue_lite import clock
from gotrue_lite.app import CLEANUP
from helpers import get_user, post, refresh, rows, signup_session, sql

HOUR = timedelta(hours=1)


def ago(span: timedelta):
    return clock.now() - span


def new_id() -> str:
    return str(uuid.uuid4())


def ids(server, table: str) -> set[str]:
    return {str(row["id"]) for row in rows(server, f"SELECT id FROM {table}")}


def add_session(server, user_id: str, not_after) -> str:
    session_id = new_id()
    sql(server, "INSERT INTO sessions (id, user_id, created_at, updated_at, not_after, aal) "
                "VALUES ($1, $2, $3, $3, $4, 'aal1')", session_id, user_id, ago(100 * HOUR), not_after)
    return session_id


def add_refresh_token(server, user_id: str, session_id: str, *, revoked: bool, updated_at) -> str:
    token = uuid.uuid4().hex[:12]
    sql(server, "INSERT INTO refresh_tokens (token, user_id, revoked, created_at, updated_at, session_id) "
                "VALUES ($1, $2, $3, $4, $4, $5)", token, user_id, revoked, updated_at, session_id)
    return token


def token_states(server) -> dict[str, bool]:
    return {row["token"]: bool(row["revoked"]) for row in rows(server, "SELECT token, revoked FROM refresh_tokens")}


def test_expired_rows_go_and_fresh_ones_stay(make_server, backend):
    first = make_server(backend)
    assert first.app[CLEANUP] is None  # off by default, as upstream
    session = signup_session(first)
    user_id, live_session = session["user"]["id"], None
    live_session = rows(first, "SELECT session_id FROM refresh_tokens WHERE token = $1",
                        session["refresh_token"])[0]["session_id"]

    old, fresh = ago(25 * HOUR), ago(HOUR)
    flow_old, flow_fresh = new_id(), new_id()
    for flow_id, at in ((flow_old, old), (flow_fresh, fresh)):
        sql(first, "INSERT INTO flow_state (id, provider_type, authentication_method, created_at, updated_at) "
                   "VALUES ($1, 'email', 'magiclink', $2, $2)", flow_id, at)
    factor_old, factor_fresh, factor_verified = new_id(), new_id(), new_id()
    for factor_id, status, at in ((factor_old, "unverified", old), (factor_fresh, "unverified", fresh),
                                  (factor_verified, "verified", old)):
        sql(first, "INSERT INTO mfa_factors (id, user_id, factor_type, status, created_at, updated_at) "
                   "VALUES ($1, $2, 'totp', $3, $4, $4)", factor_id, user_id, status, at)
    challenge_old, challenge_fresh = new_id(), new_id()
    for challenge_id, at in ((challenge_old, old), (challenge_fresh, fresh)):
        sql(first, "INSERT INTO mfa_challenges (id, factor_id, created_at, ip_address) VALUES ($1, $2, $3, '127.0.0.1')",
            challenge_id, factor_verified, at)
    # A one-time token is stale a day after its code expired (GOTRUE_MAILER_OTP_EXP, 24 h here).
    ott_old, ott_fresh = new_id(), new_id()
    for ott_id, kind, at in ((ott_old, "recovery_token", ago(49 * HOUR)), (ott_fresh, "reauthentication_token", ago(30 * HOUR))):
        sql(first, "INSERT INTO one_time_tokens (id, user_id, token_type, token_hash, relates_to, created_at, updated_at) "
                   "VALUES ($1, $2, $3, $4, 'someone@example.com', $5, $5)", ott_id, user_id, kind, uuid.uuid4().hex, at)
    # Sessions: one ended a day ago (its token is revoked), one three days ago (deleted with its token).
    ended, long_ended = add_session(first, user_id, old), add_session(first, user_id, ago(73 * HOUR))
    ended_token = add_refresh_token(first, user_id, ended, revoked=False, updated_at=old)
    long_ended_token = add_refresh_token(first, user_id, long_ended, revoked=False, updated_at=old)
    revoked_old = add_refresh_token(first, user_id, live_session, revoked=True, updated_at=old)
    revoked_fresh = add_refresh_token(first, user_id, live_session, revoked=True, updated_at=fresh)

    # A second server on the same database, with housekeeping on: its first sweep runs at start.
    second = make_server(backend, DATABASE_URL=first.db_url, GOTRUE_DB_CLEANUP_ENABLED="true")
    cleanup = second.app[CLEANUP]
    second.run(asyncio.wait_for(cleanup.swept.wait(), 20))

    assert flow_old not in ids(first, "flow_state") and flow_fresh in ids(first, "flow_state")
    assert ids(first, "mfa_factors") == {factor_fresh, factor_verified}
    assert ids(first, "mfa_challenges") == {challenge_fresh}
    assert ids(first, "one_time_tokens") == {ott_fresh}
    assert ids(first, "sessions") == {live_session, ended}
    tokens = token_states(first)
    assert long_ended_token not in tokens and revoked_old not in tokens
    assert tokens[ended_token] is True and tokens[revoked_fresh] is True
    assert tokens[session["refresh_token"]] is False

    # The live session works on, through the server that cleaned.
    assert get_user(second, session["access_token"]).status_code == 200
    assert refresh(second, session["refresh_token"]).status_code == 200


def test_a_large_backlog_goes_in_batches_while_requests_are_served(make_server, backend):
    first = make_server(backend)
    session = signup_session(first)
    old = ago(25 * HOUR)
    for _ in range(250):
        sql(first, "INSERT INTO flow_state (id, provider_type, authentication_method, created_at, updated_at) "
                   "VALUES ($1, 'email', 'magiclink', $2, $2)", new_id(), old)
    second = make_server(backend, DATABASE_URL=first.db_url, GOTRUE_DB_CLEANUP_ENABLED="true")
    assert get_user(second, session["access_token"]).status_code == 200
    second.run(asyncio.wait_for(second.app[CLEANUP].swept.wait(), 30))
    assert rows(first, "SELECT id FROM flow_state") == []


def test_timebox_inactivity_and_anonymous_batches(make_server, backend):
    first = make_server(backend, GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED="true")
    keeper = signup_session(first)["user"]["id"]
    anonymous_old = post(first, "/signup", {}).json()  # anonymous sign-ins
    anonymous_new = post(first, "/signup", {}).json()
    sql(first, "UPDATE users SET created_at = $1 WHERE id = $2", ago(31 * 24 * HOUR), anonymous_old["user"]["id"])
    # timebox 1h: stale once created more than 25 h ago; inactivity 1h: refreshed (or, never
    # refreshed, its live token touched) more than 25 h ago
    boxed = add_session(first, keeper, None)  # created 100 h ago
    sql(first, "UPDATE sessions SET refreshed_at = $1 WHERE id = $2", ago(2 * HOUR), boxed)
    recent = new_id()
    sql(first, "INSERT INTO sessions (id, user_id, created_at, updated_at, refreshed_at, aal) "
               "VALUES ($1, $2, $3, $3, $4, 'aal1')", recent, keeper, ago(2 * HOUR), ago(2 * HOUR))
    idle = new_id()
    sql(first, "INSERT INTO sessions (id, user_id, created_at, updated_at, aal) VALUES ($1, $2, $3, $3, 'aal1')",
        idle, keeper, ago(3 * HOUR))
    idle_token = add_refresh_token(first, keeper, idle, revoked=False, updated_at=ago(30 * HOUR))

    second = make_server(backend, DATABASE_URL=first.db_url, GOTRUE_DB_CLEANUP_ENABLED="true",
                         GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED="true", GOTRUE_SESSIONS_TIMEBOX="1h",
                         GOTRUE_SESSIONS_INACTIVITY_TIMEOUT="1h")
    second.run(asyncio.wait_for(second.app[CLEANUP].swept.wait(), 20))
    users = {str(row["id"]) for row in rows(first, "SELECT id FROM users")}
    assert anonymous_old["user"]["id"] not in users and {keeper, anonymous_new["user"]["id"]} <= users
    sessions = ids(first, "sessions")
    assert boxed not in sessions and idle not in sessions and recent in sessions
    assert idle_token not in token_states(first)
