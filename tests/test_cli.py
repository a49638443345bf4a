"""The `gotrue-lite` command line, run as real subprocesses: serve, migrate, start-up errors, signals."""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from helpers import connection_refused, process_env

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0
# Start-up errors must be reported at once, not after a connect retry loop.
QUICK = 15.0
SECRET = "a-configured-secret-of-at-least-32-chars"
UNREACHABLE_POSTGRES = "postgresql://postgres@127.0.0.1:1/nope"


base_env = process_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def run_cli(*args: str, cwd: Path, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gotrue_lite", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Server:
    """One `gotrue-lite serve` process, its output kept in files (a full pipe would block it)."""

    def __init__(self, cwd: Path, env: dict[str, str], port: int, args: tuple[str, ...] = ()) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        tag = uuid.uuid4().hex[:8]
        self.stdout_path = cwd.parent / f"serve-{tag}.out"
        self.stderr_path = cwd.parent / f"serve-{tag}.err"
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gotrue_lite", "serve", *args], cwd=cwd, env=env, stdout=out, stderr=err
            )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"serve exited with {self.proc.returncode} before listening:\n{self.stderr}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"serve did not answer /health on port {self.port} in {START_TIMEOUT}s:\n{self.stderr}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"serve did not stop within {timeout}s of signal {sig}:\n{self.stderr}")


@pytest.fixture
def launch():
    """Starts servers (ready to answer) and kills whatever a failing test left running."""
    servers: list[Server] = []

    def start(cwd: Path, env: dict[str, str], port: int, *args: str, ready: bool = True) -> Server:
        server = Server(cwd, env, port, args)
        servers.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working directory: no gotrue_lite.toml, no .env."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def log_lines(text: str) -> list[dict]:
    """The server's log: JSON lines, as written when stderr is not a terminal."""
    return [json.loads(line) for line in text.splitlines()]


