"""`gotrue-lite backup FILE` (issue 19): a consistent copy of a live SQLite database through SQLite's
online backup API, taken while the server is under writes; the copy opens, and a server started
on it signs its users in. On PostgreSQL the command points at pg_dump."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading

import httpx

from conftest import BASE_ENV
from helpers import PASSWORD, new_email, process_env, sign_in, signup


def run_backup(server, target, **env: str) -> subprocess.CompletedProcess:
    full = process_env(**{**BASE_ENV, "DATABASE_URL": server.db_url, **env}) if server else process_env(**env)
    # run from the target's folder: no gotrue_lite.toml there to read
    return subprocess.run([sys.executable, "-m", "gotrue_lite", "backup", str(target)], env=full,
                          cwd=os.path.dirname(target), capture_output=True, text=True, timeout=120)


def test_a_backup_taken_under_writes_serves_its_users(make_server, tmp_path):
    server = make_server("sqlite")
    ada = new_email("ada")
    assert signup(server, ada).status_code == 200

    stop, written, failures = threading.Event(), [], []

    def keep_writing() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                email = new_email("busy")
                resp = client.post("/signup", json={"email": email, "password": PASSWORD})
                (written if resp.status_code == 200 else failures).append(email)

    writers = [threading.Thread(target=keep_writing) for _ in range(2)]
    for writer in writers:
        writer.start()
    try:
        while len(written) < 10:  # the writes are under way
            assert not failures
            threading.Event().wait(0.05)
        target = tmp_path / "copy" / "auth-backup.db"
        target.parent.mkdir()
        done = run_backup(server, target)
        during = len(written)
    finally:
        stop.set()
        for writer in writers:
            writer.join(30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"backed up {server.settings.db.sqlite_path} to {target} (")
    assert not failures and len(written) > during, "the server went on writing during and after the backup"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["auth-backup.db"]  # nothing partial left

    copy = sqlite3.connect(target)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        emails = {row[0] for row in copy.execute("SELECT email FROM users")}
        # one commit's view: every user either wholly there (with its identity) or not at all
        orphans = copy.execute("SELECT count(*) FROM users u WHERE NOT EXISTS "
                               "(SELECT 1 FROM identities i WHERE i.user_id = u.id)").fetchone()[0]
    finally:
        copy.close()
    assert ada in emails and orphans == 0
    assert set(written[:10]) <= emails and len(emails) < len(written) + 1

    restored = make_server("sqlite", DATABASE_URL=f"sqlite:///{target}")
    resp = sign_in(restored, ada)
    assert resp.status_code == 200, resp.text
    late = next(email for email in written if email not in emails)
    assert sign_in(restored, late).status_code == 400  # signed up after the copy was taken


def test_a_backup_replaces_the_file_and_refuses_the_database_itself(make_server, tmp_path):
    server = make_server("sqlite")
    target = tmp_path / "backup.db"
    target.write_text("an older backup")
    assert run_backup(server, target).returncode == 0
    assert sqlite3.connect(target).execute("SELECT count(*) FROM users").fetchone() == (0,)
    done = run_backup(server, server.settings.db.sqlite_path)
    assert (done.returncode, done.stderr) == (1, "gotrue-lite: backup: FILE is the database itself\n")


def test_on_postgresql_it_says_to_use_pg_dump(tmp_path):
    done = run_backup(None, tmp_path / "x.db", DATABASE_URL="postgresql://postgres@127.0.0.1:5432/postgres",
                      GOTRUE_JWT_SECRET=BASE_ENV["GOTRUE_JWT_SECRET"])
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "pg_dump" in done.stderr and done.stdout == ""
    assert not (tmp_path / "x.db").exists()
