"""The small interface both database backends offer to the repositories."""

from __future__ import annotations

import re
from contextlib import AbstractAsyncContextManager
from functools import lru_cache
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
    # Counts committed writes that can change what GET /user answers (changes_accounts below):
    # a cached answer is good while the count it was read at is still the count.
    account_writes: int

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


# What a signed-in user reads back about themselves: the user row, identities, MFA factors, and
# whether their session still exists. Sessions are only ever shown by existence, so inserting or
# updating one (sign-in, refresh) changes nothing a cached answer holds; deleting one does.
_ACCOUNT_WRITE = re.compile(
    r"\b(?:(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(?:users|identities|mfa_factors)|DELETE\s+FROM\s+sessions)\b",
    re.IGNORECASE,
)


@lru_cache(maxsize=1024)
def changes_accounts(sql: str) -> bool:
    return _ACCOUNT_WRITE.search(sql) is not None
