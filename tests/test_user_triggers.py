"""A trigger on auth.users that refuses a new user (issue 13): upstream's 500 and nothing written.

Supabase projects attach triggers to auth.users (a profiles row, a check). When one raises,
upstream answers 500 unexpected_failure with the message of the path that created the user:
"Database error saving new user" (signupNewUser: sign-up, invite, magic link / OTP,
generate_link), "Database error creating new user" (POST /admin/users), "Database error
creating anonymous user". In the legacy envelope upstream shows a Postgres error raised on purpose
as it is (utilities.NewPostgresError: {code: SQLSTATE, message, detail, hint}, status 500, or
nnn for SQLSTATE PTnnn), except for anonymous sign-ins, whose own error hides it; any other
error gets the usual envelope with error_id. The 2024-01-01 format always shows the message.
SQLite has the same triggers (RAISE(ABORT, …)) and answers the same, minus the SQLSTATE.
"""

from __future__ import annotations

import httpx
import pytest

from helpers import PASSWORD, TIMEOUT, V2, bearer, db_of, new_email, rows

SAVING = "Database error saving new user"
CREATING = "Database error creating new user"
ANONYMOUS = "Database error creating anonymous user"

# The user's metadata says which refusal to act out: {"trigger": "raise" | "crash" | "pt429"}, or
# {"username": …} for a profiles row whose username must be unique.
POSTGRES_TRIGGERS = """
create table profiles (id uuid primary key, username text unique);

create function refuse_users() returns trigger language plpgsql as $$
begin
  if new.raw_user_meta_data->>'trigger' = 'raise' then
    raise exception 'sign-ups are closed for %', coalesce(new.email, 'anonymous users')
      using detail = 'trigger refuse_users', hint = 'ask an admin';
  elsif new.raw_user_meta_data->>'trigger' = 'crash' then
    perform 1 / 0;
  elsif new.raw_user_meta_data->>'trigger' = 'pt429' then
    raise exception 'too many sign-ups' using errcode = 'PT429';
  end if;
  if new.raw_user_meta_data ? 'username' then
    insert into profiles (id, username) values (new.id, new.raw_user_meta_data->>'username');
  end if;
  return new;
end $$;

create trigger refuse_users after insert on users for each row execute function refuse_users();
"""

SQLITE_TRIGGERS = """
create table profiles (id text primary key, username text unique);

create trigger refuse_users before insert on users
when json_extract(new.raw_user_meta_data, '$.trigger') = 'raise'
begin
  select raise(abort, 'sign-ups are closed');
end;

create trigger user_profiles after insert on users
when json_extract(new.raw_user_meta_data, '$.username') is not null
begin
  insert into profiles (id, username) values (new.id, json_extract(new.raw_user_meta_data, '$.username'));
end;
"""


@pytest.fixture
def server(make_server, backend):
    server = make_server(backend, GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED="true")
    ddl = POSTGRES_TRIGGERS if backend == "postgres" else SQLITE_TRIGGERS
    server.run(db_of(server).execute_script(ddl))
    return server


