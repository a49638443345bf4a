"""PostgreSQL backend on an asyncpg pool, every connection pinned to the auth schema (then gotrue-lite's own)."""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, AsyncIterator
from urllib.parse import parse_qs, urlsplit

import asyncpg

from .base import Conflict, DatabaseUnavailable, StatementRefused, Steps, T, UniqueViolation, changes_accounts, run

log = logging.getLogger("gotrue_lite.store")

# How long a statement may wait for a row lock before the request answers 409 conflict.
LOCK_TIMEOUT = "5s"
ACQUIRE_TIMEOUT = 10.0


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _param(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=_dumps, decoder=json.loads, schema="pg_catalog")
    # uuids and addresses travel as plain strings, like on SQLite.
    for name in ("uuid", "inet"):
        await conn.set_type_codec(name, encoder=str, decoder=str, schema="pg_catalog", format="text")
    # Columns that are `timestamp without time zone` hold UTC; hand them out aware.
    await conn.set_type_codec(
        "timestamp",
        encoder=lambda v: v.astimezone(timezone.utc).replace(tzinfo=None).isoformat() if v.tzinfo else v.isoformat(),
        decoder=lambda s: datetime.fromisoformat(s).replace(tzinfo=timezone.utc),
        schema="pg_catalog",
        format="text",
    )


async def _keep_session_state(conn: asyncpg.Connection) -> None:
    """The pool's reset on release. asyncpg's default sends `SELECT pg_advisory_unlock_all();
    CLOSE ALL; UNLISTEN *; RESET ALL` after every use: a round trip per statement for state
    gotrue-lite never creates (no advisory locks, cursors, LISTEN or session SETs). The pool
    still rolls back a transaction left open before this runs."""


def _translate_error(exc: BaseException) -> BaseException:
    if isinstance(exc, asyncpg.exceptions.LockNotAvailableError):
        return Conflict(str(exc))
    if isinstance(exc, asyncpg.exceptions.UniqueViolationError):
        return UniqueViolation(exc.message or str(exc), exc.table_name, sqlstate=exc.sqlstate or "",
                               detail=exc.detail or "")
    if isinstance(exc, _UNAVAILABLE):
        return DatabaseUnavailable(str(exc) or exc.__class__.__name__)
    if isinstance(exc, asyncpg.exceptions.PostgresError):
        # Reported by the server: a trigger's RAISE, a constraint, an error in a function.
        return StatementRefused(exc.message or str(exc), sqlstate=exc.sqlstate or "", detail=exc.detail or "",
                                hint=exc.hint or "")
    return exc


# The server is gone, going, not there yet, or full: the request may be retried (503).
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.InterfaceError,  # e.g. "the underlying connection is closed"
    asyncpg.exceptions.PostgresConnectionError,  # class 08, incl. ConnectionDoesNotExistError
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting up, shutting down, in recovery
    asyncpg.exceptions.AdminShutdownError,  # 57P01: terminating connection (pg_ctl stop -m fast)
    asyncpg.exceptions.CrashShutdownError,  # 57P02: another backend crashed (-m immediate)
    asyncpg.exceptions.TooManyConnectionsError,  # 53300
    # A connection the server dropped mid-operation: "cannot switch to state …; another
    # operation is in progress" when the next statement starts on it.
    asyncpg.exceptions.InternalClientError,
)


