"""The only place with SQL: two database backends and one repository module per table family."""

from __future__ import annotations

from ..config import ConfigError
from .base import Conflict, Database, DatabaseUnavailable, Executor, StatementRefused, UniqueViolation

__all__ = ["Conflict", "Database", "DatabaseUnavailable", "Executor", "StatementRefused", "UniqueViolation",
           "open_database"]


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
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ConfigError(f"DATABASE_URL: cannot connect: {detail}") from exc
    return db
