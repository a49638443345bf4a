"""PostgreSQL function hooks (pg-functions://postgres/<schema>/<function>): real plpgsql functions in
the test database, called with upstream's input JSON inside the request's transaction under a 2 s
statement_timeout; and `serve` refusing a function that does not exist, or any on SQLite."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import time
import uuid

import asyncpg
import pytest

from conftest import PG_ADMIN_DSN, PG_HOST, PG_PORT, PG_USER, _pg_admin
from helpers import PASSWORD, assert_error, claims_of, new_email, post, process_env, refresh, rows, sign_in

FUNCTIONS = r"""
CREATE TABLE public.user_roles (user_id uuid PRIMARY KEY, role text NOT NULL);
CREATE TABLE public.outbox (id serial PRIMARY KEY, email text, data jsonb);
CREATE TABLE public.seen (id serial PRIMARY KEY, event jsonb);

-- custom_access_token: the user's role from a table of the app's, and the schema upstream documents
CREATE FUNCTION public.custom_access_token_hook(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  claims jsonb := event->'claims';
  user_role text;
BEGIN
  SELECT role INTO user_role FROM public.user_roles WHERE user_id = (event->>'user_id')::uuid;
  claims := jsonb_set(claims, '{user_role}', coalesce(to_jsonb(user_role), 'null'::jsonb));
  INSERT INTO public.seen (event) VALUES (event);
  RETURN jsonb_build_object('claims', claims);
END $$;

-- before_user_created: refuses other domains with an error object
CREATE FUNCTION public.only_example_com(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  IF (event->'user'->>'email') NOT LIKE '%@example.com' THEN
    RETURN jsonb_build_object('error', jsonb_build_object('http_code', 403, 'message', 'Only example.com'));
  END IF;
  RETURN '{}'::jsonb;
END $$;

-- after_user_created: gives every new user a role
CREATE FUNCTION public.grant_member(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.user_roles (user_id, role) VALUES ((event->'user'->>'id')::uuid, 'member');
  RETURN '{}'::jsonb;
END $$;

-- send_email: keeps the mail's data in an outbox table of the app's
CREATE FUNCTION public.send_email_hook(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.outbox (email, data) VALUES (event->'user'->>'email', event->'email_data');
  RETURN '{}'::jsonb;
END $$;

-- password_verification_attempt: a wrong password is final
CREATE FUNCTION public.strict_password(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  IF (event->>'valid')::boolean THEN
    RETURN jsonb_build_object('decision', 'continue');
  END IF;
  RETURN jsonb_build_object('decision', 'reject', 'message', 'Locked by policy');
END $$;

CREATE FUNCTION public.slow_hook(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_sleep(5);
  RETURN '{}'::jsonb;
END $$;

CREATE FUNCTION public.raising_hook(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the hook refused: %', event->'user'->>'email';
END $$;

CREATE FUNCTION public.garbage_hook(event jsonb) RETURNS text LANGUAGE sql AS $$ SELECT 'not json' $$;

CREATE FUNCTION public.writes_then_answers_bad_claims(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.seen (event) VALUES (event);
  RETURN jsonb_build_object('claims', (event->'claims') - 'role');
END $$;

CREATE FUNCTION public.claims_without_role(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('claims', (event->'claims') - 'role')
$$;
"""


@pytest.fixture
def hook_db(postgres_problem):
    """A fresh PostgreSQL database holding the hook functions: its DATABASE_URL."""
    if postgres_problem:
        pytest.skip(postgres_problem)
    name = f"gl_hooks_{uuid.uuid4().hex}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    dsn = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"

    async def create() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(FUNCTIONS)
        finally:
            await conn.close()

    asyncio.run(create())
    try:
        yield dsn
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def hook(name: str, function: str) -> dict[str, str]:
    key = f"GOTRUE_HOOK_{name.upper()}_"
    return {key + "ENABLED": "true", key + "URI": f"pg-functions://postgres/public/{function}"}


def signup(server, email, **body):
    return post(server, "/signup", {"email": email, "password": PASSWORD, **body})


def count(server, table: str) -> int:
    return rows(server, f"SELECT count(*) AS n FROM {table}")[0]["n"]


def test_function_hooks_shape_tokens_and_users(make_server, hook_db):
    server = make_server("postgres", DATABASE_URL=hook_db, **hook("custom_access_token", "custom_access_token_hook"),
                         **hook("before_user_created", "only_example_com"),
                         **hook("after_user_created", "grant_member"), GOTRUE_MAILER_AUTOCONFIRM="false",
                         **hook("send_email", "send_email_hook"))
    assert_error(signup(server, "someone@elsewhere.test"), 403, "unknown", "Only example.com")
    assert count(server, "users") == 0

    email = new_email()
    created = signup(server, email)
    assert created.status_code == 200, created.text
    user_id = created.json()["id"]
    assert rows(server, "SELECT role FROM public.user_roles WHERE user_id = $1", user_id) == [{"role": "member"}]
    # send_email wrote the mail's data in the sign-up's own transaction.
    data = rows(server, "SELECT data FROM public.outbox WHERE email = $1", email)[0]["data"]
    assert data["email_action_type"] == "signup"
    assert data["token_hash"] == hashlib.sha224((email + data["token"]).encode()).hexdigest()

    verified = post(server, "/verify", {"email": email, "token": data["token"], "type": "signup"})
    assert verified.status_code == 200, verified.text
    claims = claims_of(verified.json()["access_token"])
    assert claims["user_role"] == "member" and claims["sub"] == user_id
    event = rows(server, "SELECT event FROM public.seen ORDER BY id DESC LIMIT 1")[0]["event"]
    assert event["user_id"] == user_id and event["authentication_method"] == "otp"
    assert event["metadata"]["name"] == "customize-access-token" and event["claims"]["email"] == email

    refreshed = refresh(server, verified.json()["refresh_token"])
    assert claims_of(refreshed.json()["access_token"])["user_role"] == "member"


def test_the_function_runs_in_the_requests_transaction(make_server, hook_db):
    server = make_server("postgres", DATABASE_URL=hook_db,
                         **hook("custom_access_token", "writes_then_answers_bad_claims"))
    resp = signup(server, new_email())
    assert_error(resp, 500, "unexpected_failure",
                 "output claims do not conform to the expected schema: \n- (root): role is required\n")
    # The function's own write went with the failed sign-up's transaction.
    assert count(server, "public.seen") == 0 and count(server, "users") == 0


@pytest.mark.parametrize("function, status, code, message", [
    ("slow_hook", 500, "unexpected_failure", "Error running hook URI: pg-functions://postgres/public/slow_hook"),
    ("garbage_hook", 500, "unexpected_failure", "Error unmarshaling JSON output."),
    ("claims_without_role", 500, "unexpected_failure",
     "output claims do not conform to the expected schema: \n- (root): role is required\n"),
])
def test_failing_access_token_functions(make_server, hook_db, function, status, code, message):
    server = make_server("postgres", DATABASE_URL=hook_db, **hook("custom_access_token", function))
    email = new_email()
    started = time.monotonic()
    resp = signup(server, email)
    assert time.monotonic() - started < 4.5  # statement_timeout: 2 s, not the function's 5 s
    assert_error(resp, status, code, message)
    assert count(server, "users") == 0 and count(server, "sessions") == 0


def test_a_raising_function_shows_its_error_as_upstream(make_server, hook_db):
    server = make_server("postgres", DATABASE_URL=hook_db, **hook("before_user_created", "raising_hook"))
    email = new_email()
    resp = signup(server, email)
    # upstream's legacy envelope shows a raised exception as Postgres reported it.
    assert resp.status_code == 500, resp.text
    assert resp.json() == {"code": "P0001", "message": f"the hook refused: {email}"}
    v2 = post(server, "/signup", {"email": email, "password": PASSWORD},
              headers={"X-Supabase-Api-Version": "2024-01-01"})
    assert v2.json() == {"code": "unexpected_failure",
                         "message": "Error running hook URI: pg-functions://postgres/public/raising_hook"}
    assert count(server, "users") == 0


def test_password_verification_function(make_server, hook_db):
    server = make_server("postgres", DATABASE_URL=hook_db, **hook("password_verification_attempt", "strict_password"))
    email = new_email()
    assert signup(server, email).status_code == 200
    assert sign_in(server, email).status_code == 200
    assert_error(sign_in(server, email, "wrong-password"), 400, "invalid_credentials", "Locked by policy")


# --- start-up checks ----------------------------------------------------------------------------


def serve(tmp_path, **env) -> subprocess.CompletedProcess:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return subprocess.run([sys.executable, "-m", "gotrue_lite", "serve"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60,
                          env=process_env(GOTRUE_JWT_SECRET="x" * 40, PORT=str(port), GOTRUE_API_HOST="127.0.0.1",
                                          API_EXTERNAL_URL=f"http://127.0.0.1:{port}", **env))


def test_serve_refuses_a_function_that_does_not_exist(tmp_path, hook_db):
    result = serve(tmp_path, DATABASE_URL=hook_db, **hook("custom_access_token", "no_such_function"))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.splitlines() == [
        "gotrue-lite: GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_URI: no function public.no_such_function in the database"]


def test_serve_refuses_function_hooks_on_sqlite(tmp_path):
    result = serve(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}",
                   **hook("send_email", "send_email_hook"))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.splitlines() == [
        "gotrue-lite: GOTRUE_HOOK_SEND_EMAIL_URI: pg-functions:// hooks need a PostgreSQL database "
        "(DATABASE_URL is SQLite)"]
    assert not (tmp_path / "db.sqlite").exists()
