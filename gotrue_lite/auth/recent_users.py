"""Recently read signed-in users, so that GET /user can answer without the database.

An entry is dropped as soon as this process commits any write that could change what GET /user
shows (the database's account_writes count moves: user rows, identities, factors, a deleted
session), so this process's own changes are seen at once. Changes made by another process (the
operators' CLI, another server on the same PostgreSQL, SQL by hand) are seen once the entry is
older than [lite] user_cache_ttl.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ..models import Session, User
    from ..store import Database


class Recent(NamedTuple):
    expires: float  # time.monotonic()
    user: "User"
    session: "Session | None"
    body: bytes  # the user's JSON document, as GET /user sends it


class RecentUsers:
    def __init__(self, db: "Database", ttl: float, capacity: int = 10_000) -> None:
        self._db = db
        self._ttl = ttl
        self._capacity = capacity  # bounds memory: a few KB per entry
        self._entries: dict[tuple[str, str | None], Recent] = {}
        self._version = db.account_writes

    def _fresh(self) -> dict[tuple[str, str | None], Recent]:
        if self._db.account_writes != self._version:
            self._entries.clear()
            self._version = self._db.account_writes
        return self._entries

    def version(self) -> int:
        """Taken before reading the database: what was read is kept only if nothing was
        written in between."""
        return self._db.account_writes

    def get(self, user_id: str, session_id: str | None) -> Recent | None:
        if self._ttl <= 0:
            return None
        entries = self._fresh()
        found = entries.get((user_id, session_id))
        if found is not None and found.expires <= time.monotonic():
            del entries[(user_id, session_id)]
            return None
        return found

    def keep(self, version: int, user: "User", session: "Session | None", body: bytes) -> None:
        if self._ttl <= 0 or version != self._db.account_writes:
            return
        entries = self._fresh()
        key = (user.id, session.id if session is not None else None)
        entries.pop(key, None)
        entries[key] = Recent(time.monotonic() + self._ttl, user, session, body)
        if len(entries) > self._capacity:
            del entries[next(iter(entries))]  # the oldest
