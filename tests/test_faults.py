"""Fault injection on real `gotrue-lite serve` processes (issue 7).

(a) PostgreSQL goes away during a stream of requests and comes back: answers during the outage
    are a prompt 503 JSON error (never a hang), the server recovers by itself, and nothing is
    half-written. The outage is staged on a PRIVATE PostgreSQL cluster (initdb + pg_ctl on a
    free port, in a temporary directory): the shared server at 5432 is never touched.
(b) SIGKILL during a stream of sign-ups on SQLite: after a restart the file passes
    `PRAGMA integrity_check` and every sign-up that was answered 200 is there, whole.
(c) SIGTERM during load: requests in flight complete, new connections are refused, exit 0.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from helpers import connection_refused, process_env

REPO = Path(__file__).resolve().parents[1]
SECRET = "a-fault-test-secret-of-at-least-32-chars!"
PASSWORD = "correct-horse-battery"
START_TIMEOUT = 30.0
OUTAGE_BOUND = 15.0  # seconds: no request may take longer while the database is away
REQUEST_TIMEOUT = 40.0  # client side: far above the bound, so a hang shows as a slow answer


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(**extra: str) -> dict[str, str]:
    return process_env(**{"GOTRUE_JWT_SECRET": SECRET, "GOTRUE_MAILER_AUTOCONFIRM": "true",
                          "GOTRUE_SITE_URL": "http://localhost:3000", **extra})


class Serve:
    """One `python -m gotrue_lite serve` process with its output in files."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        tag = uuid.uuid4().hex[:8]
        self.stderr_path = workdir / f"serve-{tag}.err"
        with open(workdir / f"serve-{tag}.out", "w") as out, open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "gotrue_lite", "serve"], cwd=workdir, env=env,
                                         stdout=out, stderr=err)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"serve exited with {self.proc.returncode}:\n{self.stderr}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"serve did not answer /health within {START_TIMEOUT}s:\n{self.stderr}")
            time.sleep(0.1)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"serve did not stop within {timeout}s of SIGTERM:\n{self.stderr}")


