"""SQL for moving users between stores: read-only snapshots read a page at a time (keyset on id),
and batches of users with their identities and MFA factors inserted in one transaction."""

from __future__ import annotations

import os
import sqlite3
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator

from .base import Executor
from .sql import NIL_UUID

# What travels, per table. Generated columns (users.confirmed_at, identities.email) are left to
# the target; pending one-time tokens, sessions and refresh tokens do not travel at all (users
# sign in again and ask for a new link), so the token columns are written '' on import.
USER_FIELDS = [
    "id", "aud", "role", "email", "encrypted_password", "email_confirmed_at", "invited_at",
    "last_sign_in_at", "raw_app_meta_data", "raw_user_meta_data", "is_super_admin", "created_at",
    "updated_at", "phone", "phone_confirmed_at", "banned_until", "is_sso_user", "deleted_at", "is_anonymous",
]
IDENTITY_FIELDS = ["id", "provider_id", "identity_data", "provider", "last_sign_in_at", "created_at", "updated_at"]
FACTOR_FIELDS = [
    "id", "friendly_name", "factor_type", "status", "created_at", "updated_at", "secret", "phone",
    "last_challenged_at", "web_authn_credential", "web_authn_aaguid", "last_webauthn_challenge_data",
]
AUDIT_FIELDS = ["id", "payload", "created_at", "ip_address"]

# Columns an older upstream schema may lack, and what a missing one means.
_DEFAULTS = {"is_sso_user": False, "is_anonymous": False, "ip_address": ""}

# The token columns the Go model reads into plain strings: '' on every imported row.
_EMPTY_TOKENS = ("confirmation_token", "recovery_token", "email_change_token_new", "email_change",
                 "email_change_token_current", "phone_change", "phone_change_token", "reauthentication_token")

_TABLES = ("users", "identities", "mfa_factors", "audit_log_entries")
MAX_PARAMS = 30000  # under both PostgreSQL's 32767 and SQLite's 32766 bind parameters


class NoUsersTable(Exception):
    """The database has no users table in that schema: not a GoTrue / gotrue-lite database (yet)."""


@dataclass
class Snapshot:
    """One read-only transaction on one connection: every page read sees the same moment."""

    ex: Executor
    columns: dict[str, set[str]]


# --- reading -------------------------------------------------------------------------------


@asynccontextmanager
async def open_snapshot(driver: str, target: str, namespace: str = "auth") -> AsyncIterator[Snapshot]:
    """A snapshot of the database at `target` (a PostgreSQL DSN read in schema `namespace`, or
    a SQLite file), opened read-only: it never creates a file, a schema or a row.
    NoUsersTable if there is nothing to read; FileNotFoundError for a missing SQLite file."""
    if driver == "postgres":
        cm = _postgres_snapshot(target, namespace)
    else:
        cm = _sqlite_snapshot(target)
    async with cm as snapshot:
        if "users" not in snapshot.columns:
            raise NoUsersTable(namespace if driver == "postgres" else target)
        yield snapshot


