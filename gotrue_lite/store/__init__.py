"""The only place with SQL: two database backends and one repository module per table family."""

from __future__ import annotations

import asyncio
import os

from ..config import ConfigError
from .base import Conflict, Database, DatabaseUnavailable, Executor, StatementRefused, UniqueViolation

__all__ = [
    "Conflict", "Database", "DatabaseUnavailable", "Executor", "StatementRefused", "UniqueViolation",
    "check_database", "open_database",
]


async def open_database(settings) -> Database:
    """Connect to the configured database; an unreachable one is a configuration error."""
    if settings.db.driver == "postgres":
        from .postgres import PostgresDatabase

        db = PostgresDatabase(settings.db.url, settings.db.namespace, settings.db.max_pool_size)
    else:
        from .sqlite import SQLiteDatabase

        db = SQLiteDatabase(settings.db.sqlite_path)
    try:
        await db.open()
    except Exception as exc:  # refused, unknown database, bad credentials, unwritable file
        await db.close()
        raise unusable(settings, exc) from exc
    return db


async def check_database(settings) -> None:
    """ConfigError if the database cannot be used; changes nothing (no file, no schema)."""
    try:
        if settings.db.driver == "postgres":
            from .postgres import check_connection

            await check_connection(settings.db.url)
        elif settings.db.sqlite_path != ":memory:":
            from .sqlite import check_writable

            await asyncio.to_thread(check_writable, settings.db.sqlite_path)
    except Exception as exc:  # noqa: BLE001 - whatever it is, it is the reason to show
        raise unusable(settings, exc) from exc


def unusable(settings, exc: BaseException) -> ConfigError:
    """One line: which database, and why it cannot be used."""
    if isinstance(exc, OSError) and exc.errno and exc.errno > 0:
        reason = os.strerror(exc.errno)  # "Connection refused", not "Connect call failed (…)"
    elif isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror  # a resolver's "Name or service not known", not "[Errno -2] …"
    else:
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else exc.__class__.__name__
    if settings.db.driver == "postgres":
        from .postgres import target

        return ConfigError(f"DATABASE_URL: cannot connect to PostgreSQL at {target(settings.db.url)}: {reason}")
    return ConfigError(f"DATABASE_URL: cannot open the SQLite database {settings.db.sqlite_path}: {reason}")
