"""GET /user answers from recently read users: this server's own writes are seen at once, other
servers' (or the CLI's) within [lite] user_cache_ttl."""

from __future__ import annotations

import time
from types import SimpleNamespace

import httpx

from gotrue_lite.auth.recent_users import RecentUsers
from gotrue_lite.models import User
from helpers import TIMEOUT, assert_error, bearer, get_user, logout, put_user, signup_session, sql

TTL = 2.0  # seconds; long enough that two requests a few ms apart fall inside it on a slow machine


def _admin(server, method: str, path: str, body=None) -> httpx.Response:
    return httpx.request(method, server.url + path, json=body, timeout=TIMEOUT,
                         headers=bearer(server.service_role_key))


def _name(server, token: str) -> str | None:
    resp = get_user(server, token)
    assert resp.status_code == 200, resp.text
    return resp.json()["user_metadata"].get("name")


def test_own_writes_are_seen_at_once(make_server, backend):
    server = make_server(backend, GOTRUE_LITE_USER_CACHE_TTL="1h")
    session = signup_session(server)
    token, user_id = session["access_token"], session["user"]["id"]
    assert _name(server, token) is None  # read once: the answer is now held

    assert put_user(server, token, {"data": {"name": "first"}}).status_code == 200
    assert _name(server, token) == "first"
    # SQL run through this server's database counts as its own write.
    sql(server, "UPDATE users SET raw_user_meta_data = $2 WHERE id = $1", user_id, {"name": "by sql"})
    assert _name(server, token) == "by sql"

    assert _admin(server, "PUT", f"/admin/users/{user_id}", {"ban_duration": "1h"}).status_code == 200
    assert_error(get_user(server, token), 403, "user_banned")
    assert _admin(server, "PUT", f"/admin/users/{user_id}", {"ban_duration": "none"}).status_code == 200
    assert _name(server, token) == "by sql"

    assert logout(server, token).status_code == 204
    assert_error(get_user(server, token), 403, "session_not_found")

    other = signup_session(server)
    assert get_user(server, other["access_token"]).status_code == 200
    assert _admin(server, "DELETE", f"/admin/users/{other['user']['id']}").status_code == 200
    assert_error(get_user(server, other["access_token"]), 403, "user_not_found")


def test_another_servers_writes_are_seen_within_the_ttl(make_server, backend):
    first = make_server(backend, GOTRUE_LITE_USER_CACHE_TTL=f"{TTL}s")
    second = make_server(backend, DATABASE_URL=first.db_url, GOTRUE_LITE_USER_CACHE_TTL=f"{TTL}s")
    session = signup_session(first)
    token = session["access_token"]
    assert _name(first, token) is None

    changed_at = time.monotonic()
    assert put_user(second, token, {"data": {"name": "elsewhere"}}).status_code == 200
    assert _name(second, token) == "elsewhere"
    # The first server still holds what it read; said once, and only within the TTL.
    if time.monotonic() - changed_at < TTL / 2:
        assert _name(first, token) is None
    time.sleep(TTL + 0.2)
    assert _name(first, token) == "elsewhere"

    assert _name(first, token) == "elsewhere"  # held again
    assert logout(second, token).status_code == 204
    time.sleep(TTL + 0.2)
    assert_error(get_user(first, token), 403, "session_not_found")


def test_ttl_zero_reads_the_database_every_time(make_server, backend):
    first = make_server(backend, GOTRUE_LITE_USER_CACHE_TTL="0")
    second = make_server(backend, DATABASE_URL=first.db_url, GOTRUE_LITE_USER_CACHE_TTL="0")
    session = signup_session(first)
    token = session["access_token"]
    assert _name(first, token) is None
    assert put_user(second, token, {"data": {"name": "elsewhere"}}).status_code == 200
    assert _name(first, token) == "elsewhere"
    assert logout(second, token).status_code == 204
    assert_error(get_user(first, token), 403, "session_not_found")


# The rules of the cache itself, against a stand-in for the database's write counter.

def _user(n: int) -> User:
    return User(id=f"00000000-0000-0000-0000-{n:012d}")


def test_a_read_that_a_write_overtook_is_not_kept():
    db = SimpleNamespace(account_writes=0)
    recent = RecentUsers(db, ttl=60)
    version = recent.version()  # a GET /user starts reading
    db.account_writes += 1  # meanwhile a write commits
    recent.keep(version, _user(1), None, b"{}")  # what the read saw may predate it
    assert recent.get(_user(1).id, None) is None

    recent.keep(recent.version(), _user(1), None, b"{}")
    assert recent.get(_user(1).id, None).body == b"{}"
    db.account_writes += 1  # any later write drops every entry
    assert recent.get(_user(1).id, None) is None


def test_entries_expire_and_memory_is_bounded():
    db = SimpleNamespace(account_writes=0)
    recent = RecentUsers(db, ttl=0.05, capacity=100)
    for n in range(1000):
        recent.keep(recent.version(), _user(n), None, b"{}")
    assert len(recent._entries) == 100
    assert recent.get(_user(0).id, None) is None  # the oldest went first
    assert recent.get(_user(999).id, None) is not None
    time.sleep(0.1)
    assert recent.get(_user(999).id, None) is None