def sign_up(url: str, email: str | None = None) -> dict:
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    response = httpx.post(f"{url}/signup", json={"email": email, "password": "correct-horse-battery"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


# --- the parser ------------------------------------------------------------------------------


def test_version(workdir: Path) -> None:
    from gotrue_lite import __version__

    result = run_cli("--version", cwd=workdir, env=base_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"gotrue-lite {__version__}"


def test_no_subcommand_prints_help_and_exits_2(workdir: Path) -> None:
    result = run_cli(cwd=workdir, env=base_env())
    assert result.returncode == 2
    assert "serve" in result.stderr and "migrate" in result.stderr
    assert not list(workdir.iterdir()), "printing help must not create files"


def test_unknown_subcommand_exits_2(workdir: Path) -> None:
    result = run_cli("frobnicate", cwd=workdir, env=base_env())
    assert result.returncode == 2


# --- zero configuration ----------------------------------------------------------------------


def test_zero_configuration_serves_on_127_0_0_1_9999(workdir: Path, launch) -> None:
    if not port_is_free(9999):
        pytest.skip("port 9999 (the zero-configuration default) is taken on this machine")
    server = launch(workdir, base_env(), 9999)

    health = httpx.get("http://127.0.0.1:9999/health", timeout=5)
    assert health.status_code == 200
    assert health.json()["name"] == "GoTrue"

    db, secret_file = workdir / "gotrue_lite.db", workdir / "gotrue_lite.db.secret"
    assert db.is_file()
    assert secret_file.is_file()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text()
    assert len(secret.strip()) >= 32

    log = server.stderr
    warnings = [line["msg"] for line in log_lines(log) if line["level"] == "warning" and "GOTRUE_JWT_SECRET" in line["msg"]]
    assert warnings and "development" in warnings[0], log
    assert secret.strip() not in log, "the secret must never be logged"
    assert "listening on http://127.0.0.1:9999" in log

    assert server.stop() == 0
    assert connection_refused(9999)

    # A restart keeps the secret it created the first time.
    server = launch(workdir, base_env(), 9999)
    assert secret_file.read_text() == secret
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert server.stop() == 0


def test_restart_keeps_the_development_secret_and_tokens_stay_valid(workdir: Path, launch) -> None:
    port = free_port()
    env = base_env(PORT=str(port), GOTRUE_MAILER_AUTOCONFIRM="true")
    server = launch(workdir, env, port)
    session = sign_up(server.url)
    token = session["access_token"]
    secret = (workdir / "gotrue_lite.db.secret").read_text()
    bearer = {"Authorization": f"Bearer {token}"}
    before = httpx.get(f"{server.url}/user", headers=bearer, timeout=10)
    assert before.status_code == 200, before.text
    assert server.stop() == 0

    server = launch(workdir, env, port)
    assert (workdir / "gotrue_lite.db.secret").read_text() == secret
    after = httpx.get(f"{server.url}/user", headers=bearer, timeout=10)
    assert after.status_code == 200, after.text
    assert after.json()["id"] == before.json()["id"]
    assert server.stop() == 0


def test_secret_file_setting_picks_the_file(workdir: Path, launch) -> None:
    port = free_port()
    secret_file = workdir / "keys" / "jwt.secret"
    secret_file.parent.mkdir()
    env = base_env(PORT=str(port), GOTRUE_LITE_SECRET_FILE=str(secret_file))
    server = launch(workdir, env, port)
    assert secret_file.is_file()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert not (workdir / "gotrue_lite.db.secret").exists()
    assert server.stop() == 0


def test_configured_secret_writes_no_secret_file(workdir: Path, launch) -> None:
    port = free_port()
    env = base_env(PORT=str(port), GOTRUE_JWT_SECRET=SECRET)
    server = launch(workdir, env, port)
    assert not (workdir / "gotrue_lite.db.secret").exists()
    assert "development secret" not in server.stderr
    assert SECRET not in server.stderr
    assert server.stop() == 0


def test_settings_for_missing_features_warn_once_at_start(workdir: Path, launch) -> None:
    port = free_port()
    env = base_env(PORT=str(port), GOTRUE_JWT_SECRET=SECRET, GOTRUE_LOG_SQL="statement",
                   GOTRUE_PASSWORD_HIBP_ENABLED="true", GOTRUE_MFA_MAX_ENROLLED_FACTORS="3")
    server = launch(workdir, env, port)
    warnings = [line["msg"] for line in log_lines(server.stderr)
                if line["level"] == "warning" and "gotrue-lite has no" in line["msg"]]
    assert warnings == [
        "GOTRUE_LOG_SQL is set, but gotrue-lite has no SQL statement logging yet: this setting is ignored",
        "GOTRUE_PASSWORD_HIBP_ENABLED is set, but gotrue-lite has no Have I Been Pwned password check yet: "
        "this setting is ignored",
    ], server.stderr
    assert server.stop() == 0


def test_memory_database_uses_an_in_process_secret(workdir: Path, launch) -> None:
    port = free_port()
    env = base_env(PORT=str(port), DATABASE_URL="sqlite:///:memory:", GOTRUE_MAILER_AUTOCONFIRM="true")
    server = launch(workdir, env, port)
    assert list(workdir.iterdir()) == []
    assert any(line["level"] == "warning" and "GOTRUE_JWT_SECRET" in line["msg"] for line in log_lines(server.stderr))
    session = sign_up(server.url)
    me = httpx.get(f"{server.url}/user", headers={"Authorization": f"Bearer {session['access_token']}"})
    assert me.status_code == 200, me.text
    assert server.stop() == 0


# --- migrate -----------------------------------------------------------------------------------


def test_migrate_twice(workdir: Path) -> None:
    first = run_cli("migrate", cwd=workdir, env=base_env())
    assert first.returncode == 0, first.stderr
    assert "applied" in first.stdout
    assert "no pending migrations" not in first.stdout

    second = run_cli("migrate", cwd=workdir, env=base_env())
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "no pending migrations"

    with sqlite3.connect(workdir / "gotrue_lite.db") as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"users", "sessions", "refresh_tokens"} <= tables
    # Migrating needs no signing secret, so it mints none.
    assert not (workdir / "gotrue_lite.db.secret").exists()


def test_serve_after_migrate_applies_nothing_more(workdir: Path, launch) -> None:
    assert run_cli("migrate", cwd=workdir, env=base_env()).returncode == 0
    port = free_port()
    server = launch(workdir, base_env(PORT=str(port)), port)
    assert server.stop() == 0
    again = run_cli("migrate", cwd=workdir, env=base_env())
    assert again.stdout.strip() == "no pending migrations"


def test_serve_applies_migrations_on_start(workdir: Path, launch) -> None:
    port = free_port()
    server = launch(workdir, base_env(PORT=str(port)), port)
    assert server.stop() == 0
    result = run_cli("migrate", cwd=workdir, env=base_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no pending migrations"


POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"  # as conftest.py's PG_ADMIN_DSN


@pytest.fixture
def postgres_namespace(postgres_problem: str | None):
    """A schema of its own on the test Postgres, dropped afterwards (conftest decides skip/fail)."""
    if postgres_problem:
        if os.environ.get("GOTRUE_LITE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"GOTRUE_LITE_REQUIRE_POSTGRES=1 but {postgres_problem}", pytrace=False)
        pytest.skip(postgres_problem)
    import asyncio

    import asyncpg

    async def drop(namespace: str) -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE')
            # and gotrue-lite's own schema beside it (gotrue_lite.store.postgres.own_schema)
            await conn.execute(f'DROP SCHEMA IF EXISTS "gotrue_lite_{namespace}" CASCADE')
        finally:
            await conn.close()

    namespace = f"cli_test_{uuid.uuid4().hex[:10]}"
    yield namespace
    asyncio.run(drop(namespace))


def test_postgres_migrate_and_serve(workdir: Path, launch, postgres_namespace: str) -> None:
    env = base_env(DATABASE_URL=POSTGRES_URL, DB_NAMESPACE=postgres_namespace)
    first = run_cli("migrate", cwd=workdir, env=env)
    assert first.returncode == 0, first.stderr
    assert "applied" in first.stdout
    second = run_cli("migrate", cwd=workdir, env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "no pending migrations"

    port = free_port()
    env.update(PORT=str(port), GOTRUE_JWT_SECRET=SECRET, GOTRUE_MAILER_AUTOCONFIRM="true")
    server = launch(workdir, env, port)
    session = sign_up(server.url)
    me = httpx.get(f"{server.url}/user", headers={"Authorization": f"Bearer {session['access_token']}"})
    assert me.status_code == 200, me.text
    assert server.stop() == 0
    assert list(workdir.iterdir()) == [], "Postgres needs no files in the working directory"


# --- start-up errors -----------------------------------------------------------------------------


BAD_SETTINGS = [
    pytest.param({"GOTRUE_DB_DRIVER": "mysql"}, "GOTRUE_DB_DRIVER", id="db-driver"),
    pytest.param({"GOTRUE_JWT_EXP": "abc"}, "GOTRUE_JWT_EXP", id="jwt-exp"),
    pytest.param({"GOTRUE_JWT_EXP": "1h"}, "GOTRUE_JWT_EXP: expected a whole number of seconds, such as 3600",
                 id="jwt-exp-duration"),
    pytest.param({"GOTRUE_JWT_KEYS": '[{"kty":"oct"}]'}, "GOTRUE_JWT_KEYS", id="jwt-keys-no-signing-key"),
    pytest.param({"GOTRUE_JWT_KEYS": '[{"kty": "oct",'}, "GOTRUE_JWT_KEYS", id="jwt-keys-malformed"),
    pytest.param({"GOTRUE_SMTP_MAX_FREQUENCY": "5x"}, "GOTRUE_SMTP_MAX_FREQUENCY", id="smtp-max-frequency"),
    pytest.param(
        {"DATABASE_URL": UNREACHABLE_POSTGRES, "GOTRUE_JWT_SECRET": SECRET}, "DATABASE_URL", id="unreachable-db"
    ),
    pytest.param({"GOTRUE_LITE_CONFIG": "missing.toml"}, "GOTRUE_LITE_CONFIG", id="missing-config-file"),
]


def assert_one_line_error(result: subprocess.CompletedProcess, setting: str, elapsed: float) -> None:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"gotrue-lite: {setting}"), lines[0]
    assert elapsed < QUICK


@pytest.mark.parametrize(("env", "setting"), BAD_SETTINGS)
def test_bad_settings_stop_serve_with_one_line(workdir: Path, env: dict[str, str], setting: str) -> None:
    started = time.monotonic()
    result = run_cli("serve", cwd=workdir, env=base_env(PORT=str(free_port()), **env), timeout=QUICK * 2)
    assert_one_line_error(result, setting, time.monotonic() - started)
    assert SECRET not in result.stderr
    assert not (workdir / "gotrue_lite.db.secret").exists()


def test_missing_secret_and_unreachable_postgres_are_reported_in_one_go(workdir: Path) -> None:
    env = base_env(DATABASE_URL="postgresql://postgres@127.0.0.1:1/nope", PORT=str(free_port()))
    started = time.monotonic()
    result = run_cli("serve", cwd=workdir, env=env, timeout=QUICK * 2)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        "gotrue-lite: GOTRUE_JWT_SECRET: required with a Postgres database (or set GOTRUE_JWT_KEYS); "
        "the automatic development secret exists only for SQLite",
        "gotrue-lite: DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:1: Connection refused",
    ]
    assert time.monotonic() - started < QUICK


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_bad_postgres_host_names_host_and_port(workdir: Path, command: str) -> None:
    env = base_env(DATABASE_URL="postgresql://gotrue:pw@db.invalid:6543/app", GOTRUE_JWT_SECRET=SECRET,
                   PORT=str(free_port()))
    started = time.monotonic()
    result = run_cli(command, cwd=workdir, env=env, timeout=QUICK * 2)
    assert_one_line_error(result, "DATABASE_URL: cannot connect to PostgreSQL at db.invalid:6543: ",
                          time.monotonic() - started)
    assert "pw" not in result.stderr.replace("PostgreSQL", "")  # the password stays out of it


def _read_only(folder: Path, command: list[str]) -> list[str]:
    """`command`, run where `folder` is read-only: by its mode, or (root ignores modes) by a
    read-only bind mount in a mount namespace of its own."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return command
    import shutil

    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare or "unshare", "-m", "true"], capture_output=True) if unshare else None
    if probe is None or probe.returncode != 0:
        pytest.skip("running as root without `unshare -m`: no way to make a folder read-only for root")
    mount = f'mount --bind "{folder}" "{folder}" && mount -o remount,bind,ro "{folder}" && exec "$@"'
    return [unshare, "-m", "sh", "-c", mount, "sh", *command]


@pytest.mark.parametrize("secret", [SECRET, None], ids=["configured-secret", "development-secret"])
@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_database_in_a_read_only_folder_is_one_line(workdir: Path, command: str, secret: str | None) -> None:
    folder = workdir / "data"
    folder.mkdir()
    env = base_env(DATABASE_URL=f"sqlite:///{folder}/auth.db", PORT=str(free_port()))
    if secret:
        env["GOTRUE_JWT_SECRET"] = secret
    try:
        started = time.monotonic()
        result = subprocess.run(_read_only(folder, [sys.executable, "-m", "gotrue_lite", command]), cwd=workdir,
                                env=env, capture_output=True, text=True, timeout=QUICK * 2)
        elapsed = time.monotonic() - started
    finally:
        folder.chmod(0o755)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "Event loop is closed" not in result.stderr, result.stderr
    (line,) = result.stderr.splitlines()
    reason = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    if command == "serve" and not secret:
        # The development secret beside the database is the first thing written.
        assert line == f"gotrue-lite: DATABASE_URL: cannot create the development secret {folder}/auth.db.secret: {reason}"
    else:
        assert line == (f"gotrue-lite: DATABASE_URL: cannot open the SQLite database {folder}/auth.db: "
                        f"cannot write in the folder {folder}: {reason}")
    assert elapsed < QUICK
    assert list(folder.iterdir()) == []


def test_postgres_without_secret_is_refused_even_when_reachable(workdir: Path) -> None:
    env = base_env(DATABASE_URL="postgresql://postgres@127.0.0.1:5432/postgres", PORT=str(free_port()))
    started = time.monotonic()
    result = run_cli("serve", cwd=workdir, env=env, timeout=QUICK * 2)
    assert_one_line_error(result, "GOTRUE_JWT_SECRET", time.monotonic() - started)


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        pytest.param({"GOTRUE_DB_DRIVER": "mysql"}, "GOTRUE_DB_DRIVER", id="db-driver"),
        pytest.param({"DATABASE_URL": UNREACHABLE_POSTGRES}, "DATABASE_URL", id="unreachable-db"),
    ],
)
def test_bad_settings_stop_migrate_with_one_line(workdir: Path, env: dict[str, str], setting: str) -> None:
    started = time.monotonic()
    result = run_cli("migrate", cwd=workdir, env=base_env(**env), timeout=QUICK * 2)
    assert_one_line_error(result, setting, time.monotonic() - started)


def test_missing_config_option_file(workdir: Path) -> None:
    started = time.monotonic()
    result = run_cli("serve", "--config", "nope.toml", cwd=workdir, env=base_env(), timeout=QUICK * 2)
    assert_one_line_error(result, "--config", time.monotonic() - started)


def test_port_in_use_is_one_line(workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = run_cli("serve", cwd=workdir, env=base_env(PORT=str(port)), timeout=QUICK * 2)
    assert_one_line_error(result, f"PORT: cannot listen on http://127.0.0.1:{port}: Address already in use",
                          time.monotonic() - started)
    assert list(workdir.iterdir()) == [], "nothing is created before the port is ours"


def test_second_serve_on_a_busy_port_touches_nothing(workdir: Path, launch, tmp_path: Path) -> None:
    port = free_port()
    first = launch(workdir, base_env(PORT=str(port)), port)
    before = {path.name: path.stat().st_mtime_ns for path in workdir.iterdir()}
    # The same folder (its database and secret exist) and a new one (nothing exists yet).
    elsewhere = tmp_path / "second"
    elsewhere.mkdir()
    for cwd in (workdir, elsewhere):
        result = run_cli("serve", cwd=cwd, env=base_env(PORT=str(port)), timeout=QUICK * 2)
        assert result.returncode == 1, result.stderr
        assert result.stderr.splitlines() == [
            f"gotrue-lite: PORT: cannot listen on http://127.0.0.1:{port}: Address already in use"]
    assert list(elsewhere.iterdir()) == [], "no database, no secret file"
    assert {path.name: path.stat().st_mtime_ns for path in workdir.iterdir()} == before
    assert httpx.get(f"{first.url}/health", timeout=5).status_code == 200
    assert first.stop() == 0


def test_second_serve_on_a_busy_port_creates_no_postgres_schema(workdir: Path, launch,
                                                               postgres_namespace: str) -> None:
    port = free_port()
    first = launch(workdir, base_env(PORT=str(port)), port)
    env = base_env(PORT=str(port), DATABASE_URL=POSTGRES_URL, DB_NAMESPACE=postgres_namespace,
                   GOTRUE_JWT_SECRET=SECRET)
    result = run_cli("serve", cwd=workdir, env=env, timeout=QUICK * 2)
    assert result.returncode == 1 and "Address already in use" in result.stderr, result.stderr
    import asyncio

    import asyncpg

    async def schema_exists() -> bool:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            return await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", postgres_namespace) == 1
        finally:
            await conn.close()

    assert asyncio.run(schema_exists()) is False, "no schema, no migration"
    assert first.stop() == 0


def test_links_in_mail_follow_port_with_the_sample_configuration(workdir: Path, launch) -> None:
    """Run from a folder holding the sample gotrue_lite.toml, as from the repository."""
    (workdir / "gotrue_lite.toml").write_text((REPO / "gotrue_lite.toml").read_text())
    port = free_port()
    server = launch(workdir, base_env(PORT=str(port), GOTRUE_MAILER_AUTOCONFIRM="false"), port)
    email = f"port-{uuid.uuid4().hex[:10]}@example.com"
    sign_up(server.url, email)
    (message,) = httpx.get(f"{server.url}/_dev/mail", params={"email": email}, timeout=10).json()["messages"]
    (link,) = [link for link in message["links"] if "/verify?" in link]
    assert link.startswith(f"http://localhost:{port}/verify?token="), link
    assert link.endswith(f"&redirect_to=http://localhost:{port}/_dev/welcome"), link
    assert server.stop() == 0


def test_start_up_lines_say_what_the_development_defaults_do(workdir: Path, launch) -> None:
    port = free_port()
    server = launch(workdir, base_env(PORT=str(port)), port)
    assert server.stop() == 0
    log = server.stderr
    assert "e-mail confirmation is off while the development mailbox is in use" in log, log
    assert f"links in mail land on http://localhost:{port}/_dev/welcome" in log, log
    # Confirmation asked for: said so, and it is what happens.
    server = launch(workdir, base_env(PORT=str(port), GOTRUE_MAILER_AUTOCONFIRM="false"), port)
    body = sign_up(server.url)
    assert "access_token" not in body and body["confirmation_sent_at"], body
    assert server.stop() == 0
    assert "e-mail confirmation is on" in server.stderr and "confirmation is off" not in server.stderr
    # Without the mailbox (as with an SMTP host or a public address): upstream's defaults.
    server = launch(workdir, base_env(PORT=str(port), GOTRUE_LITE_DEV_MAILBOX="false"), port)
    body = sign_up(server.url)
    assert "access_token" not in body, body
    assert server.stop() == 0
    assert "confirmation is" not in server.stderr and "/_dev/welcome" not in server.stderr


# --- signals ----------------------------------------------------------------------------------------


def _send_signup(port: int) -> socket.socket:
    """Sends a whole sign-up request on a new connection and leaves the answer unread."""
    body = json.dumps({"email": f"inflight-{uuid.uuid4().hex[:10]}@example.com", "password": "correct-horse-battery"})
    head = (
        f"POST /signup HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall((head + body).encode())
    return sock


def _read_response(sock: socket.socket) -> tuple[int, dict]:
    with sock:
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read())


def _wait_until_server_read(port: int, connections: int, timeout: float = 10) -> None:
    """Waits until the server has read everything sent on its connections (Linux /proc)."""
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        time.sleep(1)  # no way to look: give the server's loop ample time instead
        return
    local = f":{port:04X}"
    deadline = time.monotonic() + timeout
    while True:
        queues = []
        for table in tables:
            if table.exists():
                for row in table.read_text().splitlines()[1:]:
                    fields = row.split()
                    if fields[1].endswith(local) and fields[3] == "01":  # the server's ESTABLISHED ends
                        queues.append(int(fields[4].split(":")[1], 16))
        if len(queues) >= connections and not any(queues):
            return
        assert time.monotonic() < deadline, f"the server did not read its requests: receive queues {queues}"
        time.sleep(0.02)


def test_sigterm_lets_requests_in_flight_finish(workdir: Path, launch) -> None:
    port = free_port()
    server = launch(workdir, base_env(PORT=str(port), GOTRUE_MAILER_AUTOCONFIRM="true"), port)
    sign_up(server.url)
    # Holding SQLite's write lock from here keeps the sign-ups in flight (bcrypt done, waiting
    # on their INSERT within the server's busy timeout) for as long as this test needs.
    lock = sqlite3.connect(workdir / "gotrue_lite.db", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        in_flight = [_send_signup(port) for _ in range(4)]
        # aiohttp ignores bytes that arrive after shutdown began, so make sure every request
        # is inside the server before the signal.
        _wait_until_server_read(port, len(in_flight))

        server.proc.send_signal(signal.SIGTERM)
        # The listener closes first: new connections are refused while the old ones finish.
        deadline = time.monotonic() + 3
        while not connection_refused(port):
            assert time.monotonic() < deadline, "serve still accepts connections after SIGTERM"
            time.sleep(0.05)
        assert server.proc.poll() is None, f"serve exited with requests in flight:\n{server.stderr}"
        readable, _, _ = select.select(in_flight, [], [], 0)
        assert not readable, f"answered while the database was locked:\n{server.stderr}"

        lock.execute("COMMIT")
        answers = [_read_response(sock) for sock in in_flight]
    finally:
        lock.close()
    assert [status for status, _ in answers] == [200] * len(answers), answers
    assert all(body["access_token"] for _, body in answers)
    assert server.proc.wait(20) == 0, server.stderr
    assert connection_refused(port)
    assert "Traceback" not in server.stderr


def test_sigint_exits_0(workdir: Path, launch) -> None:
    port = free_port()
    server = launch(workdir, base_env(PORT=str(port)), port)
    assert server.stop(signal.SIGINT) == 0, server.stderr
    assert connection_refused(port)
    assert "Traceback" not in server.stderr


# --- configuration file --------------------------------------------------------------------------


def _write_config(path: Path, port: int) -> Path:
    path.write_text(f'[api]\nhost = "127.0.0.1"\nport = {port}\n')
    return path


def test_config_option_picks_the_file(workdir: Path, launch) -> None:
    port = free_port()
    config = _write_config(workdir.parent / "elsewhere.toml", port)
    server = launch(workdir, base_env(), port, "--config", str(config))
    assert server.stop() == 0


def test_config_option_beats_the_default_file(workdir: Path, launch) -> None:
    default_port, chosen_port = free_port(), free_port()
    _write_config(workdir / "gotrue_lite.toml", default_port)
    _write_config(workdir / "chosen.toml", chosen_port)
    server = launch(workdir, base_env(), chosen_port, "-c", "chosen.toml")
    assert connection_refused(default_port)
    assert server.stop() == 0


def test_gotrue_lite_config_variable_picks_the_file(workdir: Path, launch) -> None:
    port = free_port()
    config = _write_config(workdir.parent / "from-env.toml", port)
    server = launch(workdir, base_env(GOTRUE_LITE_CONFIG=str(config)), port)
    assert server.stop() == 0


def test_environment_beats_the_file(workdir: Path, launch) -> None:
    file_port, env_port = free_port(), free_port()
    config = _write_config(workdir / "settings.toml", file_port)
    server = launch(workdir, base_env(PORT=str(env_port)), env_port, "--config", str(config))
    assert connection_refused(file_port)
    assert server.stop() == 0


def test_migrate_reads_the_config_file(workdir: Path) -> None:
    config = workdir.parent / "db.toml"
    config.write_text('[db]\nurl = "sqlite:///from-file.db"\n')
    result = run_cli("migrate", "--config", str(config), cwd=workdir, env=base_env())
    assert result.returncode == 0, result.stderr
    assert (workdir / "from-file.db").is_file()
    assert not (workdir / "gotrue_lite.db").exists()
