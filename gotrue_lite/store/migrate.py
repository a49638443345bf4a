"""Applies schema/<dialect>/NNNN_name.sql in order, once each; adopts an auth schema made by supabase/auth."""

from __future__ import annotations

import logging

from .. import clock
from ..config import ConfigError
from ..resources import schema_dir
from .base import Database
from .postgres import quote_ident

log = logging.getLogger("gotrue_lite.migrate")

# gotrue-lite's record of the files it applied. Kept apart from the Go server's
# schema_migrations so both migrators can share a database; on PostgreSQL it lives in
# gotrue-lite's own schema (earlier versions kept it in the namespace: moved on first start).
TABLE = "gotrue_lite_migrations"

# The supabase/auth release whose schema gotrue-lite's PostgreSQL migrations produce, and its
# migration versions (the numbers of its migrations/*.up.sql files), as its migrator records them
# in <namespace>.schema_migrations. schema/postgres/0006b_upstream_v2_196_0.sql records the same
# list; tests/test_adopt.py checks both against tests/data/upstream_schema.json.
UPSTREAM_RELEASE = "v2.196.0"
# Releases whose migrations are exactly these (none added or changed from the first to the last).
UPSTREAM_RELEASES = "v2.192.0 to v2.196.0"
UPSTREAM_VERSIONS = (
    "00", "20210710035447", "20210722035447", "20210730183235", "20210909172000", "20210927181326",
    "20211122151130", "20211124214934", "20211202183645", "20220114185221", "20220114185340",
    "20220224000811", "20220323170000", "20220429102000", "20220531120530", "20220614074223",
    "20220811173540", "20221003041349", "20221003041400", "20221011041400", "20221020193600",
    "20221021073300", "20221021082433", "20221027105023", "20221114143122", "20221114143410",
    "20221125140132", "20221208132122", "20221215195500", "20221215195800", "20221215195900",
    "20230116124310", "20230116124412", "20230131181311", "20230322519590", "20230402418590",
    "20230411005111", "20230508135423", "20230523124323", "20230818113222", "20230914180801",
    "20231027141322", "20231114161723", "20231117164230", "20240115144230", "20240214120130",
    "20240306115329", "20240314092811", "20240427152123", "20240612123726", "20240729123726",
    "20240802193726", "20240806073726", "20241009103726", "20250717082212", "20250731150234",
    "20250804100000", "20250901200500", "20250903112500", "20250904133000", "20250925093508",
    "20251007112900", "20251104100000", "20251111201300", "20251201000000", "20260115000000",
    "20260121000000", "20260219120000", "20260302000000", "20260625000000",
)
UPSTREAM_LATEST = UPSTREAM_VERSIONS[-1]

# The files that build upstream's own objects. A schema made by supabase/auth has them all
# already, so on one gotrue-lite adopts they are recorded as applied without running.
UPSTREAM_SHAPED = ("0001_init", "0006_upstream_tables", "0006b_upstream_v2_196_0")


class UnsupportedSchema(ConfigError):
    """The auth schema is one gotrue-lite cannot serve (one line: the version, and what to do)."""


def pending_files(dialect: str) -> list[tuple[str, str]]:
    files = sorted(p for p in schema_dir(dialect).glob("*.sql") if p.name[:4].isdigit())
    return [(p.stem, p.read_text(encoding="utf-8")) for p in files]


def check_upstream_versions(namespace: str, versions: set[str], adopting: bool) -> None:
    """Refuse a schema that supabase/auth migrated further than gotrue-lite knows, or (when
    adopting it) not as far. Versions older than upstream's first known one are allowed: Supabase's
    own database images record a few from before the Go server's migrations existed."""
    supported = f"supabase/auth {UPSTREAM_RELEASES}, whose last migration is {UPSTREAM_LATEST}"
    ahead = sorted(v for v in versions if v not in UPSTREAM_VERSIONS and v > UPSTREAM_LATEST)
    if ahead:
        raise UnsupportedSchema(
            f"the {namespace} schema is at supabase/auth migration {ahead[-1]}, newer than gotrue-lite "
            f"supports ({supported}): use a gotrue-lite release that supports it, or keep serving it with "
            f"supabase/auth")
    missing = [v for v in UPSTREAM_VERSIONS if v not in versions]
    if adopting and missing:
        known = [v for v in UPSTREAM_VERSIONS if v in versions]
        at = known[-1] if known else "none"
        lacks = missing[0] + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
        raise UnsupportedSchema(
            f"the {namespace} schema is at supabase/auth migration {at} (it lacks {lacks}), older than "
            f"gotrue-lite supports ({supported}): run `auth migrate` of supabase/auth {UPSTREAM_RELEASE} on it "
            f"first, then start gotrue-lite again")


