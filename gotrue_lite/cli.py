"""The `gotrue-lite` command line: `serve`, `migrate`, and room for the subcommands to come."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import secrets
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gotrue_lite import __version__

if TYPE_CHECKING:
    from aiohttp import web

    from gotrue_lite.config import Settings
    from gotrue_lite.store import Database

PROG = "gotrue-lite"
# Long enough for a slow bcrypt sign-up to finish, short enough for an orchestrator's grace period.
SHUTDOWN_TIMEOUT = 10.0
LISTEN_BACKLOG = 128  # aiohttp's default

log = logging.getLogger("gotrue_lite")


class CommandError(Exception):
    """Failures the user can fix; main() prints one line for each (its arguments) and exits 1."""


# --- logging -------------------------------------------------------------------------------


class _HoldingHandler(logging.Handler):
    """Keeps the records emitted while settings load, until the log level is known."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _hold_logs() -> _HoldingHandler:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    holding = _HoldingHandler()
    root.addHandler(holding)
    root.setLevel(logging.DEBUG)
    return holding


def _start_logging(level: int, holding: _HoldingHandler | None, log_file: str = "") -> None:
    from gotrue_lite.logs import handler

    root = logging.getLogger()
    if holding is not None:
        root.removeHandler(holding)
    try:
        stream = handler(log_file)
    except OSError as exc:
        raise CommandError(f"GOTRUE_LOG_FILE: cannot open {log_file}: {exc.strerror}") from exc
    root.addHandler(stream)
    root.setLevel(level)
    # aiosqlite logs every statement with its arguments (token hashes, password hashes) at
    # DEBUG; SQL logging is GOTRUE_LOG_SQL's business, not the general log level's.
    logging.getLogger("aiosqlite").setLevel(max(level, logging.INFO))
    if holding is not None:
        for record in holding.records:
            if record.levelno >= level and logging.getLogger(record.name).isEnabledFor(record.levelno):
                stream.handle(record)


def _drop_held_logs(holding: _HoldingHandler) -> None:
    # A start-up error is reported as exactly one line; whatever was said before it is noise.
    root = logging.getLogger()
    root.removeHandler(holding)
    root.addHandler(logging.NullHandler())


# --- settings and the signing secret --------------------------------------------------------


def _load_settings(args: argparse.Namespace) -> Settings:
    from gotrue_lite.config import ConfigError, load_settings

    # Without --config, load_settings picks $GOTRUE_LITE_CONFIG or ./gotrue_lite.toml itself.
    config_file = getattr(args, "config", None)
    if config_file is not None and not Path(config_file).is_file():
        raise CommandError(f"--config: no such file: {config_file}")
    holding = _hold_logs()
    try:
        settings = load_settings(config_file)
    except ConfigError:
        _drop_held_logs(holding)
        raise
    try:
        _start_logging(settings.log_level, holding, settings.log_file)
    except CommandError:
        _drop_held_logs(holding)
        raise
    return settings


def _secret_file_for(settings: Settings) -> tuple[Path | None, str]:
    """Where the development secret lives, and the setting to blame when that place is bad."""
    if settings.lite.secret_file:
        return Path(settings.lite.secret_file), "GOTRUE_LITE_SECRET_FILE"
    if settings.db.sqlite_path == ":memory:":
        return None, "DATABASE_URL"
    return Path(f"{settings.db.sqlite_path}.secret"), "DATABASE_URL"


def _read_secret_file(path: Path, setting: str) -> str:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CommandError(f"{setting}: cannot read the development secret {path}: {exc.strerror}") from exc
    if not secret:
        raise CommandError(
            f"{setting}: the development secret file {path} is empty; delete it or set GOTRUE_JWT_SECRET"
        )
    if path.stat().st_mode & 0o077:
        log.warning("development secret file %s is readable by other users; chmod 600 it", path)
    return secret