@asynccontextmanager
async def _postgres_snapshot(dsn: str, namespace: str) -> AsyncIterator[Snapshot]:
    import asyncpg

    from .postgres import _Conn, _init_connection

    conn = await asyncpg.connect(dsn, timeout=10, server_settings={
        "search_path": namespace, "default_transaction_read_only": "on"})
    try:
        await _init_connection(conn)
        # One snapshot for the whole read, so a user's identities and factors match the user,
        # and no page sees a row twice or misses one that was there when the read began.
        await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        ex = _Conn(conn)
        found = await ex.fetch_all(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = ANY($2::text[])", namespace, list(_TABLES))
        columns: dict[str, set[str]] = {}
        for row in found:
            columns.setdefault(row["table_name"], set()).add(row["column_name"])
        yield Snapshot(ex, columns)
    finally:
        await conn.close()


@asynccontextmanager
async def _sqlite_snapshot(path: str) -> AsyncIterator[Snapshot]:
    import aiosqlite

    from .sqlite import _Conn, _row

    if path == ":memory:" or not os.path.isfile(path):
        raise FileNotFoundError(path)
    conn = await aiosqlite.connect(path, detect_types=sqlite3.PARSE_DECLTYPES, isolation_level=None)
    try:
        conn.row_factory = _row
        await conn.execute_fetchall("PRAGMA busy_timeout = 5000")
        # A read transaction in WAL mode: a snapshot that does not hold up the server's writers.
        await conn.execute_fetchall("BEGIN")
        ex = _Conn(conn, await conn.cursor())
        columns: dict[str, set[str]] = {}
        for table in _TABLES:
            names = {row["name"] for row in await ex.fetch_all(f"PRAGMA table_info({table})")}
            if names:
                columns[table] = names
        yield Snapshot(ex, columns)
    finally:
        await conn.close()


def _select_list(present: set[str], fields: list[str]) -> str:
    return ", ".join(f if f in present else f"NULL AS {f}" for f in fields)


def _fill(row: dict[str, Any], present: set[str]) -> dict[str, Any]:
    for name, default in _DEFAULTS.items():
        if name in row and name not in present:
            row[name] = default
    return row


async def user_pages(snap: Snapshot, page_size: int) -> AsyncIterator[list[dict[str, Any]]]:
    """Every user in id order, a page at a time, each with its `identities` and `factors`."""
    users_cols = snap.columns["users"]
    user_sql = f"SELECT {_select_list(users_cols, USER_FIELDS)} FROM users"
    identity_sql = _identity_sql(snap.columns.get("identities"))
    factor_cols = snap.columns.get("mfa_factors")
    factor_sql = None
    if factor_cols:
        factor_sql = (f"SELECT user_id, {_select_list(factor_cols, FACTOR_FIELDS)} FROM mfa_factors "
                      "WHERE user_id >= $1 AND user_id <= $2 ORDER BY user_id, created_at, id")
    after = None
    while True:
        if after is None:
            users = await snap.ex.fetch_all(f"{user_sql} ORDER BY id LIMIT $1", page_size)
        else:
            users = await snap.ex.fetch_all(f"{user_sql} WHERE id > $1 ORDER BY id LIMIT $2", after, page_size)
        if not users:
            return
        first, last = users[0]["id"], users[-1]["id"]
        by_id = {}
        for user in users:
            _fill(user, users_cols)
            user["identities"], user["factors"] = [], []
            by_id[user["id"]] = user
        # The children of the page by the range of its ids: one indexed range scan, no id lists.
        if identity_sql:
            for row in await snap.ex.fetch_all(identity_sql, first, last):
                by_id[row.pop("user_id")]["identities"].append(_old_identity(row))
        if factor_sql:
            for row in await snap.ex.fetch_all(factor_sql, first, last):
                by_id[row.pop("user_id")]["factors"].append(row)
        yield users
        after = last


def _identity_sql(present: set[str] | None) -> str | None:
    if not present:
        return None
    if "provider_id" in present:
        fields = _select_list(present, IDENTITY_FIELDS)
    else:
        # Before 2023 upstream's identities.id was the provider's subject and there was no
        # uuid id: read it as provider_id, and _old_identity gives the row a stable uuid.
        fields = _select_list(present | {"provider_id"}, IDENTITY_FIELDS).replace(
            "id, provider_id", "NULL AS id, id AS provider_id", 1)
    return (f"SELECT user_id, {fields} FROM identities WHERE user_id >= $1 AND user_id <= $2 "
            "ORDER BY user_id, created_at, provider, provider_id")


_OLD_IDENTITY_IDS = uuid.UUID("6f1d1b2e-3c55-4b8e-9a51-2f4c9f0b7e10")


def _old_identity(row: dict[str, Any]) -> dict[str, Any]:
    if row["id"] is None:
        # The same old row always gets the same id, so importing it twice finds it the second time.
        row["id"] = str(uuid.uuid5(_OLD_IDENTITY_IDS, f"{row['provider']}\x00{row['provider_id']}"))
    return row


async def audit_pages(snap: Snapshot, page_size: int) -> AsyncIterator[list[dict[str, Any]]]:
    """The audit log in id order, a page at a time (empty if the table is absent)."""
    present = snap.columns.get("audit_log_entries")
    if not present:
        return
    sql = f"SELECT {_select_list(present, AUDIT_FIELDS)} FROM audit_log_entries"
    after = None
    while True:
        if after is None:
            rows = await snap.ex.fetch_all(f"{sql} ORDER BY id LIMIT $1", page_size)
        else:
            rows = await snap.ex.fetch_all(f"{sql} WHERE id > $1 ORDER BY id LIMIT $2", after, page_size)
        if not rows:
            return
        for row in rows:
            _fill(row, present)
        yield rows
        after = rows[-1]["id"]


async def existing_user_ids(ex: Executor, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(ids, 1):
        marks = ", ".join(f"${n}" for n in range(1, len(chunk) + 1))
        found.update(row["id"] for row in await ex.fetch_all(f"SELECT id FROM users WHERE id IN ({marks})", *chunk))
    return found


# --- writing -------------------------------------------------------------------------------


def _chunks(rows: list[Any], width: int) -> list[list[Any]]:
    size = max(1, min(1000, MAX_PARAMS // width))
    return [rows[i:i + size] for i in range(0, len(rows), size)]


def _values(count: int, width: int, before: str = "", after: str = "") -> str:
    """`(before$1, $2after), (before$3, $4after), …`: `width` parameters a row, with constants."""
    groups = []
    for n in range(count):
        marks = ", ".join(f"${n * width + i}" for i in range(1, width + 1))
        groups.append(f"({before}{marks}{after})")
    return ", ".join(groups)


async def insert_users(tx: Executor, users: list[dict[str, Any]]) -> set[str]:
    """Inserts the users whose id is not taken yet (a taken id is left as it is); returns the
    ids inserted. Any other clash (an email or phone another user has) raises."""
    columns = USER_FIELDS + ["instance_id", *_EMPTY_TOKENS]
    constants = ", '" + NIL_UUID + "'" + ", ''" * len(_EMPTY_TOKENS)
    inserted: set[str] = set()
    for chunk in _chunks(users, len(USER_FIELDS)):
        sql = (f"INSERT INTO users ({', '.join(columns)}) VALUES {_values(len(chunk), len(USER_FIELDS), after=constants)} "
               "ON CONFLICT (id) DO NOTHING RETURNING id")
        args = [user[f] for user in chunk for f in USER_FIELDS]
        inserted.update(row["id"] for row in await tx.fetch_all(sql, *args))
    return inserted


async def _insert_children(tx: Executor, table: str, fields: list[str], rows: list[dict[str, Any]]) -> None:
    columns = ["user_id", *fields]
    for chunk in _chunks(rows, len(columns)):
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {_values(len(chunk), len(columns))}"
        await tx.execute(sql, *[row[c] for row in chunk for c in columns])


async def insert_identities(tx: Executor, identities: list[dict[str, Any]]) -> None:
    await _insert_children(tx, "identities", IDENTITY_FIELDS, identities)


async def insert_factors(tx: Executor, factors: list[dict[str, Any]]) -> None:
    await _insert_children(tx, "mfa_factors", FACTOR_FIELDS, factors)


async def insert_audit(tx: Executor, entries: list[dict[str, Any]]) -> int:
    """Inserts the entries whose id is new; returns how many."""
    added = 0
    nil = f"'{NIL_UUID}', "
    for chunk in _chunks(entries, len(AUDIT_FIELDS)):
        sql = (f"INSERT INTO audit_log_entries (instance_id, {', '.join(AUDIT_FIELDS)}) "
               f"VALUES {_values(len(chunk), len(AUDIT_FIELDS), before=nil)} "
               "ON CONFLICT (id) DO NOTHING")
        added += await tx.execute(sql, *[entry[f] for entry in chunk for f in AUDIT_FIELDS])
    return added
