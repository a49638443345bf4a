"""SQL for sessions, their refresh tokens and their authentication-method (AMR) claims."""

from __future__ import annotations

import uuid

from .. import clock
from ..models import AMREntry, RefreshToken, Session, User
from .base import Executor, Statement, Steps
from .sql import NIL_UUID, aliased, insert, insert_sql

SESSION_COLUMNS = "id, user_id, created_at, updated_at, factor_id, aal, not_after, refreshed_at, user_agent, ip, tag"
TOKEN_COLUMNS = "id, token, user_id, revoked, created_at, updated_at, parent, session_id"
TOKEN_NAMES = TOKEN_COLUMNS.split(", ")
SESSION_NAMES = SESSION_COLUMNS.split(", ")
_TOKEN_WITH_SESSION = (
    f"SELECT {aliased('t', TOKEN_NAMES, 't_')}, {aliased('s', SESSION_NAMES, 's_')}, "
    "u.id AS u_id, u.banned_until AS u_banned_until, "
    "a.authentication_method AS a_method, a.updated_at AS a_updated_at "
    "FROM refresh_tokens t LEFT JOIN sessions s ON s.id = t.session_id LEFT JOIN users u ON u.id = s.user_id "
    "LEFT JOIN mfa_amr_claims a ON a.session_id = s.id WHERE t.token = $1 ORDER BY a.updated_at DESC"
)


async def create(ex: Executor, user_id: str, *, user_agent: str | None, ip: str | None) -> Session:
    now = clock.now()
    values = {
        "id": str(uuid.uuid4()),
        "user_id": user_id,
        "created_at": now,
        "updated_at": now,
        "aal": "aal1",
        "user_agent": user_agent or None,
        "ip": ip or None,
    }
    await insert(ex, "sessions", values)
    return Session(**values)