def _write_private_file(path: Path, text: str) -> None:
    """Creates `path` readable by its owner only; FileExistsError if it is already there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())


def _create_secret_file(path: Path, setting: str) -> str | None:
    """Writes a new secret to `path` unless it exists; returns it, or None if another won."""
    secret = secrets.token_urlsafe(48)
    # Written in full under a private name, then linked into place: a reader never sees a
    # half-written file, and of two servers starting at once exactly one secret wins.
    staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        _write_private_file(staging, secret + "\n")
    except OSError as exc:
        raise CommandError(f"{setting}: cannot create the development secret {path}: {exc.strerror}") from exc
    try:
        os.link(staging, path)
    except FileExistsError:
        return None
    except OSError:
        # A filesystem without hard links: create the file in place instead.
        try:
            _write_private_file(path, secret + "\n")
        except FileExistsError:
            return None
    finally:
        try:
            os.unlink(staging)
        except FileNotFoundError:
            pass
    return secret


def _development_secret(settings: Settings) -> str:
    path, setting = _secret_file_for(settings)
    if path is None:
        log.warning(
            "GOTRUE_JWT_SECRET is not set: signing tokens with a random development secret that "
            "lasts only as long as this process (in-memory database); production must set GOTRUE_JWT_SECRET"
        )
        return secrets.token_urlsafe(48)
    created = None if path.exists() else _create_secret_file(path, setting)
    secret = created if created is not None else _read_secret_file(path, setting)
    log.warning(
        "GOTRUE_JWT_SECRET is not set: signing tokens with the development secret %s %s; "
        "this is for development only, production must set GOTRUE_JWT_SECRET",
        "created in" if created is not None else "read from",
        path,
    )
    return secret


def _missing_signing_key(settings: Settings) -> str | None:
    """Why these settings cannot sign tokens at all, found without touching anything."""
    if settings.jwt.secret or settings.jwt.keys or settings.db.driver == "sqlite":
        return None
    return (
        "GOTRUE_JWT_SECRET: required with a Postgres database (or set GOTRUE_JWT_KEYS); "
        "the automatic development secret exists only for SQLite"
    )


def _with_signing_key(settings: Settings) -> Settings:
    """Settings that can sign tokens: as configured, or with the development secret added."""
    if settings.jwt.secret or settings.jwt.keys:
        return settings
    missing = _missing_signing_key(settings)
    if missing:
        raise CommandError(missing)
    secret = _development_secret(settings)
    return dataclasses.replace(settings, jwt=dataclasses.replace(settings.jwt, secret=secret))


# --- database -------------------------------------------------------------------------------


async def _open_migrated(settings: Settings) -> tuple[Database, list[str]]:
    from gotrue_lite.store import open_database
    from gotrue_lite.store.migrate import apply_migrations

    db = await open_database(settings)
    try:
        applied = await apply_migrations(db)
    except BaseException:
        await db.close()
        raise
    return db, applied


# --- serve ----------------------------------------------------------------------------------


def _listen_address(settings: Settings) -> tuple[str | None, int, str]:
    host = settings.api.host or None
    try:
        port = int(settings.api.port)
    except (TypeError, ValueError) as exc:
        raise CommandError(f"PORT: not a port number: {settings.api.port!r}") from exc
    shown = settings.api.host or "0.0.0.0"
    if ":" in shown:
        shown = f"[{shown}]"
    return host, port, f"http://{shown}:{port}"


def _listen(host: str | None, port: int, url: str) -> list[socket.socket]:
    """The listening sockets, bound before anything else happens, as asyncio would bind them
    (every address the host resolves to; None: all interfaces)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CommandError(f"GOTRUE_API_HOST: cannot listen on {url}: {exc.strerror}") from exc
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise CommandError(f"PORT: cannot listen on {url}: {exc.strerror}") from exc
    return sockets


def _dev_lines(settings: Settings) -> list[str]:
    """What a newcomer on the development defaults needs to know, said at start-up."""
    from gotrue_lite.api.devwelcome import serves_welcome

    if not settings.lite.dev_mailbox:
        return []
    lines = []
    if settings.mailer.autoconfirm:
        lines.append("e-mail confirmation is off while the development mailbox is in use (as on a Supabase "
                     "CLI stack): sign-ups are signed in at once; GOTRUE_MAILER_AUTOCONFIRM=false turns it on")
    else:
        lines.append("e-mail confirmation is on: sign-ups confirm through the link in the development mailbox")
    if serves_welcome(settings):
        lines.append(f"links in mail land on {settings.site_url} (GOTRUE_SITE_URL is not set; set it to your app)")
    return lines


