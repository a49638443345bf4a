"""Seeding users straight into the database, fast: one bcrypt hash shared by every user.

Users number i in [start, stop) get the email `user{i}@bench.test`, the shared password hash,
a confirmed email, an email identity, and created_at = BASE + i milliseconds (so the admin
listing has a total order). SQLite takes them through executemany in one transaction, PostgreSQL
through binary COPY, both in chunks so memory stays flat at a million rows.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Iterator

EMAIL_FORMAT = "user{}@bench.test"
NIL_UUID = "00000000-0000-0000-0000-000000000000"
BASE = datetime(2024, 1, 1, tzinfo=timezone.utc)
CHUNK = 50_000
BULK = 50_000  # batches this large rebuild the indexes instead of updating them
APP_META = json.dumps({"provider": "email", "providers": ["email"]}, separators=(",", ":"))

USER_COLUMNS = (
    "instance_id", "id", "aud", "role", "email", "encrypted_password", "email_confirmed_at",
    "raw_app_meta_data", "raw_user_meta_data", "is_super_admin", "created_at", "updated_at",
    "confirmation_token", "recovery_token", "email_change_token_new", "email_change",
    "email_change_token_current", "phone_change", "phone_change_token", "reauthentication_token",
    "email_change_confirm_status", "is_sso_user", "is_anonymous",
)
IDENTITY_COLUMNS = (
    "id", "provider_id", "user_id", "identity_data", "provider", "last_sign_in_at", "created_at",
    "updated_at",
)


def _uuid4s(n: int) -> list[str]:
    """n random version-4 uuids as canonical text (uuid.uuid4() is the slow part of seeding)."""
    raw = os.urandom(16 * n).hex()
    out = []
    for k in range(0, 32 * n, 32):
        h = raw[k:k + 32]
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}")
    return out


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def _rows(start: int, stop: int) -> Iterator[tuple[str, str, str, datetime, str]]:
    """(user id, identity id, email, created_at, created_at as SQLite text) of users [start, stop)."""
    ids = _uuid4s(2 * (stop - start))
    second, prefix = -1, ""
    for n, i in enumerate(range(start, stop)):
        sec, ms = divmod(i, 1000)
        if sec != second:
            second = sec
            prefix = (BASE + timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S")
        created = BASE + timedelta(milliseconds=i)
        yield ids[2 * n], ids[2 * n + 1], EMAIL_FORMAT.format(i), created, f"{prefix}.{ms:03d}000+00:00"


def _identity_data(user_id: str, email: str) -> str:
    # json.dumps of {"sub", "email", "email_verified", "phone_verified"}; the values need no escaping
    return f'{{"sub":"{user_id}","email":"{email}","email_verified":true,"phone_verified":false}}'


# --- SQLite ------------------------------------------------------------------------------


def _ts(value: datetime) -> str:
    # gotrue_lite.store.sqlite's fixed-width UTC text
    return value.isoformat(timespec="microseconds")


def seed_sqlite(path: str, start: int, stop: int, password_hash: str) -> None:
    """Insert users [start, stop) into the SQLite file at `path` (the server must be stopped).

    A large batch drops the secondary indexes of both tables first and re-creates them from
    their own CREATE statements afterwards (one sort instead of a million random inserts).
    """
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -262144")  # 256 MiB for the index builds
        conn.execute("PRAGMA foreign_keys = OFF")  # every identity's user is in the same batch
        conn.execute("BEGIN")
        indexes = []
        if stop - start >= BULK:
            indexes = conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                "AND tbl_name IN ('users', 'identities')").fetchall()
            for name, _sql in indexes:
                conn.execute(f'DROP INDEX "{name}"')
        user_sql = (f"INSERT INTO users ({', '.join(USER_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(USER_COLUMNS))})")
        ident_sql = (f"INSERT INTO identities ({', '.join(IDENTITY_COLUMNS)}) "
                     f"VALUES ({', '.join('?' * len(IDENTITY_COLUMNS))})")
        for lo in range(start, stop, CHUNK):
            hi = min(stop, lo + CHUNK)
            users, identities = [], []
            for uid, iid, email, _created, ts in _rows(lo, hi):
                users.append((NIL_UUID, uid, "authenticated", "authenticated", email, password_hash, ts,
                              APP_META, "{}", 0, ts, ts, "", "", "", "", "", "", "", "", 0, 0, 0))
                identities.append((iid, uid, uid, _identity_data(uid, email), "email", ts, ts, ts))
            conn.executemany(user_sql, users)
            conn.executemany(ident_sql, identities)
        for _name, sql in indexes:
            conn.execute(sql)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    # The seeding wrote without syncing: flush it now, or the server's first checkpoint would
    # pay for writing back the whole bulk load in the middle of a measurement.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- PostgreSQL ----------------------------------------------------------------------------


async def seed_postgres(dsn: str, start: int, stop: int, password_hash: str, schema: str = "auth") -> None:
    """COPY users [start, stop) into `schema` of the database at `dsn`, then VACUUM ANALYZE.

    A large batch drops the indexes that back no constraint first and re-creates them from
    their own definitions afterwards. VACUUM ANALYZE stands in for the autovacuum a long-lived
    database would have had: fresh planner statistics and a visibility map for index-only scans.
    """
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        async with conn.transaction():
            indexes = []
            if stop - start >= BULK:
                indexes = await conn.fetch(
                    "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = $1 "
                    "AND i.tablename IN ('users', 'identities') AND NOT EXISTS ("
                    "  SELECT 1 FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
                    "  WHERE n.nspname = $1 AND c.conname = i.indexname)", schema)
                for row in indexes:
                    await conn.execute(f'DROP INDEX "{schema}"."{row["indexname"]}"')
            for lo in range(start, stop, CHUNK):
                hi = min(stop, lo + CHUNK)
                users, identities = [], []
                for uid, iid, email, created, _ts in _rows(lo, hi):
                    users.append((NIL_UUID, uid, "authenticated", "authenticated", email, password_hash,
                                  created, APP_META, "{}", False, created, created, "", "", "", "", "", "", "",
                                  "", 0, False, False))
                    identities.append((iid, uid, uid, _identity_data(uid, email), "email",
                                       created, created, created))
                await conn.copy_records_to_table("users", records=users, columns=USER_COLUMNS,
                                                 schema_name=schema)
                await conn.copy_records_to_table("identities", records=identities, columns=IDENTITY_COLUMNS,
                                                 schema_name=schema)
            for row in indexes:
                await conn.execute(row["indexdef"])
        await conn.execute(f'VACUUM ANALYZE "{schema}".users')
        await conn.execute(f'VACUUM ANALYZE "{schema}".identities')
        await conn.execute("CHECKPOINT")  # write the bulk load back now, not during a measurement
    finally:
        await conn.close()


def count_sqlite(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*) FROM users").fetchone()[0]
    finally:
        conn.close()
