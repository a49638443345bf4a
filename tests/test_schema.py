"""The initial migrations, applied by hand to fresh SQLite and PostgreSQL databases: do they behave?

These tests do not use gotrue_lite's migrator: they read schema/<dialect>/0001_init.sql and run it
directly (sqlite3 / asyncpg), so a broken schema shows up here and not as a puzzling store bug.
PostgreSQL tests run in a scratch database that is dropped afterwards. They are skipped when
the server is unreachable, unless GOTRUE_LITE_REQUIRE_POSTGRES=1 (then they fail).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parent.parent
SQLITE_FILE = REPO / "schema" / "sqlite" / "0001_init.sql"
POSTGRES_FILE = REPO / "schema" / "postgres" / "0001_init.sql"
# The spec lives beside the repository in the development workspace. Tests that read it
# are skipped when it is not there (e.g. an sdist checkout).
SPEC_SCHEMA = Path(os.environ.get("GOTRUE_LITE_SPEC_DIR", REPO.parent / "shared" / "spec")) / "SCHEMA.md"

PG_ADMIN_DSN = os.environ.get("GOTRUE_LITE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
NIL_UUID = "00000000-0000-0000-0000-000000000000"

TABLES = {
    "users", "identities", "sessions", "refresh_tokens", "mfa_amr_claims", "mfa_factors",
    "mfa_challenges", "flow_state", "one_time_tokens", "audit_log_entries", "sso_providers",
    "sso_domains", "saml_providers", "saml_relay_states", "instances",
}

# Column lists of SCHEMA.md §3–§6, transcribed so the test also runs without the spec.
SPEC_COLUMNS = {
    "users": {
        "instance_id", "id", "aud", "role", "email", "encrypted_password", "email_confirmed_at",
        "invited_at", "confirmation_token", "confirmation_sent_at", "recovery_token",
        "recovery_sent_at", "email_change_token_new", "email_change", "email_change_sent_at",
        "email_change_token_current", "email_change_confirm_status", "last_sign_in_at",
        "raw_app_meta_data", "raw_user_meta_data", "is_super_admin", "created_at", "updated_at",
        "phone", "phone_confirmed_at", "phone_change", "phone_change_token",
        "phone_change_sent_at", "confirmed_at", "banned_until", "reauthentication_token",
        "reauthentication_sent_at", "is_sso_user", "deleted_at", "is_anonymous",
    },
    "identities": {
        "id", "provider_id", "user_id", "identity_data", "provider", "last_sign_in_at",
        "created_at", "updated_at", "email",
    },
    "sessions": {
        "id", "user_id", "created_at", "updated_at", "factor_id", "aal", "not_after",
        "refreshed_at", "user_agent", "ip", "tag", "oauth_client_id", "scopes",
        "refresh_token_hmac_key", "refresh_token_counter",
    },
    "refresh_tokens": {
        "instance_id", "id", "token", "user_id", "revoked", "created_at", "updated_at", "parent",
        "session_id",
    },
}

TOKEN_COLUMNS = [
    "confirmation_token", "recovery_token", "email_change_token_new", "email_change",
    "email_change_token_current", "phone_change", "phone_change_token", "reauthentication_token",
]
UNIQUE_TOKEN_COLUMNS = [
    "confirmation_token", "recovery_token", "email_change_token_current",
    "email_change_token_new", "reauthentication_token",
]

# The 16 tables of SCHEMA.md §15 minus schema_migrations, which gotrue-lite does not create.
RLS_TABLES = TABLES

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def new_id() -> str:
    return str(uuid.uuid4())


def iso(moment: datetime) -> str:
    """The one SQLite timestamp format (SCHEMA.md §16.1)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


# --- the two backends behind one small interface -----------------------------------------


class Backend:
    """Runs `?`-placeholder SQL on one dialect and normalises what differs in values."""

    dialect: str

    def execute(self, sql: str, *args: Any) -> None: ...
    def fetchall(self, sql: str, *args: Any) -> list[tuple]: ...
    def expect_error(self, kind: str, sql: str, *args: Any) -> None: ...
    def columns(self, table: str) -> list[str]: ...
    def indexes(self) -> set[str]: ...
    def stamp(self, moment: datetime) -> Any: ...
    def stamp_naive(self, moment: datetime) -> Any: ...
    def read_stamp(self, value: Any) -> datetime | None: ...

    def fetchone(self, sql: str, *args: Any) -> tuple | None:
        rows = self.fetchall(sql, *args)
        return rows[0] if rows else None

    def fetchval(self, sql: str, *args: Any) -> Any:
        row = self.fetchone(sql, *args)
        return None if row is None else row[0]

    def insert(self, table: str, **values: Any) -> None:
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", *values.values())

    def refuse(self, kind: str, table: str, **values: Any) -> None:
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self.expect_error(kind, f"INSERT INTO {table} ({names}) VALUES ({marks})", *values.values())

    # rows the tests need over and over

    def add_user(self, **values: Any) -> str:
        row = {"instance_id": NIL_UUID, "id": new_id(), "aud": "authenticated",
               "role": "authenticated", "created_at": self.stamp(T0), "updated_at": self.stamp(T0)}
        row.update(values)
        self.insert("users", **row)
        return row["id"]

    def add_session(self, user_id: str) -> str:
        session_id = new_id()
        self.insert("sessions", id=session_id, user_id=user_id, created_at=self.stamp(T0),
                    updated_at=self.stamp(T0), aal="aal1")
        return session_id

    def add_refresh_token(self, user_id: str, session_id: str, token: str, parent: str | None = None) -> None:
        self.insert("refresh_tokens", instance_id=NIL_UUID, token=token, user_id=user_id,
                    revoked=False, created_at=self.stamp(T0), updated_at=self.stamp(T0),
                    parent=parent, session_id=session_id)