class _Conn:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.raw = conn
        self.wrote_accounts = False  # see Database.account_writes

    async def _run(self, method: str, sql: str, args: tuple) -> Any:
        if changes_accounts(sql):
            self.wrote_accounts = True
        try:
            return await getattr(self.raw, method)(sql, *[_param(a) for a in args])
        except Exception as exc:
            translated = _translate_error(exc)
            if translated is exc:
                raise
            raise translated from exc

    async def fetch_all(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._run("fetch", sql, args)]

    async def fetch_one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        row = await self._run("fetchrow", sql, args)
        return None if row is None else dict(row)

    async def fetch_val(self, sql: str, *args: Any) -> Any:
        return await self._run("fetchval", sql, args)

    async def execute(self, sql: str, *args: Any) -> int:
        status = await self._run("execute", sql, args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0


def target(dsn: str) -> str:
    """host:port that a connection string points at, for messages (no user or password)."""
    try:
        parts = urlsplit(dsn)
        port = parts.port
    except ValueError:
        return "the configured server"
    query = parse_qs(parts.query)
    host = parts.hostname or ",".join(query.get("host", [])) or "localhost"
    port = port or ",".join(query.get("port", [])) or 5432
    if ":" in host and "," not in host:
        host = f"[{host}]"
    return f"{host}:{port}"


async def check_connection(dsn: str) -> None:
    """Connects once and hangs up: whether the server, database and credentials are right."""
    conn = await asyncpg.connect(dsn, timeout=10)
    await conn.close()


def own_schema(namespace: str) -> str:
    """The schema of gotrue-lite's own tables, apart from upstream's (schema/postgres/0006c_*.sql)."""
    return "gotrue_lite" if namespace == "auth" else f"gotrue_lite_{namespace}"


class PostgresDatabase:
    dialect = "postgres"

    def __init__(self, dsn: str, namespace: str, max_size: int = 0) -> None:
        self.dsn = dsn
        self.namespace = namespace
        self.own_schema = own_schema(namespace)
        self.max_size = max_size or 10
        self._pool: asyncpg.Pool | None = None
        self.account_writes = 0

    async def open(self) -> None:
        # The schema must exist before connections point their search_path at it. gotrue-lite's
        # own schema is the migrator's to create, once it knows the namespace is one to serve.
        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.namespace)}")
        finally:
            await conn.close()
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=1,
            max_size=self.max_size,
            init=_init_connection,
            reset=_keep_session_state,
            timeout=10,
            command_timeout=30,
            # Unqualified names find upstream's tables first, then gotrue-lite's own; what is
            # created unqualified lands in the namespace.
            server_settings={"search_path": f"{quote_ident(self.namespace)}, {quote_ident(self.own_schema)}",
                             "lock_timeout": LOCK_TIMEOUT},
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def pool_stats(self) -> dict[str, int]:
        """Connections open in the pool (idle and in use) and its limit, for metrics."""
        if self._pool is None:
            return {"inuse": 0, "idle": 0, "max": self.max_size}
        size, idle = self._pool.get_size(), self._pool.get_idle_size()
        return {"inuse": size - idle, "idle": idle, "max": self.max_size}

    @asynccontextmanager
    async def _acquire(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            conn = await self._pool.acquire(timeout=ACQUIRE_TIMEOUT)
        except BaseException as exc:  # refused, reset, pool timeout
            raise _translate_error(exc) from exc
        try:
            yield conn
        finally:
            try:
                await self._pool.release(conn)
            except Exception as exc:  # noqa: BLE001 - a broken connection: the pool replaces it
                log.debug("releasing a broken connection: %s", exc)

    @asynccontextmanager
    async def _executor(self) -> AsyncIterator[_Conn]:
        """A pooled connection for one statement or transaction; its writes counted after."""
        async with self._acquire() as conn:
            executor = _Conn(conn)
            try:
                yield executor
            finally:
                # Counted once the change is committed (or undone): a reader that started
                # before this cannot cache what it read.
                if executor.wrote_accounts:
                    self.account_writes += 1

    async def fetch_all(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        async with self._executor() as conn:
            return await conn.fetch_all(sql, *args)

    async def fetch_one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        async with self._executor() as conn:
            return await conn.fetch_one(sql, *args)

    async def fetch_val(self, sql: str, *args: Any) -> Any:
        async with self._executor() as conn:
            return await conn.fetch_val(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._executor() as conn:
            return await conn.execute(sql, *args)

    async def execute_script(self, sql: str) -> None:
        async with self._acquire() as conn:
            try:
                await conn.execute(sql)
            finally:
                self.account_writes += 1  # migrations: assume anything changed

    async def run_transaction(self, steps: Steps[T]) -> T:
        async with self.transaction() as tx:
            return await run(tx, steps)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Conn]:
        async with self._executor() as executor:
            tx = executor.raw.transaction()
            try:
                await tx.start()
            except BaseException as exc:
                raise _translate_error(exc) from exc
            try:
                yield executor
            except BaseException as exc:
                if getattr(exc, "commit", False):
                    # The error must not be answered unless what it asked to keep is kept.
                    try:
                        await tx.commit()
                    except BaseException as failure:
                        raise _translate_error(failure) from failure
                else:
                    try:
                        await tx.rollback()
                    except Exception as failure:  # noqa: BLE001
                        # The connection died with the transaction (the server rolls it back):
                        # answer with the original error, not with this one.
                        log.debug("rollback failed: %s", failure)
                raise
            else:
                try:
                    await tx.commit()
                except BaseException as exc:
                    raise _translate_error(exc) from exc


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
