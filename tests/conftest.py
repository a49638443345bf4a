"""Shared fixtures: a real gotrue-lite server per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Awaitable, Callable, TypeVar

import httpx
import pytest
from aiohttp import web
from jose import jwt

from gotrue_lite import clock

T = TypeVar("T")

JWT_SECRET = "test-secret-0123456789abcdefghijklmnopqr"  # 40 characters
assert len(JWT_SECRET) == 40

BASE_ENV = {
    "GOTRUE_JWT_SECRET": JWT_SECRET,
    "GOTRUE_SITE_URL": "http://localhost:3000",
    "GOTRUE_MAILER_AUTOCONFIRM": "true",
    "GOTRUE_LOG_LEVEL": "warning",
}

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
PG_ADMIN_DSN = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres"

STARTUP_TIMEOUT = 30  # seconds, for create_app + migrations + first /health


def mint_api_key(role: str, secret: str = JWT_SECRET) -> str:
    """An HS256 API key like Supabase's anon / service_role keys (no `sub`)."""
    now = int(time.time())
    claims = {"role": role, "iss": "supabase", "iat": now, "exp": now + 3600}
    return jwt.encode(claims, secret, algorithm="HS256")


# --- PostgreSQL availability -------------------------------------------------------------


async def _pg_admin(statement: str | None = None) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        if statement:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_problem() -> str | None:
    """None when PostgreSQL answers at 127.0.0.1:5432, else why it does not (checked once)."""
    try:
        asyncio.run(_pg_admin())
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable here"
        return f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT} as {PG_USER}: {exc!r}"
    return None


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, postgres_problem: str | None) -> str:
    """The database backend under test; postgres is skipped (or fails, in CI) when absent."""
    if request.param == "postgres" and postgres_problem:
        if os.environ.get("GOTRUE_LITE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"GOTRUE_LITE_REQUIRE_POSTGRES=1 but {postgres_problem}", pytrace=False)
        pytest.skip(postgres_problem)
    return request.param


# --- a server running in a background thread ---------------------------------------------


@dataclass
class Server:
    """A running gotrue-lite: where it listens, how it was configured, and its own loop."""

    url: str
    settings: Any
    db_url: str
    env: dict[str, str]
    service_role_key: str
    anon_key: str
    app: web.Application
    loop: asyncio.AbstractEventLoop
    _runner: web.AppRunner
    _thread: threading.Thread
    _drop_database: str | None = None
    _stopped: bool = field(default=False, init=False)

    def run(self, coro: Awaitable[T], timeout: float = 30) -> T:
        """Run a coroutine on the server's event loop (e.g. to look into its database)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            self.run(self._runner.cleanup())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=30)
            self.loop.close()
            if self._drop_database:
                asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{self._drop_database}" WITH (FORCE)'))


def _fresh_database(backend: str, directory) -> tuple[str, str | None]:
    """A new empty database: (DATABASE_URL, name of a Postgres database to drop later)."""
    if backend == "sqlite":
        return f"sqlite:///{directory / 'gotrue_lite.db'}", None
    name = f"gl_test_{uuid.uuid4().hex}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}", name


def _wait_for_health(url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"gotrue-lite at {url} did not answer GET /health")
        time.sleep(0.05)


def start_server(backend: str, directory, env_overrides: dict[str, str | None]) -> Server:
    """Start gotrue-lite on a fresh database (or on DATABASE_URL, if given) and wait for it."""
    from gotrue_lite.app import create_app
    from gotrue_lite.config import load_settings

    directory.mkdir(parents=True, exist_ok=True)
    # Bind first, so the configuration can name the real port before the app is built.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"

    drop = None
    if env_overrides.get("DATABASE_URL"):
        db_url = env_overrides["DATABASE_URL"]
    else:
        db_url, drop = _fresh_database(backend, directory)

    env = {**BASE_ENV, "API_EXTERNAL_URL": url, "PORT": str(port),
           "GOTRUE_API_HOST": "127.0.0.1", "DATABASE_URL": db_url}
    env.update(env_overrides)
    env = {k: v for k, v in env.items() if v is not None}  # None removes a base setting
    settings = load_settings(environ=env, dotenv=False, cwd=directory)

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=f"gotrue-lite:{port}", daemon=True)
    thread.start()

    async def boot() -> tuple[web.Application, web.AppRunner]:
        app = create_app(settings)
        runner = web.AppRunner(app)
        await runner.setup()  # runs on_startup: opens the database, applies migrations
        await web.SockSite(runner, sock).start()
        return app, runner

    try:
        app, runner = asyncio.run_coroutine_threadsafe(boot(), loop).result(STARTUP_TIMEOUT)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        sock.close()
        if drop:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)'))
        raise

    secret = env.get("GOTRUE_JWT_SECRET", JWT_SECRET)
    server = Server(url=url, settings=settings, db_url=db_url, env=env,
                    service_role_key=mint_api_key("service_role", secret),
                    anon_key=mint_api_key("anon", secret),
                    app=app, loop=loop, _runner=runner, _thread=thread, _drop_database=drop)
    try:
        _wait_for_health(url)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture
def make_server(tmp_path) -> Callable[..., Server]:
    """Factory: make_server(backend, **env_overrides) -> Server; every call gets a fresh DB.

    Overrides use the environment names of CONFIG.md (GOTRUE_JWT_KEYS="…", …); a value of
    None removes a base setting. DATABASE_URL=<another server's db_url> shares a database.
    """
    servers: list[Server] = []

    def factory(backend: str, **env_overrides: str | None) -> Server:
        server = start_server(backend, tmp_path / f"server{len(servers)}", env_overrides)
        servers.append(server)
        return server

    try:
        yield factory
    finally:
        errors = []
        for server in reversed(servers):
            try:
                server.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others, then report
                errors.append(exc)
        clock.offset = timedelta(0)
        if errors:
            raise errors[0]


@pytest.fixture
def jwt_secret() -> str:
    """The HS256 secret every test server is configured with (unless overridden)."""
    return JWT_SECRET


@pytest.fixture
def server(make_server, backend: str) -> Server:
    """A server with the default test configuration, on each backend."""
    return make_server(backend)
