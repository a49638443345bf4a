"""The small interface both database backends offer to the repositories."""

from __future__ import annotations

import re
from contextlib import AbstractAsyncContextManager
from functools import lru_cache
from typing import Any, Generator, NamedTuple, Protocol, TypeVar

# Raised here, answered by the HTTP layer: they live with APIError so that it needs no store import.
from ..errors import Conflict, DatabaseUnavailable  # noqa: F401 - re-exported

T = TypeVar("T")


class Statement(NamedTuple):
    """One statement of a transaction written as steps (see Steps)."""

    sql: str
    args: tuple = ()
    fetch: str = "all"  # "all": rows, "one": a row or None, "val": first column, "count": rows changed


# A transaction written as steps: a generator that yields each Statement and is sent what it
# returned. Written once, it runs on either backend; SQLite runs all of it in one trip to its
# writer thread (Database.run_transaction), so the write lock is held for the statements' own
# time, not for one event-loop wake-up per statement.
Steps = Generator[Statement, Any, T]


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


_METHODS = {"all": "fetch_all", "one": "fetch_one", "val": "fetch_val", "count": "execute"}


async def run(ex: "Executor", steps: Steps[T]) -> T:
    """Run steps statement by statement on an executor (a database, or a transaction)."""
    try:
        statement = next(steps)
        while True:
            method = getattr(ex, _METHODS[statement.fetch])
            # A failing statement ends the steps (PostgreSQL could not go on in the transaction).
            statement = steps.send(await method(statement.sql, *statement.args))
    except StopIteration as done:
        return done.value


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

    async def run_transaction(self, steps: Steps[T]) -> T:
        """The steps in one transaction, committed unless they raise (as transaction())."""
        ...

    async def execute_script(self, sql: str) -> None: ...

    def pool_stats(self) -> dict[str, int]:
        """{"inuse": n, "idle": n, "max": n}: the connections, for metrics."""
        ...

    async def close(self) -> None: ...


class StatementRefused(Exception):
    """The database refused a statement with an error of its own: a trigger raised, a check or
    foreign key failed. PostgreSQL's SQLSTATE, detail and hint are kept (upstream shows some of
    them to clients); SQLite reports none."""

    def __init__(self, message: str, *, sqlstate: str = "", detail: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint


class UniqueViolation(StatementRefused):
    """A row with the same unique key exists already (two racing sign-ups of one email).

    `table` is the table whose key clashed, when the database says: a trigger inserting into
    another table is no race on this one."""

    def __init__(self, message: str, table: str | None = None, *, sqlstate: str = "", detail: str = "") -> None:
        super().__init__(message, sqlstate=sqlstate, detail=detail)
        self.table = table


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