class SQLiteBackend(Backend):
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, *args: Any) -> None:
        self.conn.execute(sql, args)

    def fetchall(self, sql: str, *args: Any) -> list[tuple]:
        return [tuple(r) for r in self.conn.execute(sql, args).fetchall()]

    def expect_error(self, kind: str, sql: str, *args: Any) -> None:
        words = {"unique": "UNIQUE constraint failed", "check": "CHECK constraint failed",
                 "notnull": "NOT NULL constraint failed", "fk": "FOREIGN KEY constraint failed",
                 "invalid": "CHECK constraint failed"}[kind]
        with pytest.raises(sqlite3.IntegrityError, match=words):
            self.conn.execute(sql, args)

    def columns(self, table: str) -> list[str]:
        # table_xinfo (not table_info) so that generated columns are listed too
        return [r[1] for r in self.conn.execute(f"PRAGMA table_xinfo({table})")]

    def declared_types(self, table: str) -> dict[str, str]:
        return {r[1]: r[2] for r in self.conn.execute(f"PRAGMA table_xinfo({table})")}

    def indexes(self) -> set[str]:
        rows = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%'")
        return {r[0] for r in rows}

    def stamp(self, moment: datetime) -> str:
        return iso(moment)

    def stamp_naive(self, moment: datetime) -> str:
        # "timestamp without time zone" upstream, the same UTC text as every other time here
        return iso(moment)

    def read_stamp(self, value: Any) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)


