"""The small interface both database backends offer to the repositories."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol


class Executor(Protocol):
    """Something that runs SQL: the database itself or an open transaction.

    SQL is written once, with `$1, $2, …` placeholders; a backend translates what its driver
    needs. Values: str, int, float, bool, None, aware datetimes, dicts/lists (JSON columns).
    Rows come back as dicts with timestamps as aware datetimes, JSON as Python objects and
    uuids as lower-case strings, on both backends.
    """

    async def fetch_one(self, sql: str, *args: Any) -> dict[str, Any] | None: ...

    async def fetch_all(self, sql: str, *args: Any) -> list[dict[str, Any]]: ...

    async def fetch_val(self, sql: str, *args: Any) -> Any: ...

    async def execute(self, sql: str, *args: Any) -> int: ...


class Database(Executor, Protocol):
    dialect: str  # "sqlite" | "postgres"
    namespace: str

    def transaction(self) -> AbstractAsyncContextManager[Executor]:
        """One transaction holding the write lock from its first statement (SQLite: BEGIN
        IMMEDIATE; Postgres: row locks taken with `FOR UPDATE` inside it)."""
        ...

    async def execute_script(self, sql: str) -> None: ...

    async def close(self) -> None: ...


class DatabaseUnavailable(Exception):
    """The database cannot be reached right now (connection refused, pool timed out)."""


class Conflict(Exception):
    """A lock could not be had in time; answered as 409 conflict."""


class UniqueViolation(Exception):
    """A row with the same unique key exists already (two racing sign-ups of one email)."""
