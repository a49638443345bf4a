"""`gotrue-lite export` and `gotrue-lite import`: users with their password hashes, identities and
MFA factors moved between stores (and from any supabase/auth database) as JSON lines."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from pathlib import Path
from typing import IO, Any, AsyncIterator

from .cli import CommandError

PAGE = 1000  # users read per page on export
BATCH = 500  # users written per transaction on import
LINES_PER_READ = 2000


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _source_of(url: str, option: str) -> tuple[str, str]:
    """(driver, DSN or SQLite path) named by a database URL."""
    from .config import ConfigError, _database_target

    try:
        driver, path = _database_target(url, Path.cwd())
    except ConfigError as exc:
        raise CommandError(str(exc).replace("DATABASE_URL", option, 1)) from None
    return (driver, url) if driver == "postgres" else (driver, path)


def _shown(driver: str, target: str) -> str:
    from .store.postgres import target as pg_target

    return f"PostgreSQL at {pg_target(target)}" if driver == "postgres" else f"the SQLite database {target}"


def _snapshot(driver: str, target: str, namespace: str, option: str):
    """A read-only snapshot, whose failures to open are one line naming the option."""
    from contextlib import asynccontextmanager

    from .store import transfer as store

    @asynccontextmanager
    async def opened():
        try:
            cm = store.open_snapshot(driver, target, namespace)
            snap = await cm.__aenter__()
        except store.NoUsersTable:
            where = f"schema {namespace!r} of " if driver == "postgres" else ""
            raise CommandError(f"{option}: no users table in {where}{_shown(driver, target)}") from None
        except FileNotFoundError:
            raise CommandError(f"{option}: no SQLite database at {target}") from None
        except Exception as exc:  # noqa: BLE001 - refused, unknown database, bad credentials
            raise CommandError(f"{option}: cannot read {_shown(driver, target)}: {_reason(exc)}") from None
        try:
            yield snap
        except BaseException as exc:
            if not await cm.__aexit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            await cm.__aexit__(None, None, None)

    return opened()


def _configured(settings) -> tuple[str, str]:
    if settings.db.driver == "postgres":
        return "postgres", settings.db.url
    return "sqlite", settings.db.sqlite_path


# --- export --------------------------------------------------------------------------------


def _private_file(path: Path) -> tuple[Path, IO[bytes]]:
    """A new file beside `path`, readable by its owner only, to be renamed onto it when complete."""
    staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:
        raise CommandError(f"--out: cannot create {path}: {exc.strerror}") from None
    return staging, os.fdopen(fd, "wb")


def _cmd_export(args: argparse.Namespace) -> int:
    from .auth import transfer
    from .cli import _load_settings

    settings = _load_settings(args)
    driver, target = _configured(settings)
    out = Path(args.out) if args.out and args.out != "-" else None
    staging, stream = _private_file(out) if out else (None, sys.stdout.buffer)

    async def write(text: str) -> None:
        # Off the event loop, a page at a time: the file never holds up the database reads.
        await asyncio.to_thread(stream.write, text.encode("utf-8"))

    async def run() -> Any:
        async with _snapshot(driver, target, settings.db.namespace, "DATABASE_URL") as snap:
            return await transfer.export(snap, write, source=driver, audit=args.audit, page_size=args.batch_size)

    try:
        counts = asyncio.run(run())
        stream.flush()
        if out:
            os.fsync(stream.fileno())
            stream.close()
            os.replace(staging, out)  # the file appears whole or not at all
    except BaseException:
        if out:
            stream.close()
            staging.unlink(missing_ok=True)
        raise
    where = f"to {out} (mode 0600" if out else "to standard output (redirect it to a file only you can read"
    audit = f", {counts.audit} audit entries" if args.audit else ""
    print(f"exported {counts.users} users ({counts.identities} identities, {counts.factors} MFA factors{audit}) "
          f"{where}: it holds password hashes and MFA secrets)", file=sys.stderr)
    return 0


# --- import --------------------------------------------------------------------------------


def _read_lines(stream: IO[bytes]) -> list[bytes]:
    lines = []
    for _ in range(LINES_PER_READ):
        line = stream.readline()
        if not line:
            break
        lines.append(line)
    return lines


async def _file_records(stream: IO[bytes]) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    from .auth import transfer

    number = 0
    while True:
        lines = await asyncio.to_thread(_read_lines, stream)
        if not lines:
            return
        for raw in lines:
            number += 1
            where = f"line {number}"
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise transfer.TransferError(where, "not UTF-8") from None
            record = transfer.parse_line(text, where)
            if record is not None:
                yield where, record


def _open_input(name: str) -> IO[bytes]:
    if name == "-":
        return sys.stdin.buffer
    try:
        stream = open(name, "rb")
    except OSError as exc:
        raise CommandError(f"import: cannot read {name}: {exc.strerror}") from None
    if os.fstat(stream.fileno()).st_mode & 0o077:
        print(f"gotrue-lite: warning: {name} is readable by other users and holds password hashes: chmod 600 it", file=sys.stderr)
    return stream


def _cmd_import(args: argparse.Namespace) -> int:
    from .auth import transfer
    from .cli import _load_settings, _open_migrated

    if bool(args.file) == bool(args.from_url):
        raise CommandError("import: give either a FILE or --from URL")
    settings = _load_settings(args)
    driver, target = _configured(settings)
    source = _source_of(args.from_url, "--from") if args.from_url else None
    stream = _open_input(args.file) if args.file else None
    counts = transfer.Counts()

    async def records_from(snap) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        async for item in transfer.snapshot_records(snap, audit=args.audit, page_size=PAGE):
            yield item

    async def into(sink) -> None:
        if stream is not None:
            await transfer.import_records(_file_records(stream), sink, framed=True, batch_size=args.batch_size,
                                          counts=counts)
            return
        async with _snapshot(source[0], source[1], args.from_schema, "--from") as snap:
            await transfer.import_records(records_from(snap), sink, framed=False, batch_size=args.batch_size,
                                          counts=counts)

    async def run() -> None:
        if args.dry_run:
            # Read-only on the target too: only to tell which users it has already.
            from .store import transfer as store

            try:
                async with store.open_snapshot(driver, target, settings.db.namespace) as snap:
                    return await into(transfer.Target(lookup=snap.ex, dry_run=True))
            except (FileNotFoundError, store.NoUsersTable):
                return await into(transfer.Target(dry_run=True))  # a new database: every user is new
        db, _ = await _open_migrated(settings)
        try:
            await into(transfer.Target(db))
        finally:
            await db.close()

    try:
        asyncio.run(run())
    except transfer.TransferError as exc:
        done = ("nothing was written (dry run)" if args.dry_run else
                f"{counts.users} users imported before it, in earlier batches (importing again skips them)"
                if counts.users else "nothing was imported")
        raise CommandError(str(exc), done) from None
    finally:
        if stream is not None and stream is not sys.stdin.buffer:
            stream.close()
    factors = f"{counts.identities} identities, {counts.factors} MFA factors"
    audit = f", {counts.audit} audit entries" if counts.audit or counts.skipped_audit else ""
    if args.dry_run:
        print(f"dry run: {counts.users} users would be imported ({factors}{audit}); "
              f"{counts.skipped_users} users already present would be skipped; nothing was written")
    else:
        print(f"imported {counts.users} users ({factors}{audit}); "
              f"skipped {counts.skipped_users} users already present (same id: left unchanged)"
              + (f" and {counts.skipped_audit} audit entries" if counts.skipped_audit else ""))
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def add_transfer(subcommands, common: argparse.ArgumentParser) -> None:
    export = subcommands.add_parser(
        "export", parents=[common],
        help="write every user (password hashes, identities, MFA factors, metadata) as JSON lines")
    export.add_argument("--out", metavar="FILE",
                        help="write to FILE, created readable by you only (default: standard output)")
    export.add_argument("--audit", action="store_true", help="include the audit log")
    export.add_argument("--batch-size", type=_positive, default=PAGE, help=argparse.SUPPRESS)
    export.set_defaults(handler=_cmd_export)

    imp = subcommands.add_parser(
        "import", parents=[common],
        help="add the users of an export (or of another database) to the configured database")
    imp.add_argument("file", nargs="?", metavar="FILE", help="a file written by export ('-': standard input)")
    imp.add_argument("--from", dest="from_url", metavar="URL",
                     help="read the users straight from another database: postgresql://… (a supabase/auth "
                          "or gotrue-lite database) or sqlite:///path")
    imp.add_argument("--from-schema", default="auth", metavar="SCHEMA",
                     help="the schema of the --from PostgreSQL database that holds the users (default: auth)")
    imp.add_argument("--audit", action="store_true", help="with --from: bring the audit log too")
    imp.add_argument("--dry-run", action="store_true", help="read and check everything, count, write nothing")
    imp.add_argument("--batch-size", type=_positive, default=BATCH,
                     help=f"users written per transaction (default {BATCH})")
    imp.set_defaults(handler=_cmd_import)