async def apply_migrations(db: Database) -> list[str]:
    """Apply what has not been applied yet; returns the names applied now."""
    if db.dialect == "postgres":
        table = f"{quote_ident(db.own_schema)}.{TABLE}"
        await _prepare_postgres(db, table)
    else:
        table = TABLE
        await db.execute_script(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
    done = {row["name"] for row in await db.fetch_all(f"SELECT name FROM {table}")}
    applied: list[str] = []
    for name, sql in pending_files(db.dialect):
        if name in done:
            continue
        if db.dialect == "postgres":
            sql = (sql.replace("__NAMESPACE__", quote_ident(db.namespace))
                   .replace("__GOTRUE_LITE__", quote_ident(db.own_schema)))
        await _apply_one(db, table, name, sql)
        log.info("applied migration %s", name)
        applied.append(name)
    return applied


async def _prepare_postgres(db: Database, table: str) -> None:
    """Find (or move, or create) the bookkeeping table; recognise and check a supabase/auth schema."""
    ns, own = quote_ident(db.namespace), quote_ident(db.own_schema)
    found = await db.fetch_one(
        f"SELECT to_regclass($1) IS NOT NULL AS here, to_regclass($2) IS NOT NULL AS before, "
        f"to_regclass($3) IS NOT NULL AS upstream, to_regclass($4) IS NOT NULL AS users",
        f"{own}.{TABLE}", f"{ns}.{TABLE}", f"{ns}.schema_migrations", f"{ns}.users")
    versions: set[str] | None = None
    if found["upstream"]:
        versions = {row["version"] for row in await db.fetch_all(f"SELECT version FROM {ns}.schema_migrations")}
    adopting = not found["here"] and not found["before"] and found["users"]
    if adopting and versions is None:
        raise UnsupportedSchema(
            f"the {db.namespace} schema has a users table but no schema_migrations: it was made neither by "
            f"supabase/auth nor by gotrue-lite; use an empty DB_NAMESPACE, or migrate it with supabase/auth "
            f"{UPSTREAM_RELEASE} first")
    if versions:
        check_upstream_versions(db.namespace, versions, adopting)

    async with db.transaction() as tx:
        await tx.execute(f"CREATE SCHEMA IF NOT EXISTS {own}")
        if found["before"] and not found["here"]:
            # a database of an earlier gotrue-lite: its bookkeeping moves with its other tables
            await tx.execute(f"ALTER TABLE {ns}.{TABLE} SET SCHEMA {own}")
        await tx.execute(f"CREATE TABLE IF NOT EXISTS {table} (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
        if adopting:
            for name in UPSTREAM_SHAPED:
                await tx.execute(f"INSERT INTO {table} (name, applied_at) VALUES ($1, $2)", name, clock.now())
    if adopting:
        log.info("adopting the %s schema made by supabase/auth (%s, migration %s): only gotrue-lite's own "
                 "objects are added", db.namespace, UPSTREAM_RELEASES, UPSTREAM_LATEST)


async def _apply_one(db: Database, table: str, name: str, sql: str) -> None:
    if db.dialect == "postgres":
        # One transaction per file: a failing file leaves nothing behind.
        async with db.transaction() as tx:
            await tx.execute(sql)
            await tx.execute(f"INSERT INTO {table} (name, applied_at) VALUES ($1, $2)", name, clock.now())
        return
    # sqlite3's executescript commits on its own, so the script carries its own transaction.
    script = (f"BEGIN IMMEDIATE;\n{sql}\n;INSERT INTO {table} (name, applied_at) VALUES "
              f"('{name}', '{clock.now().isoformat(timespec='microseconds')}');\nCOMMIT;")
    try:
        await db.execute_script(script)
    except Exception:
        try:
            await db.execute_script("ROLLBACK")
        except Exception:
            pass  # the failure happened before BEGIN took effect
        raise
