"""`gotrue-lite backup FILE`: a consistent copy of the SQLite database while the server serves it."""

from __future__ import annotations

import argparse
import asyncio
import os


def _cmd_backup(args: argparse.Namespace) -> int:
    from .cli import CommandError, _load_settings

    settings = _load_settings(args)
    if settings.db.driver == "postgres":
        raise CommandError("backup: the database is PostgreSQL; back it up with pg_dump "
                           "(pg_dump --schema=auth \"$DATABASE_URL\" > auth.sql)")
    source = settings.db.sqlite_path
    if source == ":memory:":
        raise CommandError("backup: DATABASE_URL is an in-memory SQLite database; there is nothing to copy")
    if not os.path.isfile(source):
        raise CommandError(f"backup: no database at {source}")
    target = os.path.abspath(args.file)
    if target == os.path.abspath(source):
        raise CommandError("backup: FILE is the database itself")
    if os.path.isdir(target):
        raise CommandError(f"backup: {args.file} is a directory")

    from .store.backup import backup_sqlite

    try:
        pages = asyncio.run(asyncio.to_thread(backup_sqlite, source, target))
    except Exception as exc:  # noqa: BLE001 - sqlite3 and the file system: one line, no traceback
        raise CommandError(f"backup: {exc}") from None
    print(f"backed up {source} to {target} ({pages} pages)")
    return 0


def add_backup(subcommands, common: argparse.ArgumentParser) -> None:
    backup = subcommands.add_parser(
        "backup", parents=[common],
        help="copy the SQLite database to FILE while the server runs (PostgreSQL: use pg_dump)",
    )
    backup.add_argument("file", metavar="FILE", help="where the copy goes (replaced if it exists; mode 0600)")
    backup.set_defaults(handler=_cmd_backup)
