"""README.md as a newcomer follows it: its Python and supabase-js examples run unchanged against a
fresh `gotrue-lite serve` on the default settings, and CI runs exactly its test command."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from helpers import process_env
from test_clients_js import node  # noqa: F401 - the pinned JS clients, installed once

REPO = Path(__file__).resolve().parents[1]
CLIENTS = REPO / "tests" / "clients"
README = (REPO / "README.md").read_text(encoding="utf-8")
DEFAULT_URL = "http://localhost:9999"  # what the examples say; the server's default address


def code_blocks(language: str) -> list[str]:
    """The fenced code blocks of README.md in `language`, indentation (list items) removed."""
    blocks = []
    for match in re.finditer(r"^([ \t]*)```(\w*)\n(.*?)^\1```", README, re.M | re.S):
        indent, lang, body = match.groups()
        if lang == language:
            blocks.append("".join(line[len(indent):] for line in body.splitlines(keepends=True)))
    return blocks


def the_block(language: str, marker: str) -> str:
    (block,) = [block for block in code_blocks(language) if marker in block]
    return block


# Inside the private network namespace: serve with no settings at all, run the examples, stop.
DRIVER = r'''
import json, os, signal, subprocess, sys, time, urllib.request
spec = json.loads(sys.argv[1])
env = spec["env"]
out = {"steps": []}
with open(spec["log"], "w") as log:
    server = subprocess.Popen([sys.executable, "-m", "gotrue_lite", "serve"], cwd=spec["workdir"], env=env,
                              stdout=log, stderr=log)
try:
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{spec['port']}/health", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(json.dumps({"error": "serve did not start"}))
            time.sleep(0.1)
    for step in spec["steps"]:
        step_env = dict(env)
        for name, index in step.get("env_from", {}).items():
            step_env[name] = out["steps"][index]["stdout"].strip()
        done = subprocess.run(step["argv"], cwd=step["cwd"], env=step_env, capture_output=True, text=True,
                              timeout=120)
        out["steps"].append({"argv": step["argv"], "returncode": done.returncode, "stdout": done.stdout,
                             "stderr": done.stderr})
        if done.returncode:
            break
finally:
    server.send_signal(signal.SIGTERM)
    out["server_exit"] = server.wait(30)
print(json.dumps(out))
'''


def _namespace_prefix() -> list[str] | None:
    """A private network namespace (own loopback, so the README's own address :9999 is free)."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if not unshare or not ip:
        return None
    prefix = [unshare, "-rn", "sh", "-c", f'"{ip}" link set lo up && exec "$@"', "sh"]
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return prefix if probe.returncode == 0 else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_as_written(tmp_path: Path, folder: str, steps: list[dict], files: dict[str, str]) -> dict:
    """Serve in a new folder (empty, or holding the sample gotrue_lite.toml as the repository
    does) with no settings, run `steps` (argv with {key} placeholders for `files`), stop."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    if folder == "sample-config":
        shutil.copy(REPO / "gotrue_lite.toml", workdir / "gotrue_lite.toml")
    prefix = _namespace_prefix()
    port = 9999
    env = process_env()
    if prefix is None:
        # No namespaces here: the same code on another port (the only change), as a shared
        # machine's :9999 may be anyone's.
        port = _free_port()
        env["PORT"] = str(port)
    written = {}
    for key, (directory, name, text) in files.items():
        path = Path(directory) / f".readme-{uuid.uuid4().hex[:8]}-{name}"
        path.write_text(text.replace(DEFAULT_URL, f"http://localhost:{port}"), encoding="utf-8")
        written[key] = str(path)
    try:
        spec = {"env": env, "workdir": str(workdir), "port": port, "log": str(tmp_path / "serve.log"),
                "steps": [{**step, "argv": [part.format(**written) for part in step["argv"]]} for step in steps]}
        done = subprocess.run([*(prefix or []), sys.executable, "-c", DRIVER, json.dumps(spec)],
                              capture_output=True, text=True, timeout=300)
    finally:
        for path in written.values():
            Path(path).unlink(missing_ok=True)
    log = (tmp_path / "serve.log").read_text()
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{log}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for step in result["steps"]:
        assert step["returncode"] == 0, f"{step['argv']} failed:\n{step['stdout']}\n{step['stderr']}\nserve:\n{log}"
    assert result["server_exit"] == 0 and "Traceback" not in log, log
    result["log"] = log
    return result


@pytest.mark.parametrize("folder", ["empty-folder", "sample-config"])
def test_the_python_example_runs_as_written(tmp_path: Path, folder: str) -> None:
    example = the_block("python", "SyncGoTrueClient")
    assert DEFAULT_URL in example
    result = run_as_written(tmp_path, folder, [{"argv": [sys.executable, "{python}"], "cwd": str(tmp_path)}],
                            {"python": (tmp_path, "example.py", example)})
    printed = result["steps"][0]["stdout"]
    assert "'name': 'Ada'" in printed, printed
    assert "e-mail confirmation is off" in result["log"], result["log"]


def test_the_supabase_js_example_runs_as_written_on_this_node(tmp_path: Path, node: str) -> None:
    """With the pinned @supabase/supabase-js, on the Node here (20 in CI: the `ws` transport)."""
    python_example = the_block("python", "SyncGoTrueClient")  # it signs Ada up
    js_example = the_block("js", "createClient")
    steps = [
        {"argv": [sys.executable, "{python}"], "cwd": str(tmp_path)},
        {"argv": [sys.executable, "-m", "gotrue_lite", "token", "--role", "anon"], "cwd": str(tmp_path / "work")},
        {"argv": [node, "{js}"], "cwd": str(CLIENTS), "env_from": {"ANON_KEY": 1}},
    ]
    result = run_as_written(tmp_path, "empty-folder", steps, {
        "python": (tmp_path, "example.py", python_example),
        "js": (CLIENTS, "example.mjs", js_example),  # beside node_modules, where its imports resolve
    })
    printed = result["steps"][2]["stdout"]
    assert "name: 'Ada'" in printed, printed
    assert "/auth/v1/token" in result["log"], "supabase-js calls <url>/auth/v1/…"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    (install_and_serve,) = [b for b in code_blocks("sh") if "gotrue-lite serve" in b and "venv" in b]
    (install_and_test,) = [b for b in code_blocks("sh") if "pytest" in b and "pip install" in b]
    for command in (install_and_serve, install_and_test):
        assert command.count("\n") == 1, f"one line: {command!r}"
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install "), command
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    commands = [line for line in ci if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == install_and_test.strip(), "the last thing .ci/run does is the README's command"
    assert sum("pytest" in line for line in commands) == 1


def test_docs_point_only_at_files_a_clone_has() -> None:
    """Every repository path docs/*.md names (in backticks or as a link) is in the repository."""
    missing = []
    for page in sorted((REPO / "docs").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        named = re.findall(r"`([\w./-]+/[\w.-]+\.\w+)`", text) + re.findall(r"\]\(([\w./-]+\.\w+)\)", text)
        for path in named:
            if "://" in path or path.startswith("/"):
                continue  # a URL path on the server, not a file
            if not (REPO / path).exists() and not (page.parent / path).exists():
                missing.append(f"{page.name}: {path}")
    assert not missing, missing
