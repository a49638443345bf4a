"""SQLite backend on aiosqlite: WAL, foreign keys on, one serialised writer, pooled readers."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import tempfile
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, AsyncIterator, NoReturn

import aiosqlite

from .base import Conflict, Statement, StatementRefused, Steps, T, UniqueViolation, changes_accounts, run

READERS = 4
BATCH = 64  # steps committed together at most
# aiosqlite offers no public call for running a function on its thread; _execute is the one
# its own methods use, and _conn the sqlite3 connection it wraps. Should a release drop them,
# run_transaction goes statement by statement instead.
ONE_TRIP = hasattr(aiosqlite.Connection, "_execute") and hasattr(aiosqlite.Connection, "_conn")
BUSY_TIMEOUT_MS = 5000


def _ts_out(value: datetime) -> str:
    # One fixed-width format for every timestamp, so text order is time order.
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


sqlite3.register_converter("TIMESTAMPTZ", lambda raw: datetime.fromisoformat(raw.decode()))
sqlite3.register_converter("JSON", lambda raw: json.loads(raw))
sqlite3.register_converter("BOOLEAN", lambda raw: raw not in (b"0", b""))


def _param(value: Any) -> Any:
    if isinstance(value, datetime):
        return _ts_out(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


_LOCKING = re.compile(r"\s+FOR\s+UPDATE(\s+OF\s+\w+(\s*,\s*\w+)*)?(\s+SKIP\s+LOCKED|\s+NOWAIT)?", re.IGNORECASE)


_BOOLEAN = re.compile(r"=\s*(true|false)\b", re.IGNORECASE)


@lru_cache(maxsize=1024)
def _translate(sql: str) -> str:
    # Row locks do not exist here: BEGIN IMMEDIATE already holds the only write lock.
    sql = _LOCKING.sub("", sql)
    # SQLite's planner matches partial-index predicates (`is_sso_user = 0`) only against the
    # same literal: `= false` would miss users_email_partial_key and scan the audience.
    sql = _BOOLEAN.sub(lambda m: "= 1" if m.group(1).lower() == "true" else "= 0", sql)
    return re.sub(r"\$(\d+)", r"?\1", sql)


# "UNIQUE constraint failed: users.email": the table of the first column named.
_UNIQUE_TABLE = re.compile(r"constraint failed: (\w+)\.")


def _raise_translated(exc: sqlite3.Error) -> NoReturn:
    if isinstance(exc, sqlite3.IntegrityError):
        # By its result code, not its text: a trigger's RAISE message may say anything.
        if getattr(exc, "sqlite_errorname", "") in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
            table = _UNIQUE_TABLE.search(str(exc))
            raise UniqueViolation(str(exc), table.group(1) if table else None) from exc
        # A trigger's RAISE(ABORT, …), a CHECK, NOT NULL or FOREIGN KEY failing.
        raise StatementRefused(str(exc)) from exc
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
        raise Conflict(str(exc)) from exc
    raise exc


def _row(cursor: sqlite3.Cursor, row: tuple) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row)}


class _Conn:
    """Executor over one aiosqlite connection, with a cursor of its own for writes."""

    def __init__(self, conn: aiosqlite.Connection, write_cursor: aiosqlite.Cursor) -> None:
        self.raw = conn
        self._write_cursor = write_cursor
        self.wrote_accounts = False  # since the database last looked (see Database.account_writes)

    async def _run(self, sql: str, args: tuple, fetch: str | None) -> Any:
        # One trip to the connection's thread per statement (execute and fetch together): each
        # trip wakes the event loop, and a transaction holds the writer lock across its trips.
        if changes_accounts(sql):
            self.wrote_accounts = True
        try:
            if fetch is None:
                # The connection's own cursor, reused: its rowcount is read without another trip.
                await self._write_cursor.execute(_translate(sql), [_param(a) for a in args])
                return self._write_cursor.rowcount
            rows = await self.raw.execute_fetchall(_translate(sql), [_param(a) for a in args])
            if fetch == "all":
                return list(rows)
            return rows[0] if rows else None
        except sqlite3.Error as exc:
            _raise_translated(exc)

    def _run_here(self, raw: sqlite3.Connection, statement: Statement) -> Any:
        """One statement of run_transaction, on the connection's own thread."""
        if changes_accounts(statement.sql):
            self.wrote_accounts = True
        try:
            cursor = raw.execute(_translate(statement.sql), [_param(a) for a in statement.args])
            try:
                if statement.fetch == "count":
                    return cursor.rowcount
                rows = cursor.fetchall()
            finally:
                cursor.close()
        except sqlite3.Error as exc:
            _raise_translated(exc)
        if statement.fetch == "all":
            return rows
        row = rows[0] if rows else None
        if statement.fetch == "val":
            return None if row is None else next(iter(row.values()))
        return row

    def _steps_here(self, raw: sqlite3.Connection, steps: Steps[T]) -> T:
        try:
            statement = next(steps)
            while True:
                statement = steps.send(self._run_here(raw, statement))
        except StopIteration as done:
            return done.value

    def _batch_here(self, raw: sqlite3.Connection, batch: list[Steps[Any]]) -> list[tuple[bool, Any]]:
        """Several steps in one transaction, each in a savepoint of its own: one that raises is
        undone alone (kept if its error asks to commit), the others commit together."""
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            _raise_translated(exc)
        outcomes: list[tuple[bool, Any]] = []
        try:
            for steps in batch:
                raw.execute("SAVEPOINT steps")
                try:
                    outcomes.append((True, self._steps_here(raw, steps)))
                except Exception as exc:
                    if not getattr(exc, "commit", False):
                        raw.execute("ROLLBACK TO steps")
                    outcomes.append((False, exc))
                raw.execute("RELEASE steps")
        except BaseException:
            self._finish_here(raw, "ROLLBACK")
            raise
        self._finish_here(raw, "COMMIT")
        return outcomes

    async def finish(self, how: str) -> None:
        """COMMIT or ROLLBACK, leaving no transaction open whatever happens (see _finish_here)."""
        try:
            await self.execute(how)
        except BaseException:
            if self.raw.in_transaction:
                await self.raw.execute_fetchall("ROLLBACK")
            raise

    @staticmethod
    def _finish_here(raw: sqlite3.Connection, how: str) -> None:
        try:
            raw.execute(how)
        except sqlite3.Error as exc:
            # A COMMIT that failed (another process holds the file) leaves the transaction
            # open: end it, or the next BEGIN on this connection would fail too.
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            _raise_translated(exc)

    async def run_batch(self, batch: list[Steps[Any]]) -> list[tuple[bool, Any]]:
        return await self.raw._execute(lambda: self._batch_here(self.raw._conn, batch))

    async def fetch_all(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return await self._run(sql, args, "all")

    async def fetch_one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        return await self._run(sql, args, "one")

    async def fetch_val(self, sql: str, *args: Any) -> Any:
        row = await self.fetch_one(sql, *args)
        return None if row is None else next(iter(row.values()))

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._run(sql, args, None)


class NotWritable(Exception):
    """The database file, or the folder that holds it, cannot be written; says which and why."""


def check_writable(path: str) -> None:
    """NotWritable unless SQLite can write `path` and, beside it, its WAL and shared-memory
    files (SQLite itself only says "unable to open database file")."""
    folder = os.path.dirname(path) or "."
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".gotrue-lite-probe-"):
            pass
    except OSError as exc:
        raise NotWritable(f"cannot write in the folder {folder}: {exc.strerror}") from None
    if os.path.exists(path):
        try:
            with open(path, "r+b"):
                pass
        except OSError as exc:
            raise NotWritable(f"cannot write {path}: {exc.strerror}") from None


