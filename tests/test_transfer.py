"""`gotrue-lite export` / `gotrue-lite import`, run as real subprocesses: users move between SQLite and
PostgreSQL and from an upstream-shaped auth schema, and then sign in on the new store."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import bcrypt
import httpx
import pytest

from tests.conftest import PG_ADMIN_DSN, PG_HOST, PG_PORT, PG_USER
from tests.helpers import (PASSWORD, assert_error, new_email, post, process_env, rows, sign_in, signup_session,
                           sql)
from tests.test_mfa import challenge, step_up, totp_now, verify
from tests.test_password_hashes import ARGON2_TEST, FBSCRYPT_MYTESTPASSWORD

SECRET = "a-configured-secret-of-at-least-32-chars"
PHONE_ON = {"GOTRUE_EXTERNAL_PHONE_ENABLED": "true"}


def cli(db_url: str, cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = process_env(GOTRUE_JWT_SECRET=SECRET, DATABASE_URL=db_url, GOTRUE_LOG_LEVEL="warning")
    return subprocess.run([sys.executable, "-m", "gotrue_lite", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr
    return result


def admin(server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.service_role_key}"}


def admin_user(server, user_id: str) -> dict:
    resp = httpx.get(f"{server.url}/admin/users/{user_id}", headers=admin(server))
    assert resp.status_code == 200, resp.text
    return resp.json()


def user_count(server) -> int:
    return rows(server, "SELECT count(*) AS n FROM users")[0]["n"]


def populate(server) -> dict[str, dict]:
    """Users of every kind on `server`: what they are, and how to sign them in."""
    people: dict[str, dict] = {}

    # A password user with user and app metadata and a verified TOTP factor.
    email = new_email("alice")
    session = signup_session(server, email, data={"name": "Alice", "tags": ["a", "b"]})
    factor, _ = step_up(server, session)
    user_id = session["user"]["id"]
    resp = httpx.put(f"{server.url}/admin/users/{user_id}", headers=admin(server),
                     json={"app_metadata": {"plan": "pro", "seats": 3}})
    assert resp.status_code == 200, resp.text
    people["alice"] = {"id": user_id, "email": email, "password": PASSWORD, "totp": factor["totp"]["secret"],
                       "factor_id": factor["id"]}

    # A phone user, who also has an OAuth identity.
    resp = post(server, "/admin/users", {"phone": "15550001111", "password": "phone-pass-42", "phone_confirm": True},
                headers=admin(server))
    assert resp.status_code == 200, resp.text
    bob = resp.json()["id"]
    sql(server, "INSERT INTO identities (id, provider_id, user_id, identity_data, provider, last_sign_in_at, "
                "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $6)",
        str(uuid.uuid4()), "gh-4242", bob, {"sub": "gh-4242", "email": "bob@github.example", "name": "Bob"},
        "github", rows(server, "SELECT created_at FROM users WHERE id = $1", bob)[0]["created_at"])
    people["bob"] = {"id": bob, "phone": "15550001111", "password": "phone-pass-42"}

    # Users whose hashes came from elsewhere: argon2id and Firebase scrypt.
    for name, hashed, password in (("carol", ARGON2_TEST[1], "test"), ("dan", FBSCRYPT_MYTESTPASSWORD, "mytestpassword")):
        address = new_email(name)
        resp = post(server, "/admin/users", {"email": address, "password": "placeholder-1", "email_confirm": True},
                    headers=admin(server))
        assert resp.status_code == 200, resp.text
        assert sql(server, "UPDATE users SET encrypted_password = $1 WHERE id = $2", hashed, resp.json()["id"]) == 1
        people[name] = {"id": resp.json()["id"], "email": address, "password": password, "hash": hashed}
    return people


def export(server, tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / f"users-{uuid.uuid4().hex[:6]}.jsonl"
    result = ok(cli(server.db_url, tmp_path, "export", "--out", str(out), *extra))
    assert "holds password hashes and MFA secrets" in result.stderr
    return out


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("source, target", [("sqlite", "postgres"), ("postgres", "sqlite")])
def test_round_trip_then_sign_in(make_server, postgres_problem, tmp_path, source, target):
    if postgres_problem:
        pytest.skip(postgres_problem)
    src = make_server(source)
    people = populate(src)
    before = {name: admin_user(src, p["id"]) for name, p in people.items()}

    path = export(src, tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    records = read_lines(path)
    assert records[0]["type"] == "header" and "password hashes and MFA secrets" in records[0]["secrets"]
    assert records[-1] == {"type": "end", "users": 4, "identities": 5, "factors": 1, "audit": 0}
    assert [r["type"] for r in records[1:-1]] == ["user"] * 4
    assert not any(name.startswith(".") for name in os.listdir(tmp_path) if name.endswith(".partial"))

    dst = make_server(target, **PHONE_ON)
    result = ok(cli(dst.db_url, tmp_path, "import", str(path)))
    assert "imported 4 users (5 identities, 1 MFA factors)" in result.stdout
    assert "skipped 0 users" in result.stdout

    # Everything the admin API shows about them is the same on the new store.
    for name, p in people.items():
        assert admin_user(dst, p["id"]) == before[name], name

    alice = people["alice"]
    session = sign_in(dst, alice["email"], alice["password"])
    assert session.status_code == 200, session.text
    token = session.json()["access_token"]
    # The TOTP secret travelled: the authenticator the user already has still steps up.
    ch = challenge(dst, token, alice["factor_id"])
    assert ch.status_code == 200, ch.text
    stepped = verify(dst, token, alice["factor_id"], ch.json()["id"], totp_now(alice["totp"]))
    assert stepped.status_code == 200, stepped.text

    bob = people["bob"]
    phone = httpx.post(f"{dst.url}/token?grant_type=password", json={"phone": bob["phone"], "password": bob["password"]})
    assert phone.status_code == 200, phone.text
    assert {i["provider"] for i in phone.json()["user"]["identities"]} == {"phone", "github"}

    for name in ("carol", "dan"):
        p = people[name]
        assert_error(sign_in(dst, p["email"], p["password"] + "!"), 400, "invalid_credentials")
        assert sign_in(dst, p["email"], p["password"]).status_code == 200
        now = rows(dst, "SELECT encrypted_password FROM users WHERE id = $1", p["id"])[0]["encrypted_password"]
        assert now.startswith("$2") and bcrypt.checkpw(p["password"].encode(), now.encode())

    # Importing again changes nothing: same ids are skipped, never duplicated or overwritten.
    count = user_count(dst)
    again = ok(cli(dst.db_url, tmp_path, "import", str(path)))
    assert "imported 0 users" in again.stdout and "skipped 4 users already present" in again.stdout
    assert user_count(dst) == count
    assert rows(dst, "SELECT count(*) AS n FROM identities")[0]["n"] == 5
    carol_hash = rows(dst, "SELECT encrypted_password FROM users WHERE id = $1", people["carol"]["id"])
    assert carol_hash[0]["encrypted_password"].startswith("$2")  # the re-hash was not undone


def test_audit_log_travels_when_asked(make_server, backend, tmp_path):
    src = make_server(backend)
    signup_session(src, new_email())
    entries = rows(src, "SELECT id FROM audit_log_entries")
    assert entries
    without = read_lines(export(src, tmp_path))
    assert not [r for r in without if r["type"] == "audit"]
    path = export(src, tmp_path, "--audit")
    assert {r["id"] for r in read_lines(path) if r["type"] == "audit"} == {e["id"] for e in entries}

    dst = make_server(backend)
    result = ok(cli(dst.db_url, tmp_path, "import", str(path)))
    assert f"{len(entries)} audit entries" in result.stdout
    assert {e["id"] for e in rows(dst, "SELECT id FROM audit_log_entries")} >= {e["id"] for e in entries}
    again = ok(cli(dst.db_url, tmp_path, "import", str(path)))
    assert f"and {len(entries)} audit entries" in again.stdout  # skipped, not doubled


def test_dry_run_counts_and_writes_nothing(make_server, backend, tmp_path):
    src = make_server(backend)
    people = populate(src)
    path = export(src, tmp_path)

    dst = make_server(backend)
    first = next(iter(people.values()))
    # One of them is in the target already (same id): the dry run says it would be skipped.
    ok(cli(dst.db_url, tmp_path, "import", str(_only(path, {first["id"]}))))
    before = rows(dst, "SELECT id, updated_at FROM users ORDER BY id")
    result = ok(cli(dst.db_url, tmp_path, "import", "--dry-run", str(path)))
    assert "dry run: 3 users would be imported" in result.stdout
    assert "1 users already present would be skipped" in result.stdout and "nothing was written" in result.stdout
    assert rows(dst, "SELECT id, updated_at FROM users ORDER BY id") == before

    # A dry run into a database that does not exist yet creates nothing, not even the file.
    fresh = tmp_path / "never.db"
    result = ok(cli(f"sqlite:///{fresh}", tmp_path, "import", "--dry-run", str(path)))
    assert "dry run: 4 users would be imported (5 identities, 1 MFA factors)" in result.stdout
    assert not fresh.exists()


def _only(path: Path, ids: set[str]) -> Path:
    records = read_lines(path)
    kept = [r for r in records if r["type"] != "user" or r["id"] in ids]
    users = [r for r in kept if r["type"] == "user"]
    kept[-1] = {"type": "end", "users": len(users), "identities": sum(len(u["identities"]) for u in users),
                "factors": sum(len(u["factors"]) for u in users), "audit": 0}
    out = path.with_name(f"only-{uuid.uuid4().hex[:6]}.jsonl")
    out.write_text("".join(json.dumps(r) + "\n" for r in kept))
    out.chmod(0o600)
    return out


def _users_file(tmp_path: Path, users: list[dict], *, end: bool = True) -> Path:
    lines = [{"type": "header", "format": "gotrue-lite-users", "version": 1, "source": "test", "audit": False}]
    lines += [{"type": "user", **u} for u in users]
    if end:
        lines.append({"type": "end", "users": len(users), "identities": 0, "factors": 0, "audit": 0})
    path = tmp_path / f"made-{uuid.uuid4().hex[:6]}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    path.chmod(0o600)
    return path


def _made_user(n: int, **fields) -> dict:
    hashed = "$2a$04$" + "x" * 53
    return {"id": str(uuid.uuid4()), "aud": "authenticated", "role": "authenticated",
            "email": f"made{n}-{uuid.uuid4().hex[:6]}@example.com", "encrypted_password": hashed,
            "email_confirmed_at": "2026-01-02T03:04:05+00:00", "created_at": "2026-01-02T03:04:05+00:00",
            "updated_at": "2026-01-02T03:04:05+00:00", "raw_app_meta_data": {"provider": "email"},
            "raw_user_meta_data": {}, **fields}


def test_bad_line_names_the_line_and_leaves_its_batch_unwritten(make_server, backend, tmp_path):
    dst = make_server(backend)
    users = [_made_user(n) for n in range(6)]
    path = _users_file(tmp_path, users)
    lines = path.read_text().splitlines()
    lines[4] = lines[4][:40]  # the 4th user (line 5) is cut mid-record
    path.write_text("\n".join(lines) + "\n")

    result = cli(dst.db_url, tmp_path, "import", "--batch-size", "2", str(path))
    assert result.returncode == 1
    err = result.stderr.strip().splitlines()
    assert err[0].startswith("gotrue-lite: line 5: not JSON"), err
    assert "2 users imported before it" in err[1]
    # Lines 2-3 were one batch and went in; line 4 shared its batch with line 5 and did not.
    assert {r["id"] for r in rows(dst, "SELECT id FROM users")} == {users[0]["id"], users[1]["id"]}


@pytest.mark.parametrize("change, message", [
    ({"id": "not-a-uuid"}, "user: id: not a uuid"),
    ({"encrypted_password": "plaintext"}, "encrypted_password: not a bcrypt, argon2 or Firebase scrypt hash"),
    ({"encrypted_password": "$argon2d$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaA"}, "unsupported algorithm"),
    ({"created_at": "yesterday"}, "created_at: must be an ISO 8601 time"),
    ({"raw_user_meta_data": [1]}, "raw_user_meta_data: must be a JSON object"),
    ({"nickname": "x"}, "unknown field 'nickname'"),
    ({"factors": [{"id": str(uuid.uuid4()), "factor_type": "sms", "status": "verified",
                   "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}]},
     "factor 1: factor_type: must be one of totp, webauthn, phone"),
])
def test_invalid_record_is_refused_with_its_line(make_server, tmp_path, change, message):
    dst = make_server("sqlite")
    path = _users_file(tmp_path, [_made_user(0), _made_user(1, **change)])
    for args in (("--dry-run",), ()):
        result = cli(dst.db_url, tmp_path, "import", *args, str(path))
        assert result.returncode == 1
        assert result.stderr.startswith("gotrue-lite: line 3: ") and message in result.stderr, result.stderr
    assert user_count(dst) == 0


def test_database_refusal_names_the_record_and_rolls_back_its_batch(make_server, backend, tmp_path):
    dst = make_server(backend)
    first = _made_user(0)
    twin = _made_user(1, email=first["email"].upper())  # another id, the same address
    path = _users_file(tmp_path, [_made_user(2), first, twin])
    result = cli(dst.db_url, tmp_path, "import", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith("gotrue-lite: line 4: the target database refused it:"), result.stderr
    assert "email" in result.stderr.splitlines()[0]
    assert user_count(dst) == 0


def test_cut_file_and_foreign_files_are_refused(make_server, tmp_path):
    dst = make_server("sqlite")
    # Without --out the export goes to standard output, and the warning to standard error.
    empty = ok(cli(dst.db_url, tmp_path, "export"))
    assert [r["type"] for r in map(json.loads, empty.stdout.splitlines())] == ["header", "end"]
    assert "exported 0 users" in empty.stderr and "only you can read" in empty.stderr
    cut = _users_file(tmp_path, [_made_user(0)], end=False)
    result = cli(dst.db_url, tmp_path, "import", str(cut))
    assert result.returncode == 1 and "ends without its end record" in result.stderr, result.stderr
    assert user_count(dst) == 0
    other = tmp_path / "other.jsonl"
    other.write_text('{"type": "user", "id": "x"}\n')
    result = cli(dst.db_url, tmp_path, "import", str(other))
    assert result.returncode == 1 and "line 1: not a gotrue-lite-users export" in result.stderr, result.stderr
    assert "other.jsonl is readable by other users and holds password hashes: chmod 600 it" in result.stderr


# --- from an upstream (supabase/auth) database ----------------------------------------------

# The columns of upstream's users, identities and mfa_factors at the supported version
# (shared/spec/SCHEMA.md), as the Go migrations leave them.
UPSTREAM_DDL = """
create schema auth;
create type auth.factor_type as enum ('totp', 'webauthn', 'phone');
create type auth.factor_status as enum ('unverified', 'verified');
create table auth.users (
  instance_id uuid null, id uuid not null primary key, aud varchar(255) null, "role" varchar(255) null,
  email varchar(255) null, encrypted_password varchar(255) null, email_confirmed_at timestamptz null,
  invited_at timestamptz null, confirmation_token varchar(255) null, confirmation_sent_at timestamptz null,
  recovery_token varchar(255) null, recovery_sent_at timestamptz null, email_change_token_new varchar(255) null,
  email_change varchar(255) null, email_change_sent_at timestamptz null, last_sign_in_at timestamptz null,
  raw_app_meta_data jsonb null, raw_user_meta_data jsonb null, is_super_admin bool null,
  created_at timestamptz null, updated_at timestamptz null, phone text null unique default null,
  phone_confirmed_at timestamptz null, phone_change text null default '', phone_change_token varchar(255) null default '',
  phone_change_sent_at timestamptz null,
  confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
  email_change_token_current varchar(255) null default '', email_change_confirm_status smallint null default 0,
  banned_until timestamptz null, reauthentication_token varchar(255) null default '',
  reauthentication_sent_at timestamptz null, is_sso_user boolean not null default false,
  deleted_at timestamptz null, is_anonymous boolean not null default false
);
create table auth.identities (
  provider_id text not null, user_id uuid not null references auth.users (id) on delete cascade,
  identity_data jsonb not null, provider text not null, last_sign_in_at timestamptz null,
  created_at timestamptz null, updated_at timestamptz null,
  email text generated always as (lower(identity_data ->> 'email')) stored,
  id uuid not null default gen_random_uuid() primary key, unique (provider_id, provider)
);
create table auth.mfa_factors (
  id uuid not null primary key, user_id uuid not null references auth.users (id) on delete cascade,
  friendly_name text null, factor_type auth.factor_type not null, status auth.factor_status not null,
  created_at timestamptz not null, updated_at timestamptz not null, secret text null, phone text null,
  last_challenged_at timestamptz null unique, web_authn_credential jsonb null, web_authn_aaguid uuid null,
  last_webauthn_challenge_data jsonb null
);
create table auth.audit_log_entries (
  instance_id uuid null, id uuid not null primary key, payload json null, created_at timestamptz null,
  ip_address varchar(64) not null default ''
);
"""

NIL = "00000000-0000-0000-0000-000000000000"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


async def _upstream_database(name: str) -> list[dict]:
    """A scratch database holding GoTrue-written users, as the Go server writes them."""
    admin_conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin_conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin_conn.close()
    conn = await asyncpg.connect(f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}")
    people = [
        {"email": "gotrue@example.com", "password": "bcrypt-pass-1",
         "hash": bcrypt.hashpw(b"bcrypt-pass-1", bcrypt.gensalt(10)).decode()},
        {"email": "firebase@example.com", "password": "mytestpassword", "hash": FBSCRYPT_MYTESTPASSWORD},
        {"email": "argon@example.com", "password": "test", "hash": ARGON2_TEST[0]},
    ]
    try:
        await conn.execute(UPSTREAM_DDL)
        for p in people:
            p["id"] = str(uuid.uuid4())
            await conn.execute(
                "insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, "
                "confirmation_token, recovery_token, email_change_token_new, email_change, raw_app_meta_data, "
                "raw_user_meta_data, is_super_admin, created_at, updated_at, last_sign_in_at) values "
                "($1, $2, 'authenticated', 'authenticated', $3, $4, now(), '', '', '', '', "
                "'{\"provider\": \"email\", \"providers\": [\"email\"]}', $5::jsonb, false, now(), now(), now())",
                NIL, p["id"], p["email"], p["hash"], json.dumps({"sub": p["id"], "email": p["email"]}))
            await conn.execute(
                "insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, "
                "created_at, updated_at) values ($1, $2::uuid, $3::jsonb, 'email', now(), now(), now())",
                p["id"], p["id"], json.dumps({"sub": p["id"], "email": p["email"], "email_verified": True}))
        people[0]["factor_id"] = str(uuid.uuid4())
        await conn.execute(
            "insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, "
            "secret) values ($1, $2, 'phone app', 'totp', 'verified', now(), now(), $3)",
            people[0]["factor_id"], people[0]["id"], TOTP_SECRET)
        await conn.execute("insert into auth.audit_log_entries (instance_id, id, payload, created_at) values "
                           "($1, $2, '{\"action\": \"login\"}', now())", NIL, str(uuid.uuid4()))
    finally:
        await conn.close()
    return people


@pytest.fixture
def upstream(postgres_problem):
    if postgres_problem:
        pytest.skip(postgres_problem)
    name = f"gl_upstream_{uuid.uuid4().hex}"
    people = asyncio.run(_upstream_database(name))
    yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}", people

    async def drop():
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def test_import_from_an_upstream_database(make_server, backend, tmp_path, upstream):
    url, people = upstream
    dst = make_server(backend)
    dry = ok(cli(dst.db_url, tmp_path, "import", "--from", url, "--dry-run"))
    assert "dry run: 3 users would be imported (3 identities, 1 MFA factors)" in dry.stdout
    assert user_count(dst) == 0

    result = ok(cli(dst.db_url, tmp_path, "import", "--from", url, "--audit"))
    assert "imported 3 users (3 identities, 1 MFA factors, 1 audit entries)" in result.stdout

    for p in people:
        resp = sign_in(dst, p["email"], p["password"])
        assert resp.status_code == 200, (p["email"], resp.text)
        user = resp.json()["user"]
        assert user["id"] == p["id"] and [i["provider"] for i in user["identities"]] == ["email"]
        stored = rows(dst, "SELECT encrypted_password FROM users WHERE id = $1", p["id"])[0]["encrypted_password"]
        assert stored.startswith("$2") and bcrypt.checkpw(p["password"].encode(), stored.encode())

    gotrue = people[0]
    factors = admin_user(dst, gotrue["id"])["factors"]
    assert [(f["id"], f["factor_type"], f["status"], f["friendly_name"]) for f in factors] == \
        [(gotrue["factor_id"], "totp", "verified", "phone app")]
    token = sign_in(dst, gotrue["email"], gotrue["password"]).json()["access_token"]
    ch = challenge(dst, token, gotrue["factor_id"]).json()
    import pyotp
    from gotrue_lite import clock
    code = pyotp.TOTP(TOTP_SECRET).at(clock.now())
    assert verify(dst, token, gotrue["factor_id"], ch["id"], code).status_code == 200

    again = ok(cli(dst.db_url, tmp_path, "import", "--from", url))
    assert "imported 0 users" in again.stdout and "skipped 3 users already present" in again.stdout


def test_import_from_names_what_is_wrong(make_server, tmp_path, upstream):
    url, _ = upstream
    dst = make_server("sqlite")
    cases = [
        (("import", "--from", url, "--from-schema", "public"), "--from: no users table in schema 'public'"),
        (("import", "--from", "postgresql://postgres@127.0.0.1:1/none"), "--from: cannot read PostgreSQL at 127.0.0.1:1"),
        (("import", "--from", "ftp://x"), "--from: unsupported scheme"),
        (("import",), "import: give either a FILE or --from URL"),
        (("import", "no-such-file.jsonl"), "import: cannot read no-such-file.jsonl"),
    ]
    for args, expected in cases:
        result = cli(dst.db_url, tmp_path, *args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1 and expected in lines[0], (args, result.stderr)


# --- bounded memory -------------------------------------------------------------------------


def test_memory_stays_flat_as_the_user_count_grows(tmp_path):
    """Ten times the users, the same peak RSS: export and import stream, a page at a time.
    (bench/transfer.py runs the same at a million users.)"""
    from bench.transfer import run_measured, seed_sqlite_database

    peaks: dict[int, dict[str, float]] = {}
    for users in (2_000, 20_000):
        folder = tmp_path / str(users)
        folder.mkdir()
        seed_sqlite_database(folder / "source.db", users, folder)
        out = folder / "users.jsonl"
        exported = run_measured(["export", "--out", str(out)], f"sqlite:///{folder / 'source.db'}", folder)
        assert f"exported {users} users" in exported.output
        imported = run_measured(["import", str(out)], f"sqlite:///{folder / 'target.db'}", folder)
        assert f"imported {users} users ({users} identities" in imported.output
        peaks[users] = {"export": exported.peak_rss_mb, "import": imported.peak_rss_mb}
    size = (tmp_path / "20000" / "users.jsonl").stat().st_size / 2**20
    assert size > 15  # holding the file (or its users) in memory would show as that much more
    for step in ("export", "import"):
        assert peaks[20_000][step] < peaks[2_000][step] + 10, (step, peaks)


# An auth schema as upstream left it before 2023: identities keyed by the provider's id (no
# provider_id, no uuid id), no mfa_factors, users without the SSO / anonymous / soft-delete columns.
OLD_UPSTREAM_DDL = """
create schema auth;
create table auth.users (
  instance_id uuid null, id uuid not null primary key, aud varchar(255) null, "role" varchar(255) null,
  email varchar(255) null unique, encrypted_password varchar(255) null, email_confirmed_at timestamptz null,
  invited_at timestamptz null, confirmation_token varchar(255) null, confirmation_sent_at timestamptz null,
  recovery_token varchar(255) null, recovery_sent_at timestamptz null, email_change_token_new varchar(255) null,
  email_change varchar(255) null, email_change_sent_at timestamptz null, last_sign_in_at timestamptz null,
  raw_app_meta_data jsonb null, raw_user_meta_data jsonb null, is_super_admin bool null,
  created_at timestamptz null, updated_at timestamptz null, phone varchar(15) null unique default null,
  phone_confirmed_at timestamptz null, banned_until timestamptz null
);
create table auth.identities (
  id text not null, user_id uuid not null references auth.users (id) on delete cascade,
  identity_data jsonb not null, provider text not null, last_sign_in_at timestamptz null,
  created_at timestamptz null, updated_at timestamptz null, primary key (provider, id)
);
"""


@pytest.fixture
def old_upstream(postgres_problem):
    if postgres_problem:
        pytest.skip(postgres_problem)
    name = f"gl_upstream_old_{uuid.uuid4().hex}"
    user_id = str(uuid.uuid4())
    password_hash = bcrypt.hashpw(b"old-pass-1", bcrypt.gensalt(4)).decode()

    async def make():
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}")
        try:
            await conn.execute(OLD_UPSTREAM_DDL)
            await conn.execute(
                "insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, "
                "raw_app_meta_data, raw_user_meta_data, created_at, updated_at) values ($1, $2, 'authenticated', "
                "'authenticated', 'old@example.com', $3, now(), '{\"provider\": \"email\"}', '{}', now(), now())",
                NIL, user_id, password_hash)
            for provider, subject in (("email", user_id), ("github", "777")):
                await conn.execute(
                    "insert into auth.identities (id, user_id, identity_data, provider, created_at, updated_at) "
                    "values ($1, $2, $3::jsonb, $4, now(), now())",
                    subject, user_id, json.dumps({"sub": subject, "email": "old@example.com"}), provider)
        finally:
            await conn.close()

    asyncio.run(make())
    yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}", user_id

    async def drop():
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def test_import_from_an_older_upstream_schema(make_server, tmp_path, old_upstream):
    url, user_id = old_upstream
    dst = make_server("sqlite")
    result = ok(cli(dst.db_url, tmp_path, "import", "--from", url))
    assert "imported 1 users (2 identities, 0 MFA factors)" in result.stdout
    resp = sign_in(dst, "old@example.com", "old-pass-1")
    assert resp.status_code == 200, resp.text
    identities = {i["provider"]: i for i in resp.json()["user"]["identities"]}
    assert identities["github"]["id"] == "777" and identities["email"]["id"] == user_id
    assert resp.json()["user"]["is_anonymous"] is False
    # The identities got ids derived from what they were keyed by: a second import finds them.
    before = rows(dst, "SELECT id FROM identities ORDER BY id")
    again = ok(cli(dst.db_url, tmp_path, "import", "--from", url))
    assert "skipped 1 users already present" in again.stdout
    assert rows(dst, "SELECT id FROM identities ORDER BY id") == before