class SyncPG:
    """asyncpg driven from synchronous tests through one private event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn: Any) -> None:
        self.loop, self.conn = loop, conn

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def execute(self, sql: str, *args: Any) -> Any:
        return self.run(self.conn.execute(sql, *args))

    def fetch(self, sql: str, *args: Any) -> list:
        return self.run(self.conn.fetch(sql, *args))

    def fetchval(self, sql: str, *args: Any) -> Any:
        return self.run(self.conn.fetchval(sql, *args))


def to_dollar(sql: str) -> str:
    counter = iter(range(1, 1000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


class PostgresBackend(Backend):
    dialect = "postgres"

    def __init__(self, pg: SyncPG, namespace: str = "auth") -> None:
        self.pg, self.namespace = pg, namespace

    def execute(self, sql: str, *args: Any) -> None:
        self.pg.execute(to_dollar(sql), *args)

    def fetchall(self, sql: str, *args: Any) -> list[tuple]:
        return [tuple(r) for r in self.pg.fetch(to_dollar(sql), *args)]

    def expect_error(self, kind: str, sql: str, *args: Any) -> None:
        import asyncpg

        expected = {"unique": asyncpg.UniqueViolationError, "check": asyncpg.CheckViolationError,
                    "notnull": asyncpg.NotNullViolationError, "fk": asyncpg.ForeignKeyViolationError,
                    "invalid": asyncpg.InvalidTextRepresentationError}[kind]
        # a failed statement aborts the transaction: fence it with a savepoint
        self.pg.execute("SAVEPOINT expect_error")
        with pytest.raises(expected):
            self.pg.execute(to_dollar(sql), *args)
        self.pg.execute("ROLLBACK TO SAVEPOINT expect_error")

    def columns(self, table: str) -> list[str]:
        rows = self.pg.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            self.namespace, table)
        return [r[0] for r in rows]

    def column_types(self, table: str) -> dict[str, tuple[str, str, int | None]]:
        rows = self.pg.fetch(
            "SELECT column_name, data_type, udt_name, character_maximum_length"
            " FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
            self.namespace, table)
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def indexes(self, include_primary: bool = False) -> set[str]:
        rows = self.pg.fetch(
            "SELECT c.relname, i.indisprimary FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1",
            self.namespace)
        return {r[0] for r in rows if include_primary or not r[1]}

    def stamp(self, moment: datetime) -> datetime:
        return moment

    def stamp_naive(self, moment: datetime) -> datetime:
        # asyncpg wants naive UTC datetimes for "timestamp without time zone"
        return moment.astimezone(timezone.utc).replace(tzinfo=None)

    def read_stamp(self, value: Any) -> datetime | None:
        return value


# --- fixtures ----------------------------------------------------------------------------


def open_sqlite(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    # off by default in SQLite: without it no ON DELETE CASCADE runs
    conn.execute("PRAGMA foreign_keys = ON")
    # one transaction around the file, as the migrator does (and one fsync instead of dozens)
    conn.executescript("BEGIN IMMEDIATE;\n" + SQLITE_FILE.read_text(encoding="utf-8") + "\nCOMMIT;")
    return conn


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[SQLiteBackend]:
    conn = open_sqlite(tmp_path / "schema.db")
    try:
        yield SQLiteBackend(conn)
    finally:
        conn.close()


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def postgres_script(namespace: str) -> str:
    return POSTGRES_FILE.read_text(encoding="utf-8").replace("__NAMESPACE__", quote_ident(namespace))


@pytest.fixture(scope="module")
def pg_database() -> Iterator[SyncPG]:
    """A scratch database with the Postgres file applied to schema auth, as the migrator does it."""
    asyncpg = pytest.importorskip("asyncpg")
    loop = asyncio.new_event_loop()
    try:
        admin = loop.run_until_complete(asyncpg.connect(PG_ADMIN_DSN, timeout=5))
    except Exception as exc:  # noqa: BLE001 - any failure means "no server to test against"
        loop.close()
        reason = f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {exc!r}"
        if os.environ.get("GOTRUE_LITE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"GOTRUE_LITE_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    name = f"gl_schema_test_{uuid.uuid4().hex[:12]}"
    conn = None
    try:
        loop.run_until_complete(admin.execute(f"CREATE DATABASE {name}"))
        conn = loop.run_until_complete(asyncpg.connect(PG_ADMIN_DSN, database=name, timeout=5))
        pg = SyncPG(loop, conn)
        pg.execute("CREATE SCHEMA IF NOT EXISTS auth")
        pg.execute("SET search_path TO auth")
        pg.execute("BEGIN")
        pg.execute(postgres_script("auth"))
        pg.execute("COMMIT")
        yield pg
    finally:
        if conn is not None:
            loop.run_until_complete(conn.close())
        loop.run_until_complete(admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        loop.run_until_complete(admin.close())
        loop.close()


@pytest.fixture
def pg_db(pg_database: SyncPG) -> Iterator[PostgresBackend]:
    """The scratch database inside a transaction that is rolled back after the test."""
    pg_database.execute("BEGIN")
    try:
        yield PostgresBackend(pg_database)
    finally:
        pg_database.execute("ROLLBACK")


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest) -> Backend:
    return request.getfixturevalue({"sqlite": "sqlite_db", "postgres": "pg_db"}[request.param])


# --- the files themselves ----------------------------------------------------------------


@pytest.mark.parametrize("path", [SQLITE_FILE, POSTGRES_FILE], ids=["sqlite", "postgres"])
def test_file_rules(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    code = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    assert text.startswith("-- "), "each file opens with a one-line comment saying what it is for"
    # the migrator wraps each file in its own transaction
    assert not re.search(r"^\s*(begin|commit|rollback)\s*(transaction\s*)?;", code, re.I | re.M)
    # ids come from uuid4 and times from the application clock, never from the database
    assert not re.search(r"gen_random_uuid|uuid_generate|\bnow\s*\(|current_timestamp|datetime\s*\(", code, re.I)
    # bookkeeping belongs to the migrator
    assert not re.search(r"gotrue_lite_migrations|create\s+table\s+\w*\s*schema_migrations", code, re.I)
    # a naive split on ';' must not cut a comment in two
    assert all(";" not in line.split("--", 1)[1] for line in text.splitlines() if "--" in line)


def test_postgres_file_is_unqualified() -> None:
    code = "\n".join(line.split("--", 1)[0] for line in POSTGRES_FILE.read_text(encoding="utf-8").splitlines())
    assert not re.search(r"\bauth\.", code), "qualify with __NAMESPACE__, never with a literal auth."
    assert "__NAMESPACE__.uid()" in code


def test_sqlite_version_supports_the_schema() -> None:
    # generated columns need 3.31, RETURNING 3.35, the app relies on both
    assert sqlite3.sqlite_version_info >= (3, 35, 0)


# --- shape: tables, columns, types, indexes ----------------------------------------------


def test_tables(db: Backend) -> None:
    if db.dialect == "sqlite":
        found = {r[0] for r in db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
        found.discard("sqlite_sequence")  # SQLite's own record of AUTOINCREMENT counters
    else:
        found = {r[0] for r in db.fetchall(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'auth'")}
    assert found == TABLES


@pytest.mark.parametrize("table", sorted(SPEC_COLUMNS))
def test_spec_columns(db: Backend, table: str) -> None:
    assert set(db.columns(table)) == SPEC_COLUMNS[table]


@pytest.mark.skipif(not SPEC_SCHEMA.exists(), reason=f"{SPEC_SCHEMA} not available")
def test_transcribed_columns_match_the_spec() -> None:
    text = SPEC_SCHEMA.read_text(encoding="utf-8")
    headings = {"users": "## 3.", "identities": "## 4.", "sessions": "## 5.", "refresh_tokens": "## 6."}
    for table, heading in headings.items():
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        names: set[str] = set()
        for line in section.splitlines():
            if line.startswith("| `"):
                names.update(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
        assert names == SPEC_COLUMNS[table], table


def test_dialects_have_the_same_columns(sqlite_db: SQLiteBackend, pg_db: PostgresBackend) -> None:
    for table in sorted(TABLES):
        # same order too, so SELECT * reads alike on both
        assert sqlite_db.columns(table) == pg_db.columns(table), table


def test_dialects_have_the_same_indexes(sqlite_db: SQLiteBackend, pg_db: PostgresBackend) -> None:
    # users_id_key: upstream's redundant UNIQUE(id) beside the primary key, Postgres only
    assert sqlite_db.indexes() == pg_db.indexes() - {"users_id_key"}


def expected_sqlite_type(pg_type: str) -> str:
    if pg_type.startswith("timestamp"):
        return "TIMESTAMPTZ"
    if pg_type in ("json", "jsonb"):
        return "JSON"
    if pg_type == "boolean":
        return "BOOLEAN"
    if pg_type in ("bigint", "integer", "smallint"):
        return "INTEGER"
    return "TEXT"


def test_sqlite_declared_types_follow_postgres(sqlite_db: SQLiteBackend, pg_db: PostgresBackend) -> None:
    # the store decodes SQLite values by declared type, so each must name the right converter
    for table in sorted(TABLES):
        pg_types = pg_db.column_types(table)
        for column, declared in sqlite_db.declared_types(table).items():
            assert declared == expected_sqlite_type(pg_types[column][0]), f"{table}.{column}"


def test_sqlite_declared_types(sqlite_db: SQLiteBackend) -> None:
    types = {(t, c): d for t in TABLES for c, d in sqlite_db.declared_types(t).items()}
    assert set(types.values()) == {"TEXT", "TIMESTAMPTZ", "JSON", "BOOLEAN", "INTEGER"}
    assert all(d == "TIMESTAMPTZ" for (_, c), d in types.items() if c.endswith("_at") or c == "banned_until")
    assert types["users", "confirmed_at"] == "TIMESTAMPTZ"
    assert types["sessions", "refreshed_at"] == "TIMESTAMPTZ"
    assert types["identities", "identity_data"] == "JSON"
    assert types["audit_log_entries", "payload"] == "JSON"
    assert types["users", "is_sso_user"] == "BOOLEAN"
    assert types["refresh_tokens", "revoked"] == "BOOLEAN"
    assert types["users", "id"] == "TEXT"
    assert types["refresh_tokens", "id"] == "INTEGER"
    sql = sqlite_db.fetchval("SELECT sql FROM sqlite_master WHERE name = 'refresh_tokens'")
    assert re.search(r"\bid\s+INTEGER PRIMARY KEY AUTOINCREMENT", sql)


def test_postgres_column_types(pg_db: PostgresBackend) -> None:
    t = pg_db.column_types
    assert t("sessions")["refreshed_at"][0] == "timestamp without time zone"
    assert t("sessions")["created_at"][0] == "timestamp with time zone"
    assert t("one_time_tokens")["created_at"][0] == "timestamp without time zone"
    assert t("one_time_tokens")["updated_at"][0] == "timestamp without time zone"
    assert t("audit_log_entries")["payload"][0] == "json"
    assert t("users")["raw_app_meta_data"][0] == "jsonb"
    assert t("sessions")["ip"][0] == "inet"
    assert t("mfa_challenges")["ip_address"][0] == "inet"
    assert t("refresh_tokens")["user_id"] == ("character varying", "varchar", 255)
    assert t("refresh_tokens")["parent"] == ("character varying", "varchar", 255)
    assert t("refresh_tokens")["id"][0] == "bigint"
    assert t("users")["email_change_confirm_status"][0] == "smallint"
    assert t("users")["id"][0] == "uuid"
    assert t("users")["phone"][0] == "text"
    assert t("sessions")["aal"][1:2] == ("aal_level",)
    assert t("mfa_factors")["factor_type"][1] == "factor_type"
    assert t("mfa_factors")["status"][1] == "factor_status"
    assert t("flow_state")["code_challenge_method"][1] == "code_challenge_method"
    assert t("one_time_tokens")["token_type"][1] == "one_time_token_type"


def test_postgres_enums(pg_db: PostgresBackend) -> None:
    rows = pg_db.fetchall(
        "SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_type t"
        " JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace"
        " WHERE n.nspname = 'auth' GROUP BY t.typname")
    assert dict(rows) == {
        "factor_type": ["totp", "webauthn", "phone"],
        "factor_status": ["unverified", "verified"],
        "aal_level": ["aal1", "aal2", "aal3"],
        "code_challenge_method": ["s256", "plain"],
        "one_time_token_type": ["confirmation_token", "reauthentication_token", "recovery_token",
                                "email_change_token_new", "email_change_token_current",
                                "phone_change_token"],
    }


def test_postgres_defaults_compute_nothing(pg_db: PostgresBackend) -> None:
    rows = pg_db.fetchall(
        "SELECT table_name, column_name, column_default FROM information_schema.columns"
        " WHERE table_schema = 'auth' AND column_default IS NOT NULL")
    for table, column, default in rows:
        if (table, column) == ("refresh_tokens", "id"):
            assert default.startswith("nextval(")  # bigserial
        else:
            assert re.fullmatch(r"''::\w+( varying)?|false|0|NULL(::\w+)?", default), (table, column, default)


def test_postgres_generated_columns(pg_db: PostgresBackend) -> None:
    rows = pg_db.fetchall(
        "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'auth' AND a.attgenerated = 's'")
    assert set(rows) == {("users", "confirmed_at"), ("identities", "email")}


def test_sqlite_generated_columns(sqlite_db: SQLiteBackend) -> None:
    # hidden = 3: a STORED generated column
    generated = {(t, r[1]) for t in TABLES for r in sqlite_db.conn.execute(f"PRAGMA table_xinfo({t})") if r[6] == 3}
    assert generated == {("users", "confirmed_at"), ("identities", "email")}


@pytest.mark.parametrize("index", [
    "users_email_partial_key", "users_phone_key", "users_instance_id_email_idx", "users_email_aud_idx",
    "idx_users_created_at_desc", *(f"{c}_idx" for c in UNIQUE_TOKEN_COLUMNS),
    "identities_provider_id_provider_unique", "identities_user_id_idx", "identities_email_idx",
    "sessions_user_id_idx", "user_id_created_at_idx", "refresh_tokens_token_unique",
    "refresh_tokens_parent_idx", "refresh_tokens_session_id_revoked_idx", "refresh_tokens_updated_at_idx",
    "mfa_amr_claims_session_id_authentication_method_pkey", "idx_auth_code", "idx_user_id_auth_method",
    "flow_state_created_at_idx", "one_time_tokens_user_id_token_type_key",
    "one_time_tokens_token_hash_hash_idx", "one_time_tokens_relates_to_hash_idx",
    "audit_log_entries_created_at_idx", "factor_id_created_at_idx", "mfa_factors_user_friendly_name_unique",
])
def test_lookup_indexes_exist(db: Backend, index: str) -> None:
    assert index in db.indexes()


def test_sqlite_lookups_use_the_indexes(sqlite_db: SQLiteBackend) -> None:
    def plan(sql: str) -> str:
        return " ".join(r[3] for r in sqlite_db.conn.execute("EXPLAIN QUERY PLAN " + sql, ("x",) * sql.count("?")))

    assert "users_email_aud_idx" in plan("SELECT id FROM users WHERE lower(email) = ? AND aud = ? AND is_sso_user = 0")
    assert "refresh_tokens_token_unique" in plan("SELECT id FROM refresh_tokens WHERE token = ?")
    assert "confirmation_token_idx" in plan(
        "SELECT id FROM users WHERE confirmation_token = ? AND confirmation_token GLOB '*[^0-9 ]*'")
    assert "one_time_tokens_token_hash_hash_idx" in plan("SELECT id FROM one_time_tokens WHERE token_hash = ?")


# --- behaviour ---------------------------------------------------------------------------


def test_token_columns_default_to_empty(db: Backend) -> None:
    user_id = new_id()
    db.execute("INSERT INTO users (id) VALUES (?)", user_id)
    row = db.fetchone(f"SELECT {', '.join(TOKEN_COLUMNS)}, email, phone, email_change_confirm_status,"
                      " is_sso_user, is_anonymous FROM users WHERE id = ?", user_id)
    assert row[:len(TOKEN_COLUMNS)] == ("",) * len(TOKEN_COLUMNS)
    assert row[len(TOKEN_COLUMNS):] == (None, None, 0, False, False)


@pytest.mark.parametrize("email_at, phone_at, expected", [
    (T0, T0 + timedelta(hours=1), T0),
    (T0 + timedelta(days=2), T0 + timedelta(microseconds=1), T0 + timedelta(microseconds=1)),
    (T0, None, T0),
    (None, T0, T0),
    (None, None, None),
], ids=["email-earlier", "phone-earlier", "email-only", "phone-only", "neither"])
def test_confirmed_at_is_the_earlier_confirmation(db: Backend, email_at, phone_at, expected) -> None:
    user_id = db.add_user(email_confirmed_at=email_at and db.stamp(email_at),
                          phone_confirmed_at=phone_at and db.stamp(phone_at))
    assert db.read_stamp(db.fetchval("SELECT confirmed_at FROM users WHERE id = ?", user_id)) == expected


def test_confirmed_at_follows_updates(db: Backend) -> None:
    user_id = db.add_user(email_confirmed_at=db.stamp(T0 + timedelta(days=1)))
    db.execute("UPDATE users SET phone_confirmed_at = ? WHERE id = ?", db.stamp(T0), user_id)
    assert db.read_stamp(db.fetchval("SELECT confirmed_at FROM users WHERE id = ?", user_id)) == T0
    db.execute("UPDATE users SET phone_confirmed_at = NULL, email_confirmed_at = NULL WHERE id = ?", user_id)
    assert db.fetchval("SELECT confirmed_at FROM users WHERE id = ?", user_id) is None


def test_confirmed_at_cannot_be_written(db: Backend) -> None:
    user_id = new_id()
    if db.dialect == "sqlite":
        error: type[Exception] = sqlite3.OperationalError
    else:
        import asyncpg

        error = asyncpg.GeneratedAlwaysError
    if db.dialect == "postgres":
        db.pg.execute("SAVEPOINT generated")
    with pytest.raises(error):
        db.execute("INSERT INTO users (id, confirmed_at) VALUES (?, ?)", user_id, db.stamp(T0))
    if db.dialect == "postgres":
        db.pg.execute("ROLLBACK TO SAVEPOINT generated")


def test_identity_email_is_generated_lower_case(db: Backend) -> None:
    user_id = db.add_user(email="mixed@example.com")
    db.insert("identities", id=new_id(), provider_id=user_id, user_id=user_id, provider="email",
              identity_data=json.dumps({"sub": user_id, "email": "Mixed@Example.COM"}))
    db.insert("identities", id=new_id(), provider_id="12345", user_id=user_id, provider="github",
              identity_data=json.dumps({"sub": "12345"}))
    rows = db.fetchall("SELECT provider, email FROM identities WHERE user_id = ? ORDER BY provider", user_id)
    assert rows == [("email", "mixed@example.com"), ("github", None)]
    db.execute("UPDATE identities SET identity_data = ? WHERE provider = 'github'",
               json.dumps({"sub": "12345", "email": "Other@Example.com"}))
    assert db.fetchval("SELECT email FROM identities WHERE provider = 'github'") == "other@example.com"


def test_identity_provider_pair_is_unique(db: Backend) -> None:
    user_id = db.add_user()
    db.insert("identities", id=new_id(), provider_id="p1", user_id=user_id, provider="google", identity_data="{}")
    db.insert("identities", id=new_id(), provider_id="p1", user_id=user_id, provider="github", identity_data="{}")
    db.refuse("unique", "identities", id=new_id(), provider_id="p1", user_id=user_id, provider="google",
              identity_data="{}")


def test_email_unique_among_non_sso_users_only(db: Backend) -> None:
    db.add_user(email="a@example.com")
    db.refuse("unique", "users", id=new_id(), email="a@example.com")
    # SSO accounts may share the email, with the non-SSO account and with each other
    db.add_user(email="a@example.com", is_sso_user=True)
    db.add_user(email="a@example.com", is_sso_user=True)
    # users without an email are NULL there and never collide
    db.add_user(email=None)
    db.add_user(email=None)
    count = db.fetchval("SELECT count(*) FROM users WHERE lower(email) = lower(?) AND aud = ?",
                        "A@example.com", "authenticated")
    assert count == 3


def test_phone_unique_but_null_repeats(db: Backend) -> None:
    db.add_user(phone=None)
    db.add_user(phone=None)
    db.add_user(phone="15551234567")
    db.refuse("unique", "users", id=new_id(), phone="15551234567")


@pytest.mark.parametrize("column", UNIQUE_TOKEN_COLUMNS)
def test_token_hashes_unique_but_blank_and_numeric_repeat(db: Backend, column: str) -> None:
    for value in ("", "", "123456", "123456", "12 34", "12 34"):
        db.add_user(**{column: value})
    token_hash = "pkce_" + "ab" * 28
    db.add_user(**{column: token_hash})
    db.refuse("unique", "users", id=new_id(), **{column: token_hash})
    # a hash that merely contains digits is still a hash
    db.add_user(**{column: "9a9"})
    db.refuse("unique", "users", id=new_id(), **{column: "9a9"})


def test_phone_change_token_has_no_unique_index(db: Backend) -> None:
    db.add_user(phone_change_token="abcdef")
    db.add_user(phone_change_token="abcdef")


def test_email_change_confirm_status_range(db: Backend) -> None:
    db.add_user(email_change_confirm_status=2)
    db.refuse("check", "users", id=new_id(), email_change_confirm_status=3)
    db.refuse("check", "users", id=new_id(), email_change_confirm_status=-1)


def test_deleting_a_user_cascades(db: Backend) -> None:
    user_id = db.add_user(email="gone@example.com")
    other_id = db.add_user(email="stays@example.com")
    db.insert("identities", id=new_id(), provider_id=user_id, user_id=user_id, provider="email",
              identity_data=json.dumps({"sub": user_id}))
    session_id = db.add_session(user_id)
    other_session = db.add_session(other_id)
    db.add_refresh_token(user_id, session_id, "aaaaaaaaaaaa")
    db.add_refresh_token(user_id, session_id, "bbbbbbbbbbbb", parent="aaaaaaaaaaaa")
    db.add_refresh_token(other_id, other_session, "cccccccccccc")
    for method in ("password", "otp"):
        db.insert("mfa_amr_claims", id=new_id(), session_id=session_id, authentication_method=method,
                  created_at=db.stamp(T0), updated_at=db.stamp(T0))
    factor_id = new_id()
    db.insert("mfa_factors", id=factor_id, user_id=user_id, friendly_name="", factor_type="totp",
              status="verified", created_at=db.stamp(T0), updated_at=db.stamp(T0))
    db.insert("mfa_challenges", id=new_id(), factor_id=factor_id, created_at=db.stamp(T0),
              ip_address="127.0.0.1")
    db.insert("one_time_tokens", id=new_id(), user_id=user_id, token_type="confirmation_token",
              token_hash="hash", relates_to="gone@example.com", created_at=db.stamp_naive(T0),
              updated_at=db.stamp_naive(T0))
    db.insert("flow_state", id=new_id(), user_id=user_id, provider_type="email",
              authentication_method="email/signup", created_at=db.stamp(T0))
    db.insert("audit_log_entries", id=new_id(), instance_id=NIL_UUID, created_at=db.stamp(T0),
              payload=json.dumps({"action": "user_signedup", "actor_id": user_id}))

    db.execute("DELETE FROM users WHERE id = ?", user_id)

    def count(table: str) -> int:
        return db.fetchval(f"SELECT count(*) FROM {table}")

    assert count("identities") == 0
    assert [str(r[0]) for r in db.fetchall("SELECT id FROM sessions")] == [other_session]
    assert db.fetchall("SELECT token FROM refresh_tokens") == [("cccccccccccc",)]
    assert count("mfa_amr_claims") == 0
    assert count("mfa_factors") == 0
    assert count("mfa_challenges") == 0
    assert count("one_time_tokens") == 0
    # no foreign key on these: they outlive the user
    assert count("flow_state") == 1
    assert count("audit_log_entries") == 1


def test_deleting_a_session_cascades_to_its_tokens_and_claims(db: Backend) -> None:
    user_id = db.add_user()
    first, second = db.add_session(user_id), db.add_session(user_id)
    db.add_refresh_token(user_id, first, "first0000000")
    db.add_refresh_token(user_id, second, "second000000")
    db.insert("mfa_amr_claims", id=new_id(), session_id=first, authentication_method="password",
              created_at=db.stamp(T0), updated_at=db.stamp(T0))
    db.execute("DELETE FROM sessions WHERE id = ?", first)
    assert db.fetchall("SELECT token FROM refresh_tokens") == [("second000000",)]
    assert db.fetchval("SELECT count(*) FROM mfa_amr_claims") == 0
    assert db.fetchval("SELECT count(*) FROM users") == 1


def test_session_needs_an_existing_user(db: Backend) -> None:
    db.refuse("fk", "sessions", id=new_id(), user_id=new_id())


def test_refresh_token_ids_only_grow(db: Backend) -> None:
    user_id = db.add_user()
    session_id = db.add_session(user_id)
    for i in range(3):
        db.add_refresh_token(user_id, session_id, f"token{i:07d}")
    highest = db.fetchval("SELECT max(id) FROM refresh_tokens")
    db.execute("DELETE FROM refresh_tokens WHERE id = ?", highest)
    db.add_refresh_token(user_id, session_id, "token9999999")
    assert db.fetchval("SELECT id FROM refresh_tokens WHERE token = 'token9999999'") > highest
    db.refuse("unique", "refresh_tokens", token="token9999999", session_id=session_id)


def test_amr_claim_upsert(db: Backend) -> None:
    user_id = db.add_user()
    session_id = db.add_session(user_id)
    later = T0 + timedelta(minutes=5)
    upsert = ("INSERT INTO mfa_amr_claims (id, session_id, authentication_method, created_at, updated_at)"
              " VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id, authentication_method)"
              " DO UPDATE SET updated_at = excluded.updated_at")
    db.execute(upsert, new_id(), session_id, "password", db.stamp(T0), db.stamp(T0))
    db.execute(upsert, new_id(), session_id, "password", db.stamp(later), db.stamp(later))
    rows = db.fetchall("SELECT created_at, updated_at FROM mfa_amr_claims")
    assert [(db.read_stamp(a), db.read_stamp(b)) for a, b in rows] == [(T0, later)]


def test_one_time_tokens_constraints(db: Backend) -> None:
    user_id = db.add_user()
    stamp = db.stamp_naive(T0)
    row = {"user_id": user_id, "relates_to": "a@example.com", "created_at": stamp, "updated_at": stamp}
    db.insert("one_time_tokens", id=new_id(), token_type="recovery_token", token_hash="h1", **row)
    db.insert("one_time_tokens", id=new_id(), token_type="confirmation_token", token_hash="h1", **row)
    db.refuse("unique", "one_time_tokens", id=new_id(), token_type="recovery_token", token_hash="h2", **row)
    db.refuse("check", "one_time_tokens", id=new_id(), token_type="reauthentication_token", token_hash="", **row)
    db.refuse("invalid", "one_time_tokens", id=new_id(), token_type="magic_link", token_hash="h3", **row)


def test_enums_refuse_unknown_values(db: Backend) -> None:
    user_id = db.add_user()
    db.refuse("invalid", "sessions", id=new_id(), user_id=user_id, aal="aal9")
    db.refuse("invalid", "flow_state", id=new_id(), provider_type="email", authentication_method="otp",
              code_challenge_method="S256")
    base = {"user_id": user_id, "created_at": db.stamp(T0), "updated_at": db.stamp(T0)}
    db.refuse("invalid", "mfa_factors", id=new_id(), factor_type="sms", status="verified", **base)
    db.refuse("invalid", "mfa_factors", id=new_id(), factor_type="totp", status="pending", **base)


def test_factor_friendly_names(db: Backend) -> None:
    user_id, other_id = db.add_user(), db.add_user()

    def factor(owner: str, name: str | None, at: datetime) -> dict:
        return {"id": new_id(), "user_id": owner, "friendly_name": name, "factor_type": "totp",
                "status": "unverified", "created_at": db.stamp(at), "updated_at": db.stamp(at)}

    db.insert("mfa_factors", **factor(user_id, "", T0))
    db.insert("mfa_factors", **factor(user_id, "  ", T0 + timedelta(seconds=1)))
    db.insert("mfa_factors", **factor(user_id, None, T0 + timedelta(seconds=2)))
    db.insert("mfa_factors", **factor(user_id, "phone", T0 + timedelta(seconds=3)))
    db.insert("mfa_factors", **factor(other_id, "phone", T0 + timedelta(seconds=4)))
    db.refuse("unique", "mfa_factors", **factor(user_id, "phone", T0 + timedelta(seconds=5)))


def test_audit_ip_address_defaults_to_empty(db: Backend) -> None:
    entry = new_id()
    db.insert("audit_log_entries", id=entry, payload=json.dumps({"action": "login"}), created_at=db.stamp(T0))
    assert db.fetchval("SELECT ip_address FROM audit_log_entries WHERE id = ?", entry) == ""


def test_sqlite_checks_json_and_booleans(sqlite_db: SQLiteBackend) -> None:
    sqlite_db.refuse("check", "users", id=new_id(), raw_app_meta_data="{not json")
    sqlite_db.refuse("check", "users", id=new_id(), is_sso_user=2)
    sqlite_db.refuse("check", "audit_log_entries", id=new_id(), payload="[")
    user_id = sqlite_db.add_user(raw_app_meta_data=None, raw_user_meta_data='{"a":1}')
    sqlite_db.refuse("check", "identities", id=new_id(), provider_id="x", user_id=user_id,
                     provider="email", identity_data="nope")
    sqlite_db.refuse("notnull", "identities", id=new_id(), provider_id="x", user_id=user_id,
                     provider="email", identity_data=None)
    sqlite_db.refuse("notnull", "users", id=None)


def test_sqlite_text_timestamps_sort_in_time_order(sqlite_db: SQLiteBackend) -> None:
    moments = [T0 + timedelta(seconds=s) for s in (86400, 0.5, 0, 3600)]
    for moment in moments:
        sqlite_db.add_user(created_at=iso(moment))
    rows = sqlite_db.fetchall("SELECT created_at FROM users ORDER BY created_at DESC")
    assert [datetime.fromisoformat(r[0]) for r in rows] == sorted(moments, reverse=True)


# --- Postgres: RLS helpers, row-level security, namespace --------------------------------


def claims(pg: PostgresBackend) -> tuple:
    return pg.fetchone("SELECT auth.uid(), auth.role(), auth.email(), auth.jwt()")


def test_rls_helpers_read_the_claims_json(pg_db: PostgresBackend) -> None:
    sub = new_id()
    payload = {"sub": sub, "role": "authenticated", "email": "a@b.c"}
    pg_db.execute("SELECT set_config('request.jwt.claims', ?, true)", json.dumps(payload))
    uid, role, email, jwt = claims(pg_db)
    assert (uid, role, email) == (uuid.UUID(sub), "authenticated", "a@b.c")
    assert json.loads(jwt) == payload


def test_rls_helpers_read_the_old_per_claim_settings(pg_db: PostgresBackend) -> None:
    sub = new_id()
    pg_db.execute("SELECT set_config('request.jwt.claim.sub', ?, true)", sub)
    pg_db.execute("SELECT set_config('request.jwt.claim.role', 'service_role', true)")
    pg_db.execute("SELECT set_config('request.jwt.claim.email', 'old@b.c', true)")
    uid, role, email, jwt = claims(pg_db)
    assert (uid, role, email, jwt) == (uuid.UUID(sub), "service_role", "old@b.c", None)
    # the per-claim setting wins over the JSON one
    pg_db.execute("SELECT set_config('request.jwt.claims', ?, true)", json.dumps({"sub": new_id(), "role": "anon"}))
    assert claims(pg_db)[:2] == (uuid.UUID(sub), "service_role")
    # and so does the old whole-object setting for jwt()
    pg_db.execute("SELECT set_config('request.jwt.claim', '{\"role\": \"x\"}', true)")
    assert json.loads(claims(pg_db)[3]) == {"role": "x"}


def test_rls_helpers_are_null_when_nothing_is_set(pg_database: SyncPG) -> None:
    import asyncpg

    # a fresh connection: the settings were never defined (current_setting(..., true) is NULL)
    dsn_db = pg_database.fetchval("SELECT current_database()")
    conn = pg_database.run(asyncpg.connect(PG_ADMIN_DSN, database=dsn_db, timeout=5))
    try:
        fresh = PostgresBackend(SyncPG(pg_database.loop, conn))
        assert claims(fresh) == (None, None, None, None)
        # defined earlier in the session and gone with its transaction: '' now, still NULL
        fresh.execute("BEGIN")
        fresh.execute("SELECT set_config('request.jwt.claims', '{\"sub\": \"" + new_id() + "\"}', true)")
        fresh.execute("SELECT set_config('request.jwt.claim.sub', '', true)")
        assert claims(fresh)[0] is not None  # empty per-claim setting falls through to the JSON
        fresh.execute("COMMIT")
        assert fresh.fetchval("SELECT current_setting('request.jwt.claims', true)") == ""
        assert claims(fresh) == (None, None, None, None)
    finally:
        pg_database.run(conn.close())


def test_uid_rejects_an_empty_sub_in_the_claims(pg_db: PostgresBackend) -> None:
    import asyncpg

    pg_db.execute("SELECT set_config('request.jwt.claims', '{\"sub\": \"\"}', true)")
    pg_db.pg.execute("SAVEPOINT empty_sub")
    with pytest.raises(asyncpg.InvalidTextRepresentationError):
        pg_db.fetchval("SELECT auth.uid()")
    pg_db.pg.execute("ROLLBACK TO SAVEPOINT empty_sub")
    # role() and email() only read their own members, absent here
    assert pg_db.fetchone("SELECT auth.role(), auth.email()") == (None, None)


def test_rls_helper_definitions(pg_db: PostgresBackend) -> None:
    rows = pg_db.fetchall(
        "SELECT p.proname, p.provolatile::text, l.lanname, pg_get_function_result(p.oid),"
        " pg_get_function_arguments(p.oid), obj_description(p.oid, 'pg_proc')"
        " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang"
        " WHERE n.nspname = 'auth'")
    found = {r[0]: r[1:] for r in rows}
    assert set(found) == {"uid", "role", "email", "jwt"}
    assert {name: r[:4] for name, r in found.items()} == {
        "uid": ("s", "sql", "uuid", ""), "role": ("s", "sql", "text", ""),
        "email": ("s", "sql", "text", ""), "jwt": ("s", "sql", "jsonb", ""),
    }
    for name in ("uid", "role", "email"):
        assert found[name][4].startswith("Deprecated"), name
    assert found["jwt"][4] is None


def test_row_level_security_enabled_and_postgres_granted(pg_db: PostgresBackend) -> None:
    rows = pg_db.fetchall(
        "SELECT c.relname, c.relrowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'auth' AND c.relkind = 'r'")
    assert dict(rows) == {table: True for table in RLS_TABLES}
    if pg_db.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = 'postgres'"):
        for table in RLS_TABLES:
            assert pg_db.fetchval("SELECT has_table_privilege('postgres', ?, 'SELECT WITH GRANT OPTION')",
                                  f"auth.{table}"), table


def test_postgres_file_applies_to_any_namespace(pg_db: PostgresBackend) -> None:
    namespace = 'gl "other" ns'
    pg_db.execute(f"CREATE SCHEMA {quote_ident(namespace)}")
    pg_db.execute(f"SET LOCAL search_path TO {quote_ident(namespace)}")
    pg_db.pg.execute(postgres_script(namespace))
    other = PostgresBackend(pg_db.pg, namespace)
    assert {r[0] for r in other.fetchall(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", namespace)} == TABLES
    assert other.indexes() == pg_db.indexes()
    assert other.fetchval("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == 0
    pg_db.execute("SELECT set_config('request.jwt.claims', '{\"email\": \"x@y.z\"}', true)")
    assert other.fetchval(f"SELECT {quote_ident(namespace)}.email()") == "x@y.z"
    # the auth copy is untouched
    assert pg_db.fetchval("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                          " WHERE n.nspname = 'auth'") == 4
