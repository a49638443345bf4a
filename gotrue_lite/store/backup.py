"""A consistent copy of a live SQLite database through SQLite's online backup API."""

from __future__ import annotations

import os
import sqlite3
import uuid

from .sqlite import BUSY_TIMEOUT_MS


def backup_sqlite(source: str, target: str) -> int:
    """Copy the database at `source` to `target` (replaced atomically); the pages copied.

    Blocking: run it in a thread. The copy is taken in one step, inside one read transaction:
    it is the database as of one commit, and in WAL mode (the server's) the server's writers go
    on meanwhile. Stepping page by page would restart each time another process writes."""
    folder = os.path.dirname(os.path.abspath(target))
    partial = os.path.join(folder, f".{os.path.basename(target)}.{uuid.uuid4().hex[:8]}.partial")
    # The copy holds password hashes and MFA secrets: only its owner may read it.
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(descriptor)
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst, pages=-1)
                pages = dst.execute("PRAGMA page_count").fetchone()[0]
                # A single file to restore: fold the copy back to a rollback journal.
                dst.execute("PRAGMA journal_mode = DELETE").fetchall()
                check = dst.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise sqlite3.DatabaseError(f"the copy fails SQLite's quick_check: {check}")
            finally:
                dst.close()
        finally:
            src.close()
        os.replace(partial, target)
    except BaseException:
        for leftover in (partial, partial + "-journal", partial + "-wal", partial + "-shm"):
            if os.path.exists(leftover):
                os.unlink(leftover)
        raise
    return pages