def _cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from gotrue_lite.app import create_app
    from gotrue_lite.config import not_yet_warnings
    from gotrue_lite.config import ConfigError
    from gotrue_lite.store import check_database

    settings = _load_settings(args)
    host, port, url = _listen_address(settings)
    # Everything that can be checked without changing anything is checked first and reported
    # together; the port comes before the database, so a second server on a busy port creates,
    # migrates and writes nothing.
    problems: list[str] = []
    sockets: list[socket.socket] = []
    try:
        sockets = _listen(host, port, url)
    except CommandError as exc:
        problems.append(str(exc))
    missing = _missing_signing_key(settings)
    if missing:
        problems.append(missing)
        if sockets:
            try:
                asyncio.run(check_database(settings))
            except ConfigError as exc:
                problems.append(str(exc))
    if problems:
        for sock in sockets:
            sock.close()
        raise CommandError(*problems)

    try:
        settings = _with_signing_key(settings)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise

    for line in not_yet_warnings(settings):
        log.warning("%s", line)

    async def build_app() -> web.Application:
        from gotrue_lite.hooks import check_functions

        await check_functions(settings)  # before migrating: a bad hook setting changes nothing
        db, _ = await _open_migrated(settings)
        try:
            return create_app(settings, db=db)
        except BaseException:
            await db.close()
            raise

    def announce(*_: object) -> None:
        log.info("%s %s listening on %s", PROG, __version__, url)
        for line in _dev_lines(settings):
            log.info("%s", line)

    # run_app stops on SIGTERM and SIGINT: it closes the listening sockets, gives the requests
    # in flight up to SHUTDOWN_TIMEOUT, then runs the app's cleanup (pools).
    web.run_app(
        build_app(),
        sock=sockets,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        print=announce,
        access_log=None,  # requests are logged by the app (api/observe.py), with their request id
        handle_signals=True,
    )
    log.info("%s stopped", PROG)
    return 0


# --- migrate --------------------------------------------------------------------------------


def _cmd_migrate(args: argparse.Namespace) -> int:
    settings = _load_settings(args)

    async def run() -> list[str]:
        db, applied = await _open_migrated(settings)
        await db.close()
        return applied

    applied = asyncio.run(run())
    if applied:
        for name in applied:
            print(f"applied {name}")
        print(f"{len(applied)} migration(s) applied")
    else:
        print("no pending migrations")
    return 0


# --- the parser -----------------------------------------------------------------------------


def _config_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="TOML configuration file (default: $GOTRUE_LITE_CONFIG, else ./gotrue_lite.toml if present)",
    )
    return options


Subcommands = Any  # argparse's _SubParsersAction, which it does not export


def _add_serve(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    serve = subcommands.add_parser(
        "serve", parents=[common], help="apply pending migrations, then serve the API"
    )
    serve.set_defaults(handler=_cmd_serve)


def _add_migrate(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    migrate = subcommands.add_parser("migrate", parents=[common], help="apply pending migrations and exit")
    migrate.set_defaults(handler=_cmd_migrate)


# Each entry adds one subcommand (and may nest its own, as `users …` will); the handler it
# sets takes the parsed arguments and returns the exit code.
def _add_token(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    from gotrue_lite.cli_token import add_token

    add_token(subcommands, common)


def _add_users(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    from gotrue_lite.cli_users import add_users

    add_users(subcommands, common)


def _add_transfer(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    from gotrue_lite.cli_transfer import add_transfer

    add_transfer(subcommands, common)


def _add_backup(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    from gotrue_lite.cli_backup import add_backup

    add_backup(subcommands, common)


COMMANDS: list[Callable[[Subcommands, argparse.ArgumentParser], None]] = [
    _add_serve, _add_migrate, _add_token, _add_users, _add_transfer, _add_backup,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="A GoTrue / Supabase Auth compatible server.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.set_defaults(handler=None)
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND")
    common = _config_options()
    for add in COMMANDS:
        add(subcommands, common)
    return parser


def _one_line(exc: object) -> str:
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.handler is None:
        parser.print_help(sys.stderr)
        return 2
    from gotrue_lite.config import ConfigError

    try:
        return int(args.handler(args))
    except CommandError as exc:
        for problem in exc.args:
            print(f"{PROG}: {_one_line(problem)}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"{PROG}: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