def counts(server) -> dict[str, int]:
    """Every table a new user writes to."""
    tables = ("users", "identities", "audit_log_entries", "sessions", "refresh_tokens", "one_time_tokens",
              "flow_state", "profiles")
    return {t: rows(server, f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in tables}


def request(server, method: str, path: str, body: dict, *, token: str | None = None, v2: bool = False):
    headers = {**(bearer(token) if token else {}), **(V2 if v2 else {})}
    return httpx.request(method, server.url + path, json=body, headers=headers, timeout=TIMEOUT)


def assert_envelope(resp, message: str) -> None:
    """The usual legacy 500: code, error_code, msg and the request's id."""
    assert resp.status_code == 500, resp.text
    body = resp.json()
    assert body == {"code": 500, "error_code": "unexpected_failure", "msg": message,
                    "error_id": resp.headers["X-Request-Id"]}, body
    assert resp.headers["x-sb-error-code"] == "unexpected_failure"


def assert_2024(resp, message: str) -> None:
    assert resp.status_code == 500, resp.text
    assert resp.json() == {"code": "unexpected_failure", "message": message}
    assert resp.headers["X-Supabase-Api-Version"] == "2024-01-01"
    assert resp.headers["x-sb-error-code"] == "unexpected_failure"


def assert_postgres_error(resp, status: int, body: dict) -> None:
    """upstream's legacy answer for a Postgres error it shows: the error itself, no msg, no error_id."""
    assert resp.status_code == status, resp.text
    assert resp.json() == body
    assert resp.headers["x-sb-error-code"] == "unexpected_failure"


def raised(backend: str, email: str | None) -> tuple[int, dict] | None:
    """What the legacy envelope shows for the 'raise' trigger: Postgres' error (None: the envelope)."""
    if backend == "sqlite":
        return None
    return 500, {"code": "P0001", "message": f"sign-ups are closed for {email or 'anonymous users'}",
                 "detail": "trigger refuse_users", "hint": "ask an admin"}


def assert_refused(server, backend, resp, message: str, email: str | None, *, shown: bool = True) -> None:
    expected = raised(backend, email) if shown else None
    if expected is None:
        assert_envelope(resp, message)
    else:
        assert_postgres_error(resp, *expected)


# Each path that creates a user: (method, path, body for an email and metadata, admin?, message)
def _signup(email, data):
    return "POST", "/signup", {"email": email, "password": PASSWORD, "data": data}, False, SAVING


def _admin_create(email, data):
    return "POST", "/admin/users", {"email": email, "password": PASSWORD, "user_metadata": data}, True, CREATING


def _invite(email, data):
    return "POST", "/invite", {"email": email, "data": data}, True, SAVING


def _otp(email, data):
    return "POST", "/otp", {"email": email, "data": data, "create_user": True}, False, SAVING


def _magiclink(email, data):
    return "POST", "/magiclink", {"email": email, "data": data}, False, SAVING


def _generate_signup_link(email, data):
    return ("POST", "/admin/generate_link", {"type": "signup", "email": email, "password": PASSWORD, "data": data},
            True, SAVING)


def _generate_invite_link(email, data):
    return "POST", "/admin/generate_link", {"type": "invite", "email": email, "data": data}, True, SAVING


PATHS = [_signup, _admin_create, _invite, _otp, _magiclink, _generate_signup_link, _generate_invite_link]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.__name__.strip("_"))
def test_a_raising_trigger_refuses_the_user_and_nothing_is_written(server, backend, path):
    before = counts(server)
    email = new_email("blocked")
    method, url, body, admin, message = path(email, {"trigger": "raise"})
    token = server.service_role_key if admin else None
    assert_refused(server, backend, request(server, method, url, body, token=token), message, email)
    assert_2024(request(server, method, url, body, token=token, v2=True), message)
    assert counts(server) == before
    assert rows(server, "SELECT id FROM users WHERE email = $1", email) == []
    # The same request without the trigger's condition goes through.
    method, url, body, admin, _ = path(email, {"plan": "free"})
    assert request(server, method, url, body, token=token).status_code == 200
    assert len(rows(server, "SELECT id FROM users WHERE email = $1", email)) == 1


def test_anonymous_sign_in(server, backend):
    before = counts(server)
    body = {"data": {"trigger": "raise"}}
    # anonymous.go wraps signupNewUser's error in its own: the Postgres error is not shown.
    assert_envelope(request(server, "POST", "/signup", body), ANONYMOUS)
    assert_2024(request(server, "POST", "/signup", body, v2=True), ANONYMOUS)
    assert counts(server) == before
    resp = request(server, "POST", "/signup", {"data": {"plan": "free"}})
    assert resp.status_code == 200 and resp.json()["user"]["is_anonymous"] is True


