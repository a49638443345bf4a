"""The gotrue-lite benchmark: `python -m bench` (or `python bench/run.py`).

It starts gotrue-lite as a subprocess on SQLite and/or on a fresh PostgreSQL database, seeds
users straight into the database, drives the server from separate load-generator processes
over loopback, and prints one table: throughput, latency, errors and the server's peak RSS per
scenario, each set against its limit:

* bcrypt limit = cores / (median time of one cost-10 bcrypt.checkpw), measured in-process: the
  most password sign-ins per second the machine can possibly check;
* bare limit = what a bare aiohttp server returning a small JSON body achieves under the same
  load generator at the same concurrency (bench/bare_server.py).

Then it checks the performance targets (docs/performance.md) and says met / not met for each.
Every load loop is bounded by a request count and by time; all traffic is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench import seed
from bench.loadgen import Job, Load, LoadResult, default_processes, split

REPO = Path(__file__).resolve().parent.parent
JWT_SECRET = "bench-secret-0123456789abcdefghijklmnopqrstuv"
PASSWORD = "bench-Password-123"
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BASE = "postgresql://postgres@127.0.0.1:5432/"
STARTUP_TIMEOUT = 60.0
SMALL_STORE = 1_000
MID_STORE = 100_000
BIG_STORE = 1_000_000
HEALTH_PROBE_RATE = 20.0  # /health requests per second while sign-in saturates the cores
QUIET_CORES = 0.25  # --wait-quiet: at most this many cores busy with other work
RETRY_OTHER_CORES = 0.3  # --wait-quiet: repeat a scenario once if other work took more than this
ADMIN_PAGES = 20  # admin listing reads pages 1..20 (all of the 1k store) on both store sizes

ALL_SCENARIOS = ("signin", "refresh", "user", "signup", "admin", "bigsignin")


# --- small helpers --------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def mint_service_key(secret: str = JWT_SECRET, ttl: int = 7200) -> str:
    """HS256 {"role": "service_role", "iss": "supabase", iat, exp}, like Supabase's service key."""
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = _b64(json.dumps({"role": "service_role", "iss": "supabase", "iat": now, "exp": now + ttl},
                             separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64(signature)}"


def http_status(url: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> int | None:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_busy_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def _pid_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_backend_cpu(database: str | None) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend process connected to `database` (same machine)."""
    if not database:
        return {}
    try:
        pids = asyncio.run(_pg_admin(f"SELECT array_agg(pid) FROM pg_stat_activity WHERE datname = '{database}'",
                                     fetch=True)) or []
    except Exception:  # noqa: BLE001 - the column is then n/a
        return {}
    return {pid: _pid_cpu_seconds(pid) for pid in pids}


def bcrypt_check_time(samples: int) -> tuple[float, float]:
    """(CPU, wall) median seconds of one cost-10 bcrypt.checkpw, in this process, one thread.

    The CPU time is the limit's basis: it is what a check costs a core, and unlike the wall
    time it does not grow when other work on the machine takes turns on the cores.
    """
    import bcrypt

    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10))
    bcrypt.checkpw(PASSWORD.encode(), hashed)  # warm
    cpu, wall = [], []
    for _ in range(samples):
        c0, w0 = time.thread_time(), time.perf_counter()
        bcrypt.checkpw(PASSWORD.encode(), hashed)
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall)


# --- server processes -----------------------------------------------------------------------


class Process:
    """A server subprocess: started, waited for, measured through /proc, stopped."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: str, port: int,
                 health_path: str, log_path: str) -> None:
        self.name, self.port = name, port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._spawn = (argv, env, cwd, health_path)
        self._start()

    def _start(self) -> None:
        argv, env, cwd, health_path = self._spawn
        name = self.name
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc.returncode} during start-up:\n{self.tail()}")
            if http_status(self.base_url + health_path, timeout=2) == 200:
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{name} did not answer {health_path} within {STARTUP_TIMEOUT:.0f}s:\n{self.tail()}")

    def restart(self) -> None:
        """Start it again on the same port (after something outside the bench ended it)."""
        self.stop()
        self._start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _status(self, key: str) -> int | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1])  # kB
        except OSError:
            pass
        return None

    def peak_rss_mb(self) -> float | None:
        kb = self._status("VmHWM") if self.alive() else None
        return None if kb is None else kb / 1024.0

    def reset_peak(self) -> None:
        """Start the peak-RSS watermark afresh (so each scenario gets its own peak)."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            pass

    def cpu_seconds(self) -> float:
        return _pid_cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def server_env(database_url: str, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOTRUE_", "API_EXTERNAL_URL")) and k not in ("DATABASE_URL", "PORT")}
    env.update(extra or {})
    env.update(
        DATABASE_URL=database_url,
        GOTRUE_JWT_SECRET=JWT_SECRET,
        GOTRUE_MAILER_AUTOCONFIRM="true",
        GOTRUE_LOG_LEVEL="warning",
        GOTRUE_API_HOST="127.0.0.1",
        GOTRUE_SITE_URL="http://localhost:3000",
        PORT=str(port),
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    )
    return env


# --- results ---------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    backend: str
    rps: float | None = None
    p50: float | None = None
    p99: float | None = None
    errors: int | None = None
    requests: int | None = None
    rss_mb: float | None = None
    ratio: float | None = None
    ratio_to: str = ""  # "bcrypt", "bare", "1k", "bcrypt check" ...
    server_cpu: float | None = None  # share of one core
    client_cpu: float | None = None
    other_cpu: float | None = None  # cores busy with anything else during the run
    cpu_ms: float | None = None  # server CPU (all threads) per request, ms
    db_cpu: float | None = None  # PostgreSQL backends of the bench database, share of one core
    note: str = ""
    error_samples: list[str] = field(default_factory=list)

    @classmethod
    def na(cls, scenario: str, backend: str, note: str) -> "Row":
        return cls(scenario, backend, note=note)

    def ratio_text(self) -> str:
        if self.ratio is None or not self.ratio_to:
            return "n/a" if self.rps is None else "-"
        return f"{self.ratio:.2f} × {self.ratio_to}"


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def table(rows: list[Row]) -> str:
    header = ("scenario", "backend", "req/s", "p50 ms", "p99 ms", "errors", "peak RSS MB", "vs limit",
              "srv CPU", "CPU ms/req", "db CPU", "gen CPU", "other CPU")
    body = []
    for r in rows:
        body.append((
            r.scenario, r.backend, _fmt(r.rps), _fmt(r.p50, 2), _fmt(r.p99, 2),
            "n/a" if r.errors is None else str(r.errors), _fmt(r.rss_mb), r.ratio_text(),
            "n/a" if r.server_cpu is None else f"{r.server_cpu:.0%}",
            _fmt(r.cpu_ms, 2),
            "-" if r.db_cpu is None else f"{r.db_cpu:.0%}",
            "n/a" if r.client_cpu is None else f"{r.client_cpu:.0%}",
            "n/a" if r.other_cpu is None else f"{r.other_cpu:.0%}",
        ))
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    for b in body:
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(b, widths))))
    notes = [f"  {r.scenario} [{r.backend}]: {r.note}" for r in rows if r.note]
    if notes:
        lines += ["", "notes:"] + notes
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| scenario | backend | req/s | p50 ms | p99 ms | errors | peak RSS MB | vs limit | srv CPU "
             "| CPU ms/req | db CPU | gen CPU | other CPU |",
             "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        lines.append(
            f"| {r.scenario} | {r.backend} | {_fmt(r.rps)} | {_fmt(r.p50, 2)} | {_fmt(r.p99, 2)} | "
            f"{'n/a' if r.errors is None else r.errors} | {_fmt(r.rss_mb)} | {r.ratio_text()} | "
            f"{'n/a' if r.server_cpu is None else f'{r.server_cpu:.0%}'} | {_fmt(r.cpu_ms, 2)} | "
            f"{'-' if r.db_cpu is None else f'{r.db_cpu:.0%}'} | "
            f"{'n/a' if r.client_cpu is None else f'{r.client_cpu:.0%}'} | "
            f"{'n/a' if r.other_cpu is None else f'{r.other_cpu:.0%}'} |"
        )
    return "\n".join(lines)


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Options:
    backends: list[str]
    duration: float
    concurrency: int
    procs: int
    scenarios: set[str]
    big: bool
    quick: bool
    bcrypt_samples: int
    profile_dir: str | None = None
    wait_quiet: float = 0.0
    server_settings: dict[str, str] = field(default_factory=dict)  # --server-env

    @property
    def warmup(self) -> float:
        return min(1.0, self.duration * 0.1)

    @property
    def big_store(self) -> int:
        return BIG_STORE if self.big else MID_STORE


class Bench:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.rows: list[Row] = []
        self.limits: dict[str, Any] = {}
        self.seeding: list[dict[str, Any]] = []
        self.targets: list[dict[str, Any]] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="gotrue-lite-bench-"))
        self.results: dict[tuple[str, str], Row] = {}

    # -- load ---------------------------------------------------------------------------------

    def _jobs(self, base_url: str, scenario: str, *, concurrency: int | None = None, rate: float | None = None,
              params: Callable[[int], dict[str, Any]] | dict[str, Any] | None = None,
              procs: int | None = None, duration: float | None = None, group: str = "main") -> list[Job]:
        concurrency = concurrency or self.opts.concurrency
        procs = max(1, min(procs or self.opts.procs, concurrency))
        duration = duration or self.opts.duration
        jobs = []
        for i, conc in enumerate(split(concurrency, procs)):
            p = params(i) if callable(params) else dict(params or {})
            p["group"] = group
            jobs.append(Job(base_url=base_url, scenario=scenario, concurrency=conc, duration=duration,
                            warmup=self.opts.warmup, rate=(rate / procs) if rate else None, params=p,
                            seed=hash((scenario, i, time.time())) & 0xFFFFFFFF,
                            max_requests=int(duration * 20_000)))
        return jobs

    def _wait_quiet(self) -> None:
        """--wait-quiet: hold off (bounded) while other work keeps the cores busy."""
        limit = self.opts.wait_quiet
        if limit <= 0:
            return
        cores = os.cpu_count() or 1
        deadline = time.monotonic() + limit
        waited = 0.0
        while True:
            b0 = machine_busy_ticks()
            time.sleep(1.0)
            b1 = machine_busy_ticks()
            busy = cores * (b1[0] - b0[0]) / max(1, b1[1] - b0[1])
            if busy <= QUIET_CORES or time.monotonic() >= deadline:
                break
            waited += 1.0
        if waited:
            log(f"waited {waited:.0f}s for the machine to quieten (now {busy:.2f} cores busy)")

    def _drive(self, server: Process | None, jobs: list[Job] | Callable[[], list[Job]]) -> dict[str, LoadResult]:
        """Run the jobs together; the merged result of each group, server CPU and peak RSS.

        With --wait-quiet and a job factory, a run during which other work kept more than
        RETRY_OTHER_CORES busy is repeated once, and the less disturbed of the two is kept.
        """
        make = jobs if callable(jobs) else (lambda: jobs)
        out = self._drive_once(server, make())
        if callable(jobs) and self.opts.wait_quiet > 0 and (self._other_cpu or 0) > RETRY_OTHER_CORES:
            first = (out, dict(self._measured))
            log(f"other work took {self._other_cpu:.2f} cores during that run: repeating it once")
            out = self._drive_once(server, make())
            if (self._other_cpu or 0) > (first[1]["_other_cpu"] or 0):
                out = first[0]
                for key, value in first[1].items():
                    setattr(self, key, value)
        return out

    @property
    def _measured(self) -> dict[str, Any]:
        return {k: getattr(self, k, None) for k in ("_server_cpu", "_server_cpu_s", "_server_rss",
                                                     "_other_cpu", "_db_cpu", "_restarted")}

    def _drive_once(self, server: Process | None, jobs: list[Job]) -> dict[str, LoadResult]:
        self._wait_quiet()
        self._restarted = None
        if server is not None and not server.alive():
            self._restarted = server.proc.returncode
            log(f"{server.name} had exited (code {server.proc.returncode}); starting it again")
            server.restart()
        database = getattr(server, "pg_database", None)
        db0 = postgres_backend_cpu(database)
        if server is not None:
            server.reset_peak()
            cpu0 = server.cpu_seconds()
        t0 = time.monotonic()
        groups: dict[str, list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault(job.params["group"], []).append(i)
        load = Load(jobs)
        profiler = self._profile(server, jobs[0], load.start_at)
        busy0 = machine_busy_ticks()
        raw = load.wait_raw()
        busy1 = machine_busy_ticks()
        db1 = postgres_backend_cpu(database)
        if profiler is not None:
            try:
                profiler.wait(timeout=60)
            except subprocess.TimeoutExpired:
                profiler.kill()
                profiler.wait(timeout=10)
        out = {}
        for name, idx in groups.items():
            out[name] = Load.merge([raw[i] for i in idx], min(jobs[i].duration - jobs[i].warmup for i in idx))
        if server is not None:
            wall = time.monotonic() - max(t0, load.start_at)
            self._server_cpu_s = server.cpu_seconds() - cpu0
            self._server_cpu = self._server_cpu_s / wall if wall > 0 else None
            self._server_rss = server.peak_rss_mb()
        else:
            self._server_cpu = None
        # everything the cores did besides this server and these load generators (other work
        # on the machine disturbs the numbers; this makes it visible)
        wall = time.monotonic() - max(t0, load.start_at)
        cores = os.cpu_count() or 1
        self._db_cpu = None
        if database and db1 and wall > 0:
            self._db_cpu = sum(max(0.0, cpu - db0.get(pid, 0.0)) for pid, cpu in db1.items()) / wall
        if busy1[1] > busy0[1] and wall > 0:
            busy_cores = cores * (busy1[0] - busy0[0]) / (busy1[1] - busy0[1])
            ours = ((self._server_cpu or 0) + (self._db_cpu or 0)
                    + sum(r.client_cpu for r in out.values()) / wall)
            self._other_cpu = max(0.0, busy_cores - ours)
        else:
            self._other_cpu = None
        return out

    def _profile(self, server: Process | None, job: Job, start_at: float) -> subprocess.Popen | None:
        """py-spy record of the server for the measured part of this scenario (--profile DIR)."""
        if not self.opts.profile_dir or server is None:
            return None
        py_spy = shutil.which("py-spy")
        if py_spy is None:
            log("--profile: py-spy not found on PATH, not profiling")
            return None
        self._profile_count = getattr(self, "_profile_count", 0) + 1
        out = Path(self.opts.profile_dir) / f"{self._profile_count:02d}-{server.name.split()[-1].strip('()')}-{job.scenario}.txt"
        delay = start_at + job.warmup - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        seconds = max(1, int(job.duration - job.warmup))
        return subprocess.Popen([py_spy, "record", "--pid", str(server.pid), "--format", "raw", "--threads",
                                 "--nonblocking", "--rate", "200", "--duration", str(seconds), "-o", str(out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _row(self, scenario: str, backend: str, res: LoadResult, server: Process | None) -> Row:
        row = Row(scenario, backend, rps=res.rps, p50=res.percentile(50), p99=res.percentile(99),
                  errors=res.errors, requests=res.requests, error_samples=res.error_samples)
        if server is not None:
            row.rss_mb = self._server_rss
            row.server_cpu = self._server_cpu
            if res.requests:
                row.cpu_ms = self._server_cpu_s * 1000 / res.requests
        row.client_cpu = res.client_cpu / self.opts.duration
        row.other_cpu = self._other_cpu
        row.db_cpu = self._db_cpu
        if res.errors:
            row.note = f"{res.errors} errors, e.g. {res.error_samples[0] if res.error_samples else '?'}"
        if self._restarted is not None:
            row.note = (f"the server had exited (code {self._restarted}) before this scenario and was "
                        f"restarted; " + row.note)
        if server is not None and not server.alive():
            self.server_died = True
            last = (server.tail(3).splitlines() or ["(empty log)"])[-1]
            row.note = (f"SERVER EXITED with code {server.proc.returncode} during this scenario "
                        f"(log kept in {self.logs_kept()}); last log line: {last}; " + row.note)
        self.rows.append(row)
        self.results[(scenario, backend)] = row
        log(f"{scenario:<28} {backend:<8} {row.rps:9.1f} req/s  p50 {row.p50 or 0:8.2f} ms  "
            f"p99 {row.p99 or 0:8.2f} ms  errors {row.errors}  RSS {_fmt(row.rss_mb)} MB")
        return row

    # -- limits -------------------------------------------------------------------------------

    def measure_limits(self) -> None:
        self.measure_bcrypt(self.opts.bcrypt_samples)
        self.measure_bare("bare aiohttp (limit)")

    def measure_bcrypt(self, samples: int) -> None:
        """The bcrypt limit; measured again before each sign-in scenario. The CPU time of a check
        only grows with disturbance (other work, frequency), so the fastest median counts."""
        cores = os.cpu_count() or 1
        t, wall = bcrypt_check_time(samples)
        runs = self.limits.setdefault("bcrypt_runs", [])
        runs.append({"cpu_ms": t * 1000, "wall_ms": wall * 1000})
        fastest = min(runs, key=lambda r: r["cpu_ms"])
        best = fastest["cpu_ms"] / 1000
        self.limits.update(cores=cores, bcrypt_check_ms=fastest["cpu_ms"], bcrypt_check_wall_ms=fastest["wall_ms"],
                           bcrypt_limit_rps=cores / best)
        log(f"bcrypt: one cost-10 check {t * 1000:.1f} ms CPU ({wall * 1000:.1f} ms wall); "
            f"limit {cores / best:.1f} sign-ins/s on {cores} cores")

    def measure_bare(self, label: str) -> None:
        """The bare aiohttp ceiling. Measured before and after the backends: other work on the
        machine only ever lowers it, so the higher of the two is the limit."""
        if not self.scenarios_need_bare():
            return
        port = free_port()
        env = {k: v for k, v in os.environ.items()}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        bare = Process("bare aiohttp", [sys.executable, "-m", "bench.bare_server", "--port", str(port)], env,
                       str(REPO), port, "/health", str(self.tmp / "bare.log"))
        try:
            res = self._drive(bare, lambda: self._jobs(bare.base_url, "bare"))["main"]
            row = self._row(label, "-", res, bare)
            row.ratio_to = "bare"
            runs = self.limits.setdefault("bare_runs", [])
            runs.append({"rps": res.rps, "p50_ms": row.p50, "p99_ms": row.p99})
            best = max(runs, key=lambda r: r["rps"])
            self.limits.update(bare_rps=best["rps"], bare_p50_ms=best["p50_ms"], bare_p99_ms=best["p99_ms"])
        finally:
            bare.stop()

    def bare_ratios(self) -> None:
        """Every ratio against the final limits (both are re-measured during the run)."""
        bare = self.limits.get("bare_rps")
        limit, check = self.limits.get("bcrypt_limit_rps"), self.limits.get("bcrypt_check_ms")
        for row in self.rows:
            if row.ratio_to == "bare" and bare and row.rps is not None:
                row.ratio = row.rps / bare
            elif row.ratio_to == "bcrypt" and limit and row.rps is not None:
                row.ratio = row.rps / limit
            elif row.ratio_to == "bcrypt check (p99)" and check and row.p99 is not None:
                row.ratio = row.p99 / check
            if row.scenario == "POST /signup" and limit and row.rps is not None:
                row.note = "; ".join(part for part in (row.note, f"bcrypt-bound (one hash per sign-up): "
                                                       f"{row.rps / limit:.2f} × bcrypt limit") if part)

    def scenarios_need_bare(self) -> bool:
        return bool(self.opts.scenarios & {"refresh", "user", "signup"})

    # -- one backend --------------------------------------------------------------------------

    def run_backend(self, backend: str) -> None:
        workdir = self.tmp / backend
        workdir.mkdir()
        pg_db = None
        if backend == "sqlite":
            db_path = str(workdir / "bench.db")
            database_url = f"sqlite:///{db_path}"
        else:
            pg_db = f"gl_bench_{uuid.uuid4().hex[:12]}"
            asyncio.run(_pg_admin(f'CREATE DATABASE "{pg_db}"'))
            database_url = PG_BASE + pg_db
        try:
            self._run_backend(backend, workdir, database_url)
        finally:
            if pg_db:
                asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)'))

    def _start(self, backend: str, workdir: Path, database_url: str) -> Process:
        port = free_port()
        server = Process(f"gotrue-lite ({backend})", [sys.executable, "-m", "gotrue_lite", "serve"],
                         server_env(database_url, port, self.opts.server_settings),
                         str(workdir), port, "/health",
                         str(workdir / "server.log"))
        if backend == "postgres":
            server.pg_database = database_url.rsplit("/", 1)[1]
        return server

    def _seed(self, backend: str, database_url: str, have: int, want: int, password_hash: str) -> int:
        if want <= have:
            return have
        log(f"seeding {backend}: users {have:,} -> {want:,}")
        t0 = time.perf_counter()
        if backend == "sqlite":
            seed.seed_sqlite(database_url[len("sqlite:///"):], have, want, password_hash)
        else:
            asyncio.run(seed.seed_postgres(database_url, have, want, password_hash))
        took = time.perf_counter() - t0
        self.seeding.append({"backend": backend, "from": have, "to": want, "seconds": took,
                             "rows_per_s": (want - have) * 2 / took})
        log(f"seeded {want - have:,} users + identities in {took:.1f}s")
        return want

    def _run_backend(self, backend: str, workdir: Path, database_url: str) -> None:
        import bcrypt

        opts = self.opts
        env = server_env(database_url, 0, self.opts.server_settings)
        done = subprocess.run([sys.executable, "-m", "gotrue_lite", "migrate"], env=env, cwd=str(workdir),
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"gotrue-lite migrate failed ({backend}):\n{done.stdout}{done.stderr}")
        password_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()  # once, for all
        users = self._seed(backend, database_url, 0, SMALL_STORE, password_hash)
        service_key = mint_service_key()
        sc = opts.scenarios

        server = self._start(backend, workdir, database_url)
        try:
            admin = self._admin_available(server, service_key)
            if "admin" in sc:
                if admin is None:
                    self._admin_rows(server, backend, service_key, "1k")
                else:
                    self._admin_na(backend, admin)
            if "signin" in sc:
                self._signin(server, backend, users)
            if "bigsignin" in sc and ("signin half-load 1k", backend) not in self.results:
                self._signin_half(server, backend, users, "1k")
            if sc & {"user", "refresh"}:
                def session_jobs(scenario: str, key: str) -> Callable[[], list[Job]]:
                    def make() -> list[Job]:
                        sessions = asyncio.run(_sign_in_many(server.base_url, opts.concurrency))
                        return self._jobs(server.base_url, scenario, params=lambda i: {
                            key + "s": [s[key] for s in _slice(sessions, i, opts)]})
                    return make

                if "user" in sc:
                    res = self._drive(server, session_jobs("user", "access_token"))["main"]
                    self._vs_bare(self._row("GET /user", backend, res, server))
                if "refresh" in sc:
                    res = self._drive(server, session_jobs("refresh", "refresh_token"))["main"]
                    self._vs_bare(self._row("refresh_token rotation", backend, res, server))
            if "signup" in sc:
                def signup_jobs() -> list[Job]:
                    run_id = uuid.uuid4().hex[:8]
                    return self._jobs(server.base_url, "signup", params=lambda i: {
                        "email_prefix": f"su-{run_id}-{i}", "password": PASSWORD})

                res = self._drive(server, signup_jobs)["main"]
                self._vs_bare(self._row("POST /signup", backend, res, server))
        finally:
            server.stop()

        need_mid = ("admin" in sc and admin is None) or ("bigsignin" in sc and not opts.big)
        if need_mid:
            users = self._seed(backend, database_url, users, MID_STORE, password_hash)
            server = self._start(backend, workdir, database_url)
            try:
                if "admin" in sc and admin is None:
                    self._admin_rows(server, backend, service_key, "100k")
                if "bigsignin" in sc and not opts.big:
                    self._signin_half(server, backend, MID_STORE, "100k")
            finally:
                server.stop()
        if "bigsignin" in sc and opts.big:
            users = self._seed(backend, database_url, users, BIG_STORE, password_hash)
            server = self._start(backend, workdir, database_url)
            try:
                self._signin_half(server, backend, BIG_STORE, "1M")
            finally:
                server.stop()

    # -- scenarios ----------------------------------------------------------------------------

    def _vs_bare(self, row: Row) -> Row:
        row.ratio_to = "bare"  # the ratio itself once the bare limit is final (bare_ratios)
        return row

    def _signin_params(self, users: int) -> dict[str, Any]:
        return {"users": users, "email_format": seed.EMAIL_FORMAT, "password": PASSWORD}

    def _signin(self, server: Process, backend: str, users: int) -> None:
        """Saturating sign-in, with a /health probe alongside (event-loop blocking check)."""
        self.measure_bcrypt(max(10, self.opts.bcrypt_samples // 2))

        def jobs() -> list[Job]:
            return (self._jobs(server.base_url, "signin", params=self._signin_params(users))
                    + self._jobs(server.base_url, "health", concurrency=4, rate=HEALTH_PROBE_RATE, procs=1,
                                 group="health"))

        res = self._drive(server, jobs)
        row = self._row("password sign-in", backend, res["main"], server)
        row.ratio, row.ratio_to = res["main"].rps / self.limits["bcrypt_limit_rps"], "bcrypt"
        health = self._row("/health during sign-in", backend, res["health"], server)
        health.ratio, health.ratio_to = (health.p99 or 0) / 10.0, "10 ms (p99)"
        health.cpu_ms = None  # the server's CPU went to the sign-ins
        health.note = f"paced {HEALTH_PROBE_RATE:.0f} req/s from its own process while sign-in saturates"
        self._signin_half(server, backend, users, "1k")

    def _half_rate(self, backend: str) -> float:
        """Half of this backend's saturated sign-in rate (else half the bcrypt limit), fixed once."""
        key = f"half_rate_{backend}"
        if key not in self.limits:
            sat = self.results.get(("password sign-in", backend))
            base = sat.rps if sat is not None and sat.rps else self.limits["bcrypt_limit_rps"]
            self.limits[key] = base / 2
        return self.limits[key]

    def _signin_half(self, server: Process, backend: str, users: int, label: str) -> None:
        """Sign-in paced at half the saturated rate: latency without queueing."""
        rate = self._half_rate(backend)
        res = self._drive(server, lambda: self._jobs(server.base_url, "signin", rate=rate,
                                             params=self._signin_params(users)))["main"]
        row = self._row(f"signin half-load {label}", backend, res, server)
        row.note = f"paced at {rate:.1f} req/s, {users:,} users in the store"
        if label == "1k":
            row.ratio, row.ratio_to = (row.p99 or 0) / self.limits["bcrypt_check_ms"], "bcrypt check (p99)"
        else:
            ref = self.results.get(("signin half-load 1k", backend))
            if ref and ref.p50 and row.p50:
                row.ratio, row.ratio_to = row.p50 / ref.p50, "1k (p50)"

    def _admin_available(self, server: Process, key: str) -> str | None:
        """None when GET /admin/users answers 200 to the service key, else why not."""
        status = http_status(f"{server.base_url}/admin/users?page=1&per_page=50",
                             {"Authorization": f"Bearer {key}", "apikey": key})
        if status == 200:
            return None
        if status in (404, 405):
            return "GET /admin/users not implemented yet"
        return f"GET /admin/users answered {status}"

    def _admin_na(self, backend: str, why: str) -> None:
        for label in ("1k", "100k"):
            row = Row.na(f"admin list {label}", backend, why)
            self.rows.append(row)
            self.results[(row.scenario, backend)] = row

    def _admin_rows(self, server: Process, backend: str, key: str, label: str) -> None:
        params = {"service_key": key, "pages": ADMIN_PAGES, "per_page": 50}
        res = self._drive(server, lambda: self._jobs(server.base_url, "admin", params=params))["main"]
        row = self._row(f"admin list {label}", backend, res, server)
        row.note = f"page=1..{ADMIN_PAGES}, per_page=50"
        ref = self.results.get(("admin list 1k", backend))
        if label != "1k" and ref and ref.p50 and row.p50:
            row.ratio, row.ratio_to = row.p50 / ref.p50, "1k (p50)"
            pages = MID_STORE // 50
            deep_params = {"service_key": key, "pages": pages, "per_page": 50}
            res = self._drive(server, lambda: self._jobs(server.base_url, "admin", params=deep_params))["main"]
            deep = self._row(f"admin list {label} any page", backend, res, server)
            deep.note = f"page=1..{pages} uniformly (deep OFFSETs), informational"
            if deep.p50:
                deep.ratio, deep.ratio_to = deep.p50 / ref.p50, "1k (p50)"

    # -- targets --------------------------------------------------------------------------------

    def evaluate(self) -> None:
        L = self.limits
        for backend in self.opts.backends:
            def get(name: str) -> Row | None:
                row = self.results.get((name, backend))
                return row if row is not None and row.rps is not None else None

            def target(name: str, ok: bool | None, detail: str) -> None:
                self.targets.append({"target": name, "backend": backend,
                                     "met": ok, "detail": detail})

            r = get("password sign-in")
            if r:
                share = r.rps / L["bcrypt_limit_rps"]
                target("sign-in ≥ 85% of bcrypt limit", share >= 0.85 and r.errors == 0,
                       f"{r.rps:.1f}/s = {share:.0%} of {L['bcrypt_limit_rps']:.1f}/s")
            r = get("signin half-load 1k")
            if r and r.p99 is not None:
                bound = 3 * L["bcrypt_check_ms"]
                target("sign-in p99 < 3× bcrypt check at half load", r.p99 < bound and r.errors == 0,
                       f"p99 {r.p99:.1f} ms vs {bound:.1f} ms")
            r = get("/health during sign-in")
            if r and r.p99 is not None:
                target("/health p99 < 10 ms under sign-in saturation", r.p99 < 10 and r.errors == 0,
                       f"p99 {r.p99:.2f} ms")
            bare = L.get("bare_rps")
            for name, need, label in (("GET /user", 0.5, "GET /user ≥ 50% of bare aiohttp"),
                                      ("refresh_token rotation", 0.3, "refresh ≥ 30% of bare aiohttp")):
                r = get(name)
                if r and bare:
                    target(label, r.rps / bare >= need and r.errors == 0,
                           f"{r.rps:.0f}/s = {r.rps / bare:.0%} of {bare:.0f}/s")
            big = "1M" if self.opts.big else "100k"
            r, ref = get(f"signin half-load {big}"), get("signin half-load 1k")
            if r and ref and r.p50 and ref.p50:
                target(f"{big}-user sign-in latency within 20% of 1k", r.p50 <= ref.p50 * 1.2 and r.errors == 0,
                       f"p50 {r.p50:.1f} vs {ref.p50:.1f} ms ({r.p50 / ref.p50 - 1:+.0%}); "
                       f"p99 {r.p99:.1f} vs {ref.p99:.1f} ms")
            r, ref = get("admin list 100k"), get("admin list 1k")
            if r and ref and r.p50 and ref.p50:
                target("admin page at 100k within 20% of 1k", r.p50 <= ref.p50 * 1.2 and r.errors == 0,
                       f"p50 {r.p50:.2f} vs {ref.p50:.2f} ms ({r.p50 / ref.p50 - 1:+.0%}); "
                       f"{r.rps:.0f} vs {ref.rps:.0f} req/s")
            elif ("admin list 1k", backend) in self.results:
                target("admin page at 100k within 20% of 1k", None,
                       self.results[("admin list 1k", backend)].note or "n/a")
            peaks = [r.rss_mb for (s, b), r in self.results.items() if b == backend and r.rss_mb]
            if peaks:
                target("peak RSS < 150 MB", max(peaks) < 150, f"max {max(peaks):.1f} MB")

    def targets_text(self, markdown: bool = False) -> str:
        if markdown:
            lines = ["| target | backend | result | measured |", "|---|---|---|---|"]
        else:
            lines = []
        for t in self.targets:
            verdict = "n/a" if t["met"] is None else ("met" if t["met"] else "NOT MET")
            if markdown:
                lines.append(f"| {t['target']} | {t['backend']} | {verdict} | {t['detail']} |")
            else:
                lines.append(f"  [{verdict:^7}] {t['target']} ({t['backend']}): {t['detail']}")
        return "\n".join(lines)

    def environment(self) -> dict[str, Any]:
        import aiohttp

        env = {
            "nproc": os.cpu_count(),
            "cpu": cpu_model(),
            "python": platform.python_version(),
            "aiohttp": aiohttp.__version__,
            "sqlite": sqlite3.sqlite_version,
            "kernel": platform.release(),
            "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "duration_s": self.opts.duration,
            "concurrency": self.opts.concurrency,
            "loadgen_processes": self.opts.procs,
        }
        if "postgres" in self.opts.backends:
            try:
                env["postgres"] = asyncio.run(_pg_admin("SHOW server_version", fetch=True))
            except Exception:  # noqa: BLE001
                pass
        return env

    def logs_kept(self) -> str:
        return str(self.tmp.with_name(self.tmp.name + "-logs"))

    def cleanup(self) -> None:
        if getattr(self, "server_died", False):
            keep = Path(self.logs_kept())
            keep.mkdir(exist_ok=True)
            for log_file in self.tmp.rglob("*.log"):
                shutil.copy(log_file, keep / f"{log_file.parent.name}-{log_file.name}")
        shutil.rmtree(self.tmp, ignore_errors=True)