async def get(ex: Executor, session_id: str, *, lock: bool = False) -> Session | None:
    suffix = " FOR UPDATE" if lock else ""
    row = await ex.fetch_one(f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1{suffix}", session_id)
    return None if row is None else Session.from_row(row)


async def exists(ex: Executor, session_id: str) -> bool:
    return await ex.fetch_val("SELECT 1 FROM sessions WHERE id = $1", session_id) is not None


def lock_user_sessions(user_id: str) -> Steps[list[Session]]:
    """Lock the user's row, then read all the user's sessions (single session per user): the
    user row is what every writer of a user's rows locks first, so refreshes of two sessions of
    one user decide one after the other."""
    yield Statement("SELECT id FROM users WHERE id = $1 FOR UPDATE", (user_id,), "one")
    rows = yield Statement(f"SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1", (user_id,))
    return [Session.from_row(row) for row in rows]


def touch(session_id: str, *, user_agent: str | None, ip: str | None) -> Steps[None]:
    now = clock.now()
    # refreshed_at is `timestamp without time zone` upstream, updated_at is not: one value each.
    yield Statement("UPDATE sessions SET refreshed_at = $2, updated_at = $3, user_agent = $4, ip = $5 WHERE id = $1",
                    (session_id, now, now, user_agent or None, ip or None), "count")


async def delete(ex: Executor, session_id: str) -> None:
    await ex.execute("DELETE FROM sessions WHERE id = $1", session_id)


async def delete_for_user(ex: Executor, user_id: str, *, keep: str | None = None) -> None:
    if keep:
        await ex.execute("DELETE FROM sessions WHERE user_id = $1 AND id <> $2", user_id, keep)
    else:
        await ex.execute("DELETE FROM sessions WHERE user_id = $1", user_id)


# Refresh tokens ---------------------------------------------------------------------------

def add_refresh_token(token: str, user_id: str, session_id: str, parent: str | None) -> Steps[None]:
    now = clock.now()
    values = {
        "instance_id": NIL_UUID,
        "token": token,
        "user_id": user_id,
        "revoked": False,
        "created_at": now,
        "updated_at": now,
        "parent": parent or "",
        "session_id": session_id,
    }
    yield Statement(insert_sql("refresh_tokens", list(values)), tuple(values.values()), "count")


def find_refresh_token(token: str) -> Steps[RefreshToken | None]:
    row = yield Statement(f"SELECT {TOKEN_COLUMNS} FROM refresh_tokens WHERE token = $1", (token,), "one")
    return None if row is None else RefreshToken.from_row(row)


async def find_refresh_token_with_session(
    ex: Executor, token: str
) -> tuple[RefreshToken | None, Session | None, User | None, list[AMREntry]]:
    """A presented token with its session, the session's owner and the session's methods (as
    methods() lists them), in one statement. The owner carries only its id and ban: enough to
    turn a hopeless refresh away before any lock."""
    rows = await ex.fetch_all(_TOKEN_WITH_SESSION, token)
    if not rows:
        return None, None, None, []
    row = rows[0]
    found = RefreshToken.from_row({c: row["t_" + c] for c in TOKEN_NAMES})
    session = None if row["s_id"] is None else Session.from_row({c: row["s_" + c] for c in SESSION_NAMES})
    owner = None if row["u_id"] is None else User(id=row["u_id"], banned_until=row["u_banned_until"])
    amr = [_amr_entry(r["a_method"], r["a_updated_at"]) for r in rows if r["a_method"] is not None]
    return found, session, owner, amr


def active_refresh_token(session_id: str) -> Steps[RefreshToken | None]:
    """The session's current token: the newest one not revoked."""
    row = yield Statement(
        f"SELECT {TOKEN_COLUMNS} FROM refresh_tokens WHERE session_id = $1 AND revoked = false "
        "ORDER BY id DESC LIMIT 1",
        (session_id,), "one",
    )
    return None if row is None else RefreshToken.from_row(row)


def revoke_refresh_token(token_id: int) -> Steps[None]:
    # updated_at becomes the anchor of the reuse interval.
    yield Statement("UPDATE refresh_tokens SET revoked = true, updated_at = $2 WHERE id = $1",
                    (token_id, clock.now()), "count")


def revoke_session_tokens(session_id: str) -> Steps[None]:
    yield Statement(
        "UPDATE refresh_tokens SET revoked = true, updated_at = $2 WHERE session_id = $1 AND revoked = false",
        (session_id, clock.now()), "count",
    )


async def delete_refresh_token(ex: Executor, token_id: int) -> None:
    await ex.execute("DELETE FROM refresh_tokens WHERE id = $1", token_id)


# AMR claims -------------------------------------------------------------------------------

async def record_method(ex: Executor, session_id: str, method: str) -> AMREntry:
    """Record (or renew) how the session authenticated; returns the entry as methods() lists it."""
    now = clock.now()
    await ex.execute(
        "INSERT INTO mfa_amr_claims (id, session_id, created_at, updated_at, authentication_method) "
        "VALUES ($1, $2, $3, $3, $4) "
        "ON CONFLICT (session_id, authentication_method) DO UPDATE SET updated_at = excluded.updated_at",
        str(uuid.uuid4()),
        session_id,
        now,
        method,
    )
    return _amr_entry(method, now)


async def methods(ex: Executor, session_id: str) -> list[AMREntry]:
    rows = await ex.fetch_all(
        "SELECT authentication_method, updated_at FROM mfa_amr_claims WHERE session_id = $1 "
        "ORDER BY updated_at DESC",
        session_id,
    )
    return [_amr_entry(r["authentication_method"], r["updated_at"]) for r in rows]


def _amr_entry(method: str, updated_at) -> AMREntry:
    return AMREntry(method, int(updated_at.timestamp()))


# Assurance level -------------------------------------------------------------------------

async def set_aal(tx: Executor, session_id: str, aal: str, factor_id: str | None) -> None:
    await tx.execute("UPDATE sessions SET aal = $2, factor_id = $3, updated_at = $4 WHERE id = $1",
                     session_id, aal, factor_id, clock.now())


async def delete_below_aal2(tx: Executor, user_id: str) -> None:
    """The user's sessions still at aal1 (NULL is left alone, as upstream's `aal < 'aal2'`)."""
    await tx.execute("DELETE FROM sessions WHERE user_id = $1 AND aal = 'aal1'", user_id)
