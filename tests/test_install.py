"""`pip install .` (not editable) into a fresh venv gives a working `gotrue-lite` with its data files."""

from __future__ import annotations

import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
# Left out of the copy that gets built: VCS data, earlier build output (setuptools would ship
# stale files from an old build/lib), local databases and secrets, caches.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".venv", "node_modules",
    "*.db", "*.db-*", "*.secret", ".env",
)


def _env(**extra: str) -> dict[str, str]:
    # No PYTHONPATH: the package must come from the venv, not from the checkout.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def _run(cmd: list[str], cwd: Path, timeout: float = 60, **extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=_env(**extra), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def _has_build_backend(python: Path, cwd: Path) -> bool:
    # pyproject asks for setuptools>=68 and wheel; a build without isolation needs both here.
    probe = (
        "import setuptools, wheel; "
        "print(int(setuptools.__version__.split('.')[0]) >= 68)"
    )
    result = subprocess.run([str(python), "-c", probe], cwd=cwd, env=_env(), capture_output=True, text=True)
    return result.returncode == 0 and result.stdout.strip() == "True"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def _see_the_running_venv(python: Path, cwd: Path) -> None:
    """When the tests themselves run in a virtual environment (the README's .venv), the new
    one's --system-site-packages reach the base interpreter's packages, not the dependencies
    installed in .venv: list .venv's site-packages too, after the new venv's own. A plain path
    in a .pth file: .venv's own .pth files (its editable gotrue-lite) are not processed."""
    if sys.prefix == sys.base_prefix:
        return
    outer = [path for path in site.getsitepackages() if Path(path).is_dir()]
    inner = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=cwd)
    (Path(inner.stdout.strip()) / "running-venv.pth").write_text("\n".join(outer) + "\n")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], cwd=root)
    _see_the_running_venv(venv / "bin" / "python", root)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    if not _has_build_backend(venv / "bin" / "python", root):
        # This interpreter lacks the declared build requirements: put them into the venv
        # only (from the package index or pip's cache) rather than into the system.
        _run([*pip, "install", "--quiet", "setuptools>=68", "wheel"], cwd=root, timeout=300)
    _run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--no-build-isolation", "--no-deps", str(source)],
        cwd=root,
        timeout=300,
    )
    return venv


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    path = tmp_path / "elsewhere"
    path.mkdir()
    return path


def _installed_package(venv: Path, cwd: Path) -> Path:
    result = _run([str(venv / "bin" / "python"), "-c", "import gotrue_lite; print(gotrue_lite.__file__)"], cwd=cwd)
    return Path(result.stdout.strip()).parent


def test_the_venv_imports_its_own_copy(venv: Path, empty_dir: Path) -> None:
    package = _installed_package(venv, empty_dir)
    assert package.is_relative_to(venv.resolve()) or package.is_relative_to(venv), package
    assert "site-packages" in package.parts
    assert not list(package.parent.glob("__editable__*gotrue_lite*")), "an editable install, not a real one"


def test_installed_package_carries_schema_and_templates(venv: Path, empty_dir: Path) -> None:
    package = _installed_package(venv, empty_dir)
    for dialect in ("sqlite", "postgres"):
        shipped = {p.name for p in (package / "schema" / dialect).glob("*.sql")}
        in_repo = {p.name for p in (REPO / "schema" / dialect).glob("*.sql")}
        assert shipped, f"no schema/{dialect}/*.sql in the installed package"
        assert shipped == in_repo, f"schema/{dialect}: installed {sorted(shipped)}, repository {sorted(in_repo)}"
    shipped_templates = _files(package / "templates")
    assert shipped_templates, "no templates in the installed package"
    assert shipped_templates == _files(REPO / "templates")


def test_installed_command_runs_from_an_empty_directory(venv: Path, empty_dir: Path) -> None:
    command = venv / "bin" / "gotrue-lite"
    assert command.is_file()
    version = _run([str(venv / "bin" / "python"), "-c", "import gotrue_lite; print(gotrue_lite.__version__)"],
                   cwd=empty_dir).stdout.strip()
    assert _run([str(command), "--version"], cwd=empty_dir).stdout.strip() == f"gotrue-lite {version}"

    migrated = _run([str(command), "migrate"], cwd=empty_dir)
    assert "applied" in migrated.stdout
    assert (empty_dir / "gotrue_lite.db").is_file()
    assert _run([str(command), "migrate"], cwd=empty_dir).stdout.strip() == "no pending migrations"

    port = _free_port()
    log = empty_dir.parent / "serve.err"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [str(command), "serve"], cwd=empty_dir, env=_env(PORT=str(port), GOTRUE_MAILER_AUTOCONFIRM="false"),
            stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        deadline = time.monotonic() + 30
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert health is not None, f"serve did not answer (exit {proc.poll()}):\n{log.read_text()}"
        assert health.status_code == 200
        assert health.json()["name"] == "GoTrue"
        # With autoconfirm off (on by default with the dev mailbox), a sign-up renders its
        # confirmation mail from the installed templates.
        signup = httpx.post(
            f"http://127.0.0.1:{port}/signup",
            json={"email": "installed@example.com", "password": "correct-horse-battery"},
            timeout=30,
        )
        assert signup.status_code == 200, signup.text
        assert "access_token" not in signup.json() and signup.json()["confirmation_sent_at"], signup.text
        mail = httpx.get(f"http://127.0.0.1:{port}/_dev/mail", timeout=30).json()["messages"]
        assert [m["subject"] for m in mail] == ["Confirm your email address"], mail
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text()