class SQLiteDatabase:
    dialect = "sqlite"
    namespace = ""

    def __init__(self, path: str) -> None:
        self.path = path
        self._writer: _Conn | None = None
        self._write_lock = asyncio.Lock()
        self._readers: asyncio.Queue[_Conn] = asyncio.Queue()
        self._all: list[aiosqlite.Connection] = []
        self.account_writes = 0
        self._waiting: list[tuple[Steps[Any], asyncio.Future]] = []  # run_transaction's queue
        self._committer: asyncio.Task | None = None

    async def _connect(self) -> _Conn:
        pending = aiosqlite.connect(
            self.path,
            detect_types=sqlite3.PARSE_DECLTYPES,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,
        )
        try:
            conn = await pending
        except BaseException:
            # aiosqlite stops its thread without waiting; left running, the thread answers into
            # a loop that may be closed by then ("Event loop is closed" tracebacks at exit).
            thread = getattr(pending, "_thread", None)
            if thread is not None and thread.is_alive():
                await asyncio.to_thread(thread.join, 5)
            raise
        self._all.append(conn)
        conn.row_factory = _row
        for pragma in (f"busy_timeout = {BUSY_TIMEOUT_MS}", "foreign_keys = ON", "synchronous = NORMAL"):
            await conn.execute_fetchall(f"PRAGMA {pragma}")  # fetched to the end: no lock left open
        return _Conn(conn, await conn.cursor())

    async def open(self) -> None:
        if sqlite3.sqlite_version_info < (3, 35):
            raise RuntimeError(f"SQLite {sqlite3.sqlite_version} is too old: 3.35 or newer is needed")
        if self.path != ":memory:":
            await asyncio.to_thread(check_writable, self.path)
        self._writer = await self._connect()
        if self.path != ":memory:":
            await self._writer.fetch_all("PRAGMA journal_mode = WAL")
            for _ in range(READERS):
                self._readers.put_nowait(await self._connect())

    async def close(self) -> None:
        for conn in self._all:
            await conn.close()
        self._all.clear()

    def pool_stats(self) -> dict[str, int]:
        """The connections (one writer, READERS readers) idle and in use, for metrics."""
        total = len(self._all)
        idle = self._readers.qsize() + (0 if self._write_lock.locked() or self._writer is None else 1)
        return {"inuse": max(total - idle, 0), "idle": idle, "max": total}

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[_Conn]:
        if self.path == ":memory:":
            # Every connection to :memory: is a database of its own: share the writer.
            async with self._write_lock:
                yield self._writer
            return
        conn = await self._readers.get()
        try:
            yield conn
        finally:
            self._readers.put_nowait(conn)

    # Plain statements outside a transaction: reads use a reader, writes the writer, where
    # SQLite's autocommit makes each statement a transaction of its own.
    async def fetch_all(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        if _is_write(sql):
            async with self._writing() as writer:
                return await writer.fetch_all(sql, *args)
        async with self._reader() as conn:
            return await conn.fetch_all(sql, *args)

    async def fetch_one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        rows = await self.fetch_all(sql, *args)
        return rows[0] if rows else None

    async def fetch_val(self, sql: str, *args: Any) -> Any:
        row = await self.fetch_one(sql, *args)
        return None if row is None else next(iter(row.values()))

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._writing() as writer:
            return await writer.execute(sql, *args)

    async def execute_script(self, sql: str) -> None:
        async with self._writing() as writer:
            writer.wrote_accounts = True  # migrations: assume anything changed
            await writer.raw.executescript(sql)

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[_Conn]:
        # The writer lock serialises this process's writers, so they queue here instead of
        # meeting "database is locked"; busy_timeout covers other processes on the file.
        async with self._write_lock:
            writer = self._writer
            writer.wrote_accounts = False
            try:
                yield writer
            finally:
                # Counted once the change is committed (or undone): a reader that started
                # before this cannot cache what it read.
                if writer.wrote_accounts:
                    self.account_writes += 1

    async def run_transaction(self, steps: Steps[T]) -> T:
        if not ONE_TRIP:
            async with self.transaction() as tx:
                return await run(tx, steps)
        # Group commit: the steps wait their turn with any others that arrive meanwhile, and
        # the waiting ones run together in one transaction, in one trip to the writer's thread,
        # each in a savepoint of its own (as if one after the other, which is what SQLite's
        # single writer does anyway), so one COMMIT and one wake-up serve them all.
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((steps, done))
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_waiting())
        return await done

    async def _commit_waiting(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
                try:
                    async with self._writing() as writer:
                        outcomes = await writer.run_batch([steps for steps, _ in batch])
                except asyncio.CancelledError:  # shutting down
                    for _, done in batch + self._waiting:
                        done.cancel()
                    raise
                except Exception as exc:  # the transaction itself failed: every one of them did
                    outcomes = [(False, exc)] * len(batch)
                for (_, done), (ok, value) in zip(batch, outcomes):
                    if not done.done():  # its request may have gone away meanwhile
                        done.set_result(value) if ok else done.set_exception(value)
        finally:
            self._committer = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Conn]:
        async with self._writing() as tx:
            await tx.execute("BEGIN IMMEDIATE")
            try:
                yield tx
            except BaseException as exc:
                await tx.finish("COMMIT" if getattr(exc, "commit", False) else "ROLLBACK")
                raise
            else:
                await tx.finish("COMMIT")


def _is_write(sql: str) -> bool:
    head = sql.lstrip()[:6].upper()
    return head in ("INSERT", "UPDATE", "DELETE") or head.startswith("WITH") and "RETURNING" in sql.upper()