def test_a_trigger_inserting_a_duplicate_profile(server, backend):
    """A unique key of another table clashing in the trigger is no racing sign-up: upstream's 500."""
    taken = f"ada-{new_email()}"
    first = new_email()
    assert request(server, "POST", "/signup", {"email": first, "password": PASSWORD,
                                               "data": {"username": taken}}).status_code == 200
    assert rows(server, "SELECT username FROM profiles")[0]["username"] == taken
    before = counts(server)
    email = new_email()
    resp = request(server, "POST", "/signup", {"email": email, "password": PASSWORD, "data": {"username": taken}})
    if backend == "postgres":
        assert_postgres_error(resp, 500, {
            "code": "23505", "message": 'duplicate key value violates unique constraint "profiles_username_key"',
            "detail": f"Key (username)=({taken}) already exists."})
    else:
        assert_envelope(resp, SAVING)
    admin = request(server, "POST", "/admin/users", {"email": email, "user_metadata": {"username": taken}},
                    token=server.service_role_key, v2=True)
    assert_2024(admin, CREATING)
    assert counts(server) == before
    # A real duplicate of the address is still the usual answer.
    again = request(server, "POST", "/admin/users", {"email": first}, token=server.service_role_key)
    assert again.status_code == 422 and again.json()["error_code"] == "email_exists"


@pytest.mark.parametrize("backend", ["postgres"])
def test_errors_upstream_does_not_show(server, backend):
    """A trigger failing by accident (division by zero) gets the envelope; PTnnn picks the status."""
    before = counts(server)
    email = new_email()
    crash = {"email": email, "password": PASSWORD, "data": {"trigger": "crash"}}
    assert_envelope(request(server, "POST", "/signup", crash), SAVING)
    admin = {"email": email, "user_metadata": {"trigger": "crash"}}
    assert_envelope(request(server, "POST", "/admin/users", admin, token=server.service_role_key), CREATING)
    limited = {"email": email, "password": PASSWORD, "data": {"trigger": "pt429"}}
    assert_postgres_error(request(server, "POST", "/signup", limited), 429,
                          {"code": "PT429", "message": "too many sign-ups"})
    assert_2024(request(server, "POST", "/signup", limited, v2=True), SAVING)
    assert counts(server) == before


def test_the_python_client_sees_upstreams_message(server, backend):
    from supabase_auth import SyncGoTrueClient
    from supabase_auth.errors import AuthApiError

    client = SyncGoTrueClient(url=server.url, headers={"apikey": server.anon_key}, auto_refresh_token=False,
                              persist_session=False)
    try:
        with pytest.raises(AuthApiError) as caught:
            client.sign_up({"email": new_email(), "password": PASSWORD, "options": {"data": {"trigger": "raise"}}})
        assert (caught.value.status, caught.value.code, caught.value.message) == (500, "unexpected_failure", SAVING)
        with pytest.raises(AuthApiError) as caught:
            client.sign_in_anonymously({"options": {"data": {"trigger": "raise"}}})
        assert (caught.value.status, caught.value.code, caught.value.message) == (500, "unexpected_failure", ANONYMOUS)
    finally:
        client.close()
    admin = SyncGoTrueClient(url=server.url, headers={"Authorization": f"Bearer {server.service_role_key}"},
                             auto_refresh_token=False, persist_session=False)
    try:
        with pytest.raises(AuthApiError) as caught:
            admin.admin.create_user({"email": new_email(), "user_metadata": {"trigger": "raise"}})
        assert (caught.value.status, caught.value.code, caught.value.message) == (500, "unexpected_failure", CREATING)
        with pytest.raises(AuthApiError) as caught:
            admin.admin.invite_user_by_email(new_email(), {"data": {"trigger": "raise"}})
        assert (caught.value.status, caught.value.code, caught.value.message) == (500, "unexpected_failure", SAVING)
    finally:
        admin.close()


def test_a_trigger_on_users_that_succeeds_changes_nothing(server, backend):
    email = new_email()
    resp = request(server, "POST", "/signup", {"email": email, "password": PASSWORD, "data": {"username": email}})
    assert resp.status_code == 200 and resp.json()["access_token"]
    [profile] = rows(server, "SELECT id, username FROM profiles WHERE username = $1", email)
    assert str(profile["id"]) == resp.json()["user"]["id"]
