"""Moving many users: `python -m bench.transfer [--users 1000000]`.

Seeds N users into a SQLite database (bench/seed.py), then runs the real commands one after
the other, each as its own process: export from SQLite, import into a fresh PostgreSQL
database, export from PostgreSQL, import into a fresh SQLite file. Prints, for each, the time,
users per second and the process's peak RSS (from wait4), and checks that every user arrived.
Peak RSS that stays flat as N grows is what "streaming" means here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import bcrypt

REPO = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-0123456789abcdefghijklmnopqrstuvwxyz"
PG = "postgresql://postgres@127.0.0.1:5432"


@dataclass
class Step:
    name: str
    seconds: float
    peak_rss_mb: float
    output: str


def run_measured(args: list[str], database_url: str, cwd: Path, timeout: float = 3600) -> Step:
    """Runs `gotrue-lite ARGS` on DATABASE_URL; its wall time and its own peak RSS."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "PYTHONPATH": str(REPO), "LANG": "C.UTF-8", "DATABASE_URL": database_url,
           "GOTRUE_JWT_SECRET": SECRET, "GOTRUE_LOG_LEVEL": "warning"}
    with tempfile.TemporaryFile() as out:
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "gotrue_lite", *args], cwd=cwd, env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = started + timeout
        peak_kib = 0
        while True:
            # VmHWM, not wait4's ru_maxrss: the latter also counts the parent's image that the
            # child had between fork and exec. The high-water mark only grows, so polling it
            # misses at most the last few milliseconds' growth.
            peak_kib = max(peak_kib, _high_water_kib(proc.pid))
            pid, status, _usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, _usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RuntimeError(f"gotrue-lite {' '.join(args)} failed ({proc.returncode}):\n{text}")
    return Step(" ".join(args[:1]), seconds, peak_kib / 1024, text.strip())


def _high_water_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):  # gone, or a zombie without a memory map
        pass
    return 0


def seed_sqlite_database(path: Path, users: int, cwd: Path) -> None:
    from bench.seed import seed_sqlite

    run_measured(["migrate"], f"sqlite:///{path}", cwd)
    seed_sqlite(str(path), 0, users, bcrypt.hashpw(b"bench-password", bcrypt.gensalt(4)).decode())


async def _pg(statement: str, dsn: str = f"{PG}/postgres", fetch: bool = False):
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(statement) if fetch else await conn.execute(statement)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transfer", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the files (in the printed folder)")
    opts = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="gotrue-lite-transfer-"))
    name = f"gl_transfer_{uuid.uuid4().hex[:12]}"
    pg_url = f"{PG}/{name}"
    steps: list[tuple[Step, Path | None]] = []
    try:
        t0 = time.monotonic()
        seed_sqlite_database(work / "source.db", opts.users, work)
        print(f"seeded {opts.users} users into SQLite in {time.monotonic() - t0:.1f} s", flush=True)
        asyncio.run(_pg(f'CREATE DATABASE "{name}"'))

        plan = [
            (["export", "--out", str(work / "from-sqlite.jsonl")], f"sqlite:///{work / 'source.db'}",
             "export SQLite", work / "from-sqlite.jsonl"),
            (["import", str(work / "from-sqlite.jsonl")], pg_url, "import → PostgreSQL", None),
            (["export", "--out", str(work / "from-postgres.jsonl")], pg_url, "export PostgreSQL",
             work / "from-postgres.jsonl"),
            (["import", str(work / "from-postgres.jsonl")], f"sqlite:///{work / 'target.db'}", "import → SQLite", None),
        ]
        for args, url, label, made in plan:
            step = run_measured(args, url, work)
            step.name = label
            steps.append((step, made))
            print(f"{label:20} {step.seconds:8.1f} s {opts.users / step.seconds:10.0f} users/s "
                  f"{step.peak_rss_mb:8.1f} MB peak RSS   {step.output.splitlines()[-1]}", flush=True)

        in_pg = asyncio.run(_pg("SELECT count(*) FROM auth.users", pg_url, fetch=True))
        import sqlite3

        with sqlite3.connect(work / "target.db") as conn:
            in_sqlite = conn.execute("SELECT count(*) FROM users").fetchone()[0]
        print(f"\nusers: {opts.users} seeded, {in_pg} in PostgreSQL, {in_sqlite} in the SQLite target")
        print("\n| step | seconds | users/s | peak RSS MB | file MB |\n|---|---|---|---|---|")
        for step, made in steps:
            size = f"{made.stat().st_size / 2**20:.0f}" if made else ""
            print(f"| {step.name} | {step.seconds:.1f} | {opts.users / step.seconds:.0f} | {step.peak_rss_mb:.1f} | {size} |")
        return 0 if in_pg == in_sqlite == opts.users else 1
    finally:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if not opts.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"files kept in {work}")


if __name__ == "__main__":
    raise SystemExit(main())