def _slice(sessions: list[dict[str, Any]], i: int, opts: Options) -> list[dict[str, Any]]:
    procs = max(1, min(opts.procs, opts.concurrency))
    sizes = split(opts.concurrency, procs)
    start = sum(sizes[:i])
    return sessions[start:start + sizes[i]]


async def _sign_in_many(base_url: str, n: int) -> list[dict[str, Any]]:
    """n sessions of n distinct seeded users, through the API (before the clock starts)."""
    import aiohttp

    sem = asyncio.Semaphore(8)
    async with aiohttp.ClientSession() as session:
        async def one(i: int) -> dict[str, Any]:
            async with sem:
                async with session.post(f"{base_url}/token?grant_type=password",
                                        json={"email": seed.EMAIL_FORMAT.format(i), "password": PASSWORD}) as r:
                    body = await r.json()
                    if r.status != 200:
                        raise RuntimeError(f"set-up sign-in failed: {r.status} {body}")
                    return body
        return list(await asyncio.gather(*(one(i % SMALL_STORE) for i in range(n))))


async def _pg_admin(statement: str, fetch: bool = False) -> Any:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        if fetch:
            return await conn.fetchval(statement)
        await conn.execute(statement)
    finally:
        await conn.close()


def _postgres_problem() -> str | None:
    try:
        asyncio.run(_pg_admin("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL not reachable at 127.0.0.1:5432 as postgres: {exc!r}"
    return None


# --- command line ------------------------------------------------------------------------------


def render_markdown(env: dict[str, Any], L: dict[str, Any], rows: list[Row], targets: list[dict[str, Any]],
                    seeding: list[dict[str, Any]], duration: float, concurrency: int, procs: int,
                    elapsed: float) -> str:
    """The run as Markdown: machine facts, limits, the table, the targets, the seeding times."""
    facts = (f"- {env['nproc']} cores, {env['cpu']}; Python {env['python']}, aiohttp {env['aiohttp']}, "
             f"SQLite {env['sqlite']}" + (f", PostgreSQL {env['postgres']}" if env.get("postgres") else "")
             + f"\n- {duration:g} s per scenario, concurrency {concurrency}, "
             f"{procs} load-generator process(es); run took {elapsed:.0f} s ({env['date']})\n"
             f"- bcrypt cost-10 check: {L['bcrypt_check_ms']:.1f} ms CPU "
             f"({L['bcrypt_check_wall_ms']:.1f} ms wall) → bcrypt limit {L['bcrypt_limit_rps']:.1f} sign-ins/s"
             + (f"; bare aiohttp: {L['bare_rps']:,.0f} req/s" if "bare_rps" in L else "")
             + (f"\n- server settings: {env['server_settings']}" if env.get("server_settings") else ""))
    verdicts = ["| target | backend | result | measured |", "|---|---|---|---|"]
    for t in targets:
        verdict = "n/a" if t["met"] is None else ("met" if t["met"] else "NOT MET")
        verdicts.append(f"| {t['target']} | {t['backend']} | {verdict} | {t['detail']} |")
    seeded = "\n".join(f"- {s['backend']}: {s['from']:,} → {s['to']:,} users (+ identities) in "
                        f"{s['seconds']:.1f} s" for s in seeding)
    return f"{facts}\n\n{markdown_table(rows)}\n\n" + "\n".join(verdicts) + f"\n\nSeeding:\n\n{seeded}\n"


def parse_args(argv: list[str] | None) -> tuple[Options, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="python -m bench", description="gotrue-lite benchmark (docs/performance.md)")
    p.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds per scenario (default 10, 3 with --quick)")
    p.add_argument("--concurrency", type=int, default=32, help="connections in flight (default 32)")
    p.add_argument("--procs", type=int, default=None,
                   help=f"load-generator processes (default {default_processes()}: one per two cores)")
    p.add_argument("--quick", action="store_true",
                   help="short run: 3 s per scenario, big store of 100k instead of 1M users")
    big = p.add_mutually_exclusive_group()
    big.add_argument("--big", dest="big", action="store_true", default=None,
                     help="seed 1,000,000 users for the sign-in scale check (default unless --quick)")
    big.add_argument("--no-big", dest="big", action="store_false")
    p.add_argument("--scenarios", default=",".join(ALL_SCENARIOS),
                   help=f"comma-separated subset of {','.join(ALL_SCENARIOS)}")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before each scenario wait up to SECONDS for other work on the machine to stop")
    p.add_argument("--json", metavar="PATH", help="also write every number as JSON")
    p.add_argument("--profile", metavar="DIR",
                   help="py-spy record the server during each scenario into DIR (collapsed stacks; "
                        "summarise with python -m bench.profile_report DIR/*.txt)")
    p.add_argument("--markdown", metavar="PATH", help="also write the tables as Markdown")
    p.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                   help="a setting for the server under test, e.g. GOTRUE_LITE_USER_CACHE_TTL=0 (repeatable)")
    args = p.parse_args(argv)
    server_settings = {}
    for item in args.server_env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            p.error(f"--server-env expects NAME=VALUE, not {item!r}")
        server_settings[name] = value
    scenarios = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    unknown = scenarios - set(ALL_SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    duration = args.duration if args.duration is not None else (3.0 if args.quick else 10.0)
    if duration <= 0 or duration > 600:
        p.error("--duration must be in (0, 600]")
    if not 1 <= args.concurrency <= 1024:
        p.error("--concurrency must be in [1, 1024]")
    opts = Options(
        backends=backends, duration=duration, concurrency=args.concurrency,
        procs=max(1, args.procs or default_processes()), scenarios=scenarios,
        big=(not args.quick) if args.big is None else args.big, quick=args.quick,
        bcrypt_samples=10 if args.quick else 30, profile_dir=args.profile,
        wait_quiet=max(0.0, args.wait_quiet), server_settings=server_settings,
    )
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    return opts, args


def main(argv: list[str] | None = None) -> int:
    opts, args = parse_args(argv)
    bench = Bench(opts)
    started = time.monotonic()
    skipped: list[str] = []
    try:
        if "postgres" in opts.backends:
            problem = _postgres_problem()
            if problem:
                if len(opts.backends) == 1:
                    print(f"error: {problem}", file=sys.stderr)
                    return 2
                log(f"skipping PostgreSQL: {problem}")
                skipped.append(problem)
                opts.backends.remove("postgres")
        env = bench.environment()
        env["server_settings"] = " ".join(f"{k}={v}" for k, v in opts.server_settings.items())
        log(f"{env['nproc']} cores ({env['cpu']}), Python {env['python']}, "
            f"{opts.duration:g}s per scenario, concurrency {opts.concurrency}, {opts.procs} load process(es)")
        bench.measure_limits()
        for backend in opts.backends:
            bench.run_backend(backend)
        bench.measure_bare("bare aiohttp (again)")
        bench.bare_ratios()
        bench.evaluate()
    finally:
        bench.cleanup()
    elapsed = time.monotonic() - started

    L = bench.limits
    print()
    print(f"gotrue-lite benchmark — {env['nproc']} cores, {env['cpu']}, Python {env['python']}, "
          f"{opts.duration:g}s/scenario, concurrency {opts.concurrency}")
    print(f"limits: bcrypt check {L['bcrypt_check_ms']:.1f} ms -> {L['bcrypt_limit_rps']:.1f} sign-ins/s; "
          + (f"bare aiohttp {L['bare_rps']:,.0f} req/s" if "bare_rps" in L else "bare aiohttp not measured"))
    if env.get("server_settings"):
        print(f"server settings: {env['server_settings']}")
    print()
    print(table(bench.rows))
    if bench.seeding:
        print()
        print("seeding: " + "; ".join(f"{s['backend']} {s['from']:,}->{s['to']:,} users in {s['seconds']:.1f}s"
                                      for s in bench.seeding))
    print()
    print("targets:")
    print(bench.targets_text())
    print()
    print(f"total time {elapsed:.0f}s" + (f"; skipped: {'; '.join(skipped)}" if skipped else ""))

    if args.json:
        Path(args.json).write_text(json.dumps({
            "environment": env, "limits": L, "rows": [asdict(r) for r in bench.rows],
            "seeding": bench.seeding, "targets": bench.targets, "elapsed_s": elapsed,
            "skipped": skipped,
        }, indent=2, default=str))
    if args.markdown:
        Path(args.markdown).write_text(render_markdown(env, L, bench.rows, bench.targets, bench.seeding, opts.duration,
                                                       opts.concurrency, opts.procs, elapsed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
