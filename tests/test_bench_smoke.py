"""The benchmark command works: `python -m bench` for ~2 s on SQLite with one scenario.

This proves the machinery (server subprocess, seeding, load-generator processes, the table and
the JSON report) and that the scenario ran without a single error. It asserts no performance
number: those belong in docs/performance.md, from a full run on a quiet machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_bench_runs_one_scenario_on_sqlite(tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--backend", "sqlite", "--scenarios", "user", "--duration", "2",
         "--concurrency", "4", "--no-big", "--json", str(report),
         "--server-env", "GOTRUE_LITE_USER_CACHE_TTL=0"],
        cwd=REPO, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"

    out = done.stdout
    for column in ("scenario", "backend", "req/s", "p50 ms", "p99 ms", "errors", "peak RSS MB", "vs limit"):
        assert column in out, out
    assert "GET /user" in out and "bare aiohttp (limit)" in out, out
    assert "targets:" in out, out
    assert "server settings: GOTRUE_LITE_USER_CACHE_TTL=0" in out, out

    data = json.loads(report.read_text())
    rows = {(r["scenario"], r["backend"]): r for r in data["rows"]}
    user = rows[("GET /user", "sqlite")]
    assert user["errors"] == 0, user["error_samples"]
    assert user["requests"] > 0 and user["rps"] > 0
    assert user["p50"] is not None and user["p99"] is not None
    assert user["rss_mb"] and user["rss_mb"] > 0
    assert rows[("bare aiohttp (limit)", "-")]["errors"] == 0
    assert data["limits"]["bcrypt_limit_rps"] > 0