@pytest.fixture
def serve(tmp_path):
    """Starts serve processes; whatever a test leaves running is killed (by its own pid)."""
    started: list[Serve] = []

    def start(env: dict[str, str]) -> Serve:
        process = Serve(tmp_path, env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


# --- a stream of requests -------------------------------------------------------------------------


@dataclass
class Outcome:
    email: str
    started: float
    ended: float
    status: int | None = None  # None: no HTTP answer at all
    body: dict | None = None
    error: str | None = None
    text: str = ""

    @property
    def elapsed(self) -> float:
        return self.ended - self.started


@dataclass
class SignupStream:
    """Worker threads each signing up new users one after another, until stopped (bounded)."""

    url: str
    workers: int = 4
    max_requests: int = 2000
    max_seconds: float = 180.0
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(self.workers)]
        self._deadline = time.monotonic() + self.max_seconds

    def start(self) -> "SignupStream":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT + 5)
        with self._lock:
            return list(self.outcomes)

    def count(self) -> int:
        with self._lock:
            return len(self.outcomes)

    def _run(self) -> None:
        # A fresh connection per request: no keep-alive connection for a shutdown to cut.
        with httpx.Client(timeout=REQUEST_TIMEOUT, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                with self._lock:
                    if len(self.outcomes) >= self.max_requests:
                        return
                email = f"stream-{uuid.uuid4().hex[:16]}@example.com"
                started = time.monotonic()
                outcome = Outcome(email, started, started)
                try:
                    resp = client.post(self.url + "/signup", json={"email": email, "password": PASSWORD},
                                       headers={"Connection": "close"})
                    outcome.status, outcome.text = resp.status_code, resp.text
                    try:
                        outcome.body = resp.json()
                    except ValueError:
                        outcome.body = None
                except httpx.TransportError as exc:
                    outcome.error = f"{exc.__class__.__name__}: {exc}"
                outcome.ended = time.monotonic()
                with self._lock:
                    self.outcomes.append(outcome)
                if outcome.status is None:
                    time.sleep(0.05)  # the server is gone: do not spin


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


# --- (a) PostgreSQL outage on a private cluster -----------------------------------------------------


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PrivatePostgres:
    """A throw-away PostgreSQL cluster of this test's own: initdb, pg_ctl start/stop on a free port."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="gl-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            # initdb refuses to run as root: the cluster belongs to the postgres OS user.
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no postgres OS user to own a private cluster")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            runuser = shutil.which("runuser")
            self._as_postgres = [runuser, "-u", "postgres", "--"] if runuser else ["su", "postgres", "-c"]
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        command = [str(a) for a in args]
        if self._as_postgres[:1] == ["su"]:
            import shlex

            command = [*self._as_postgres, " ".join(shlex.quote(c) for c in command)]
        else:
            command = [*self._as_postgres, *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                               f"{self.log.read_text() if self.log.exists() else ''}")
        return result

    def init(self) -> None:
        self._run(self.bin / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "--no-sync",
                  "-E", "UTF8", "--locale=C")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(self.bin / "pg_ctl", "-D", self.data, "-o", options, "-l", self.log, "-w", "-t", "60", "start")

    def stop(self, mode: str = "immediate") -> None:
        self._run(self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        try:
            if self.running():
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    async def _fetch(self, query: str):
        import asyncpg

        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            await conn.execute("SET search_path TO auth")
            return [dict(r) for r in await conn.fetch(query)]
        finally:
            await conn.close()

    def fetch(self, query: str) -> list[dict]:
        return asyncio.run(self._fetch(query))


@pytest.fixture
def private_postgres():
    bin_dir = _pg_bin()
    if bin_dir is None:
        reason = "no PostgreSQL server binaries (initdb, pg_ctl) on this machine for a private cluster"
        if os.environ.get("GOTRUE_LITE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"GOTRUE_LITE_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    cluster = PrivatePostgres(bin_dir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def _assert_nothing_half_written(cluster: PrivatePostgres, answered: list[Outcome]) -> None:
    no_identity = cluster.fetch("SELECT u.id, u.email FROM users u WHERE u.email IS NOT NULL AND NOT EXISTS "
                                "(SELECT 1 FROM identities i WHERE i.user_id = u.id)")
    assert not no_identity, ("users without their identity", no_identity[:5])
    no_token = cluster.fetch("SELECT s.id FROM sessions s WHERE NOT EXISTS "
                             "(SELECT 1 FROM refresh_tokens t WHERE t.session_id = s.id)")
    assert not no_token, ("sessions without a refresh token", no_token[:5])
    no_amr = cluster.fetch("SELECT s.id FROM sessions s WHERE NOT EXISTS "
                           "(SELECT 1 FROM mfa_amr_claims c WHERE c.session_id = s.id)")
    assert not no_amr, ("sessions without their AMR claim", no_amr[:5])
    orphan_tokens = cluster.fetch("SELECT t.id FROM refresh_tokens t WHERE t.session_id IS NULL OR NOT EXISTS "
                                  "(SELECT 1 FROM sessions s WHERE s.id = t.session_id)")
    assert not orphan_tokens, ("refresh tokens without a session", orphan_tokens[:5])
    orphan_amr = cluster.fetch("SELECT c.id FROM mfa_amr_claims c WHERE NOT EXISTS "
                               "(SELECT 1 FROM sessions s WHERE s.id = c.session_id)")
    assert not orphan_amr, ("AMR claims without a session", orphan_amr[:5])
    orphan_identities = cluster.fetch("SELECT i.id FROM identities i WHERE NOT EXISTS "
                                      "(SELECT 1 FROM users u WHERE u.id = i.user_id)")
    assert not orphan_identities, orphan_identities[:5]
    # Every sign-up that was answered 200 is there, with a session of its own.
    emails = {row["email"] for row in cluster.fetch(
        "SELECT u.email FROM users u JOIN sessions s ON s.user_id = u.id")}
    missing = [o.email for o in answered if o.status == 200 and o.email not in emails]
    assert not missing, ("answered 200 but not stored", missing[:5])
    # A sign-up answered with an error left nothing behind, or a complete account.
    failed = {o.email for o in answered if o.status is not None and o.status >= 500}
    users = {row["email"]: row for row in cluster.fetch(
        "SELECT u.email, (SELECT count(*) FROM sessions s WHERE s.user_id = u.id) AS sessions FROM users u")}
    for email in failed & set(users):
        assert users[email]["sessions"] <= 1, users[email]


def _assert_outage_answer(outcome_status: int | None, text: str, elapsed: float, what: str) -> None:
    assert outcome_status is not None, f"{what}: no HTTP answer during the outage ({text})"
    assert elapsed < OUTAGE_BOUND, f"{what}: took {elapsed:.1f}s during the outage"
    assert outcome_status == 503, f"{what}: {outcome_status} {text[:300]}"
    body = json.loads(text)
    assert body.get("error_code") == "unexpected_failure" and isinstance(body.get("msg"), str), body
    assert body.get("code") == 503, body


@pytest.mark.parametrize("mode", ["immediate", "fast"])
def test_postgres_outage_and_recovery(serve, private_postgres, mode):
    """pg_ctl stop -m immediate (a crash: connections vanish) or -m fast (backends terminated)."""
    cluster = private_postgres
    port = free_port()
    server = serve(base_env(PORT=str(port), DATABASE_URL=cluster.dsn))
    http = httpx.Client(timeout=REQUEST_TIMEOUT)

    # A user with a session, for the other endpoints during the outage.
    email = f"before-{uuid.uuid4().hex[:10]}@example.com"
    before = http.post(server.url + "/signup", json={"email": email, "password": PASSWORD})
    assert before.status_code == 200, before.text
    session = before.json()

    stream = SignupStream(server.url, workers=3).start()
    wait_for(lambda: sum(1 for o in stream.outcomes if o.status == 200) >= 10, 60, "sign-ups before the outage")

    stopped_at = time.monotonic()
    cluster.stop(mode)
    down_at = time.monotonic()
    # Let the stream run against the missing database for a while.
    wait_for(lambda: sum(1 for o in stream.outcomes if o.started > down_at) >= 12, 60,
             "requests during the outage")

    # Other endpoints during the outage: prompt, clear 503s too.
    checks = {
        "password grant": lambda: http.post(server.url + "/token?grant_type=password",
                                            json={"email": email, "password": PASSWORD}),
        "refresh grant": lambda: http.post(server.url + "/token?grant_type=refresh_token",
                                           json={"refresh_token": session["refresh_token"]}),
        "GET /user": lambda: http.get(server.url + "/user",
                                      headers={"Authorization": f"Bearer {session['access_token']}"}),
        "admin list": lambda: http.get(server.url + "/admin/users",
                                       headers={"Authorization": "Bearer " + _service_role_key()}),
    }
    for what, call in checks.items():
        started = time.monotonic()
        resp = call()
        _assert_outage_answer(resp.status_code, resp.text, time.monotonic() - started, what)
    health_started = time.monotonic()
    try:
        http.get(server.url + "/health", timeout=OUTAGE_BOUND)
    except httpx.TimeoutException:
        pytest.fail("GET /health hung during the outage")
    assert time.monotonic() - health_started < OUTAGE_BOUND

    up_started = time.monotonic()
    cluster.start()
    up_at = time.monotonic()
    # The server recovers by itself: sign-ups succeed again, without a restart.
    wait_for(lambda: any(o.status == 200 and o.started > up_at for o in stream.outcomes), 45,
             "a successful sign-up after the database came back")
    recovered_at = time.monotonic()
    wait_for(lambda: sum(1 for o in stream.outcomes if o.started > recovered_at) >= 10, 60, "more sign-ups")
    outcomes = stream.stop()

    during = [o for o in outcomes if o.started >= down_at and o.ended <= up_started]
    assert len(during) >= 12, len(during)
    for o in during:
        _assert_outage_answer(o.status, o.text or (o.error or ""), o.elapsed, f"sign-up {o.email}")
    # Any request, whenever it ran, was answered (no hang, no dropped connection) within the bound,
    # or was a success; none got a 500.
    for o in outcomes:
        assert o.status is not None, (o.email, o.error)
        assert o.status in (200, 503), (o.status, o.text[:300])
        assert o.elapsed < OUTAGE_BOUND + 5, (o.email, o.elapsed, o.status)
    after = [o for o in outcomes if o.started > recovered_at]
    assert after and all(o.status == 200 for o in after), [(o.status, o.text[:200]) for o in after if o.status != 200]
    assert stopped_at < down_at < up_started

    # The user from before the outage still works: refresh, sign-in, /user.
    refreshed = http.post(server.url + "/token?grant_type=refresh_token", json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    signed_in = http.post(server.url + "/token?grant_type=password", json={"email": email, "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    assert http.get(server.url + "/user", headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"}
                    ).status_code == 200
    http.close()

    assert server.terminate() == 0, server.stderr
    assert "unhandled error" not in server.stderr, server.stderr[-5000:]
    _assert_nothing_half_written(cluster, outcomes)


def _service_role_key() -> str:
    from jose import jwt

    now = int(time.time())
    return jwt.encode({"role": "service_role", "iss": "supabase", "iat": now, "exp": now + 3600}, SECRET,
                      algorithm="HS256")


# --- (b) SIGKILL during sign-ups on SQLite ---------------------------------------------------------------


def test_sigkill_during_signups_keeps_sqlite_consistent(serve, tmp_path):
    db_path = tmp_path / "faults.db"
    env = base_env(PORT=str(free_port()), DATABASE_URL=f"sqlite:///{db_path}")
    for round_ in range(2):
        server = serve(env)
        stream = SignupStream(server.url, workers=6).start()
        wait_for(lambda: sum(1 for o in stream.outcomes if o.status == 200) >= 15 + 10 * round_, 90,
                 "sign-ups before the kill")
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        outcomes = stream.stop()

        # Only successes, or no answer at all: a killed server sends no half response.
        for o in outcomes:
            assert o.status in (200, None), (o.status, o.text[:300])
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []

        # The restarted server opens the same file; everything answered 200 is there, whole.
        server = serve(env)
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            users = {email: uid for uid, email in conn.execute("SELECT id, email FROM users")}
            identities = {uid for (uid,) in conn.execute("SELECT user_id FROM identities")}
            with_session = {uid for (uid,) in conn.execute(
                "SELECT s.user_id FROM sessions s JOIN refresh_tokens t ON t.session_id = s.id "
                "JOIN mfa_amr_claims c ON c.session_id = s.id")}
            orphans = conn.execute("SELECT count(*) FROM refresh_tokens t WHERE NOT EXISTS "
                                   "(SELECT 1 FROM sessions s WHERE s.id = t.session_id)").fetchone()[0]
            sessions_without_token = conn.execute(
                "SELECT count(*) FROM sessions s WHERE NOT EXISTS "
                "(SELECT 1 FROM refresh_tokens t WHERE t.session_id = s.id)").fetchone()[0]
        answered = [o for o in outcomes if o.status == 200]
        missing = [o.email for o in answered if o.email not in users]
        assert not missing, ("answered 200 but lost by the kill", missing[:5])
        for o in answered:
            assert users[o.email] in identities and users[o.email] in with_session, o.email
        assert all(uid in identities for uid in users.values()), "a user without its identity"
        assert orphans == 0 and sessions_without_token == 0
        # ... and the accounts work after the restart.
        sample = answered[-1]
        resp = httpx.post(server.url + "/token?grant_type=password", json={"email": sample.email, "password": PASSWORD},
                          timeout=REQUEST_TIMEOUT)
        assert resp.status_code == 200, resp.text
        resp = httpx.post(server.url + "/token?grant_type=refresh_token",
                          json={"refresh_token": sample.body["refresh_token"]}, timeout=REQUEST_TIMEOUT)
        assert resp.status_code == 200, resp.text
        server.terminate()


# --- (c) SIGTERM during load ----------------------------------------------------------------------------------


def test_sigterm_during_load_drains_and_exits_0(serve, tmp_path):
    db_path = tmp_path / "drain.db"
    env = base_env(PORT=str(free_port()), DATABASE_URL=f"sqlite:///{db_path}")
    server = serve(env)
    stream = SignupStream(server.url, workers=8).start()
    wait_for(lambda: sum(1 for o in stream.outcomes if o.status == 200) >= 20, 90, "sign-ups before SIGTERM")

    signalled_at = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    # The listener closes at once: new connections are refused while the old ones finish.
    wait_for(lambda: connection_refused(server.port), 5, "the listener to close after SIGTERM")
    code = server.proc.wait(30)
    exited_at = time.monotonic()
    outcomes = stream.stop()
    assert code == 0, server.stderr[-3000:]
    assert "Traceback" not in server.stderr, server.stderr[-5000:]

    # In flight at the signal (started before it): completed with a whole 200.
    in_flight = [o for o in outcomes if o.started < signalled_at < o.ended]
    assert in_flight, "no request was in flight at SIGTERM: the test proved nothing"
    completed = [o for o in in_flight if o.status == 200]
    assert completed, [(o.status, o.error) for o in in_flight]
    for o in outcomes:
        # Never a 5xx or a cut-off answer: a whole success, or no answer at all (refused).
        assert o.status in (200, None), (o.status, o.text[:300])
        if o.status == 200:
            assert o.body and o.body.get("access_token") and o.body.get("refresh_token"), o.text[:300]
        else:
            assert o.error and o.error.split(":")[0] in ("ConnectError", "RemoteProtocolError", "ReadError",
                                                         "WriteError"), o.error
    # Every answered sign-up is stored; and no request was processed without its answer being sent.
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = {email for (email,) in conn.execute("SELECT email FROM users")}
    assert {o.email for o in outcomes if o.status == 200} <= stored
    processed_but_unanswered = [o.email for o in outcomes if o.status is None and o.email in stored]
    assert not processed_but_unanswered, ("in-flight requests were cut off", processed_but_unanswered)
    assert exited_at - signalled_at < 25
