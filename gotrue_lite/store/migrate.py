"""Applies schema/<dialect>/NNNN_name.sql in order, once each, recorded in gotrue_lite_migrations."""

from __future__ import annotations

import logging

from .. import clock
from ..resources import schema_dir
from .base import Database
from .postgres import quote_ident

log = logging.getLogger("gotrue_lite.migrate")

# Kept apart from the Go server's schema_migrations so both migrators can share a database.
TABLE = "gotrue_lite_migrations"


def pending_files(dialect: str) -> list[tuple[str, str]]:
    files = sorted(p for p in schema_dir(dialect).glob("*.sql") if p.name[:4].isdigit())
    return [(p.stem, p.read_text(encoding="utf-8")) for p in files]


async def apply_migrations(db: Database) -> list[str]:
    """Apply what has not been applied yet; returns the names applied now."""
    ts_type = "TIMESTAMPTZ"
    await db.execute_script(
        f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, applied_at {ts_type} NOT NULL)"
    )
    done = {row["name"] for row in await db.fetch_all(f"SELECT name FROM {TABLE}")}
    applied: list[str] = []
    for name, sql in pending_files(db.dialect):
        if name in done:
            continue
        if db.dialect == "postgres":
            sql = sql.replace("__NAMESPACE__", quote_ident(db.namespace))
        await _apply_one(db, name, sql)
        log.info("applied migration %s", name)
        applied.append(name)
    return applied


async def _apply_one(db: Database, name: str, sql: str) -> None:
    if db.dialect == "postgres":
        # One transaction per file: a failing file leaves nothing behind.
        async with db.transaction() as tx:
            await tx.execute(sql)
            await tx.execute(f"INSERT INTO {TABLE} (name, applied_at) VALUES ($1, $2)", name, clock.now())
        return
    # sqlite3's executescript commits on its own, so the script carries its own transaction.
    script = (f"BEGIN IMMEDIATE;\n{sql}\n;INSERT INTO {TABLE} (name, applied_at) VALUES "
              f"('{name}', '{clock.now().isoformat(timespec='microseconds')}');\nCOMMIT;")
    try:
        await db.execute_script(script)
    except Exception:
        try:
            await db.execute_script("ROLLBACK")
        except Exception:
            pass  # the failure happened before BEGIN took effect
        raise
