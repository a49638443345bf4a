"""`gotrue-lite users …` on the configured database: what the operator sees, and what the API then sees."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from tests.test_cli import SECRET, base_env


@pytest.fixture
def shared_db(make_server, backend, tmp_path):
    """A running server, and the environment that points the CLI at the same database."""
    server = make_server(backend, GOTRUE_JWT_SECRET=SECRET)
    return server, base_env(GOTRUE_JWT_SECRET=SECRET, DATABASE_URL=server.db_url)


def cli(env, tmp_path, *args, stdin=None):
    return subprocess.run([sys.executable, "-m", "gotrue_lite", *args], cwd=tmp_path, env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)


def sign_in(server, email, password):
    return httpx.post(f"{server.url}/token?grant_type=password", json={"email": email, "password": password})


def test_create_list_ban_delete(shared_db, tmp_path):
    server, env = shared_db
    created = cli(env, tmp_path, "users", "create", "--email", "Ops@Example.com", "--password-stdin", "--confirm",
                  "--data", '{"name": "Ops"}', stdin="correct-horse-7\n")
    assert created.returncode == 0, created.stderr
    user = json.loads(created.stdout)
    assert user["email"] == "ops@example.com" and user["user_metadata"] == {"name": "Ops", "email_verified": True}
    assert sign_in(server, "ops@example.com", "correct-horse-7").status_code == 200

    listed = cli(env, tmp_path, "users", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [user["id"]]
    assert "1 of 1 users" in listed.stderr

    banned = cli(env, tmp_path, "users", "ban", "ops@example.com", "--duration", "24h")
    assert banned.returncode == 0 and "banned until" in banned.stdout, banned.stderr
    refused = sign_in(server, "ops@example.com", "correct-horse-7")
    assert refused.status_code == 400 and refused.json()["error_code"] == "user_banned"
    assert cli(env, tmp_path, "users", "ban", user["id"], "--duration", "none").returncode == 0
    assert sign_in(server, "ops@example.com", "correct-horse-7").status_code == 200

    deleted = cli(env, tmp_path, "users", "delete", user["id"])
    assert deleted.returncode == 0 and user["id"] in deleted.stdout
    assert sign_in(server, "ops@example.com", "correct-horse-7").json()["error_code"] == "invalid_credentials"
    admin = {"Authorization": f"Bearer {server.service_role_key}"}
    assert httpx.get(f"{server.url}/admin/users/{user['id']}", headers=admin).status_code == 404


def test_soft_delete_keeps_an_anonymised_row(shared_db, tmp_path):
    server, env = shared_db
    user = json.loads(cli(env, tmp_path, "users", "create", "--email", "soft@example.com").stdout)
    assert cli(env, tmp_path, "users", "delete", "soft@example.com", "--soft").returncode == 0
    admin = {"Authorization": f"Bearer {server.service_role_key}"}
    row = httpx.get(f"{server.url}/admin/users/{user['id']}", headers=admin).json()
    assert row["deleted_at"] and row["email"] != "soft@example.com"


def test_errors_are_one_line_and_change_nothing(shared_db, tmp_path):
    server, env = shared_db
    cases = [
        (("users", "create"), "give --email or --phone"),
        (("users", "create", "--email", "not-an-email"), "validation_failed"),
        (("users", "create", "--email", "a@example.com", "--data", "[1]"), "--data"),
        (("users", "ban", "nobody@example.com", "--duration", "1h"), "user_not_found"),
        (("users", "delete", "not-a-uuid"), "validation_failed"),
    ]
    for args, expected in cases:
        result = cli(env, tmp_path, *args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1 and expected in lines[0], (args, result.stderr)
    user = json.loads(cli(env, tmp_path, "users", "create", "--email", "ban@example.com").stdout)
    bad = cli(env, tmp_path, "users", "ban", user["id"], "--duration", "5q")
    assert bad.returncode == 1 and "invalid format for ban duration" in bad.stderr
    taken = cli(env, tmp_path, "users", "create", "--email", "ban@example.com")
    assert taken.returncode == 1 and "email_exists" in taken.stderr
    admin = {"Authorization": f"Bearer {server.service_role_key}"}
    listing = httpx.get(f"{server.url}/admin/users", headers=admin)
    assert listing.headers["X-Total-Count"] == "1"
    assert "banned_until" not in listing.json()["users"][0]
