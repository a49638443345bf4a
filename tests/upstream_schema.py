"""Upstream's PostgreSQL schema as data: describe a database's auth schema, build one from the description.

tests/data/upstream_schema.json holds the facts (tables, columns, types, defaults, constraints,
indexes, enum types, functions, row-level security, sequences, migration versions) of the auth
schema that supabase/auth's own migrator leaves behind. It was generated once by running
upstream's migrations, exactly as its migrator runs them, in a scratch database:

    python3 tests/upstream_schema.py generate --repo /work/.mirror/supabase+auth/repo --rev bc32168e \\
        --release v2.196.0

(`--repo` is a git directory of github.com/supabase/auth; the run needs the local PostgreSQL
that the tests use, and creates the roles upstream's migrations expect). The tests compare
databases with the file (`describe`) and build upstream-shaped databases from it (`build`),
so they run without upstream's source.

How upstream's migrator (gobuffalo/pop v6) works, and what `generate` imitates: as the role
supabase_auth_admin, whose search_path is the auth schema (upstream's hack/init_postgres.sql),
it first creates the bookkeeping table `schema_migrations` if `select * from schema_migrations`
fails (fizz: "version" VARCHAR (14) NOT NULL, PRIMARY KEY, plus the unique index
schema_migrations_version_idx); then for each migrations/<version>_<name>.up.sql in version
order whose version is not in that table, it renders the Go template (the only template value
used is the Namespace option) and runs the file and `insert into schema_migrations (version)`
in one transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg

DATA_FILE = Path(__file__).resolve().parent / "data" / "upstream_schema.json"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
TEMPLATE = re.compile(r'\{\{\s*index \.Options "Namespace"\s*\}\}')
MIGRATION_NAME = re.compile(r"^(\d+)_([^.]+)(\.[a-z0-9]+)?\.up\.sql$")

# fizz's CREATE TABLE for pop's schema_migrations (gobuffalo/pop v6.1.1 schema_migrations.go,
# gobuffalo/fizz translators/postgres.go), run unqualified under the auth search_path.
POP_SCHEMA_MIGRATIONS = (
    'CREATE TABLE "schema_migrations" (\n"version" VARCHAR (14) NOT NULL,\nPRIMARY KEY("version")\n);\n'
    'CREATE UNIQUE INDEX "schema_migrations_version_idx" ON "schema_migrations" (version);'
)


def load() -> dict[str, Any]:
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


# --- describing a schema -------------------------------------------------------------------------


def _unqualify(text: str | None, namespace: str) -> str | None:
    if text is None:
        return None
    for prefix in (f'"{namespace}".', f"{namespace}."):
        text = text.replace(prefix, "")
    return text


async def describe(conn: asyncpg.Connection, namespace: str) -> dict[str, Any]:
    """The facts of one schema, names unqualified (read with search_path set to that schema only)."""
    await conn.execute(f"SET search_path TO {quote_ident(namespace)}")
    nsp = await conn.fetchval("SELECT oid FROM pg_namespace WHERE nspname = $1", namespace)
    if nsp is None:
        raise LookupError(f"schema {namespace} does not exist")
    uq = lambda s: _unqualify(s, namespace)  # noqa: E731

    enums: dict[str, list[str]] = {}
    for row in await conn.fetch(
        "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels FROM pg_type t "
        "JOIN pg_enum e ON e.enumtypid = t.oid WHERE t.typnamespace = $1 GROUP BY t.typname", nsp):
        enums[row["typname"]] = list(row["labels"])

    tables: dict[str, Any] = {}
    for t in await conn.fetch(
        "SELECT c.oid, c.relname, c.relrowsecurity FROM pg_class c "
        "WHERE c.relnamespace = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname", nsp):
        columns = {}
        for col in await conn.fetch(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull, "
            "a.attgenerated, a.attidentity, pg_get_expr(d.adbin, d.adrelid) AS expr, a.attnum "
            "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", t["oid"]):
            fact = {"type": uq(col["type"]), "not_null": col["attnotnull"]}
            if _char(col["attgenerated"]) == "s":
                fact["generated"] = uq(col["expr"])
            elif col["expr"] is not None:
                fact["default"] = uq(col["expr"])
            if _char(col["attidentity"]).strip("\x00"):
                fact["identity"] = _char(col["attidentity"])
            columns[col["attname"]] = fact
        constraints = {}
        for con in await conn.fetch(
            "SELECT conname, contype, pg_get_constraintdef(oid) AS def FROM pg_constraint "
            "WHERE conrelid = $1 ORDER BY conname", t["oid"]):
            constraints[con["conname"]] = {"type": _char(con["contype"]), "definition": uq(con["def"])}
        indexes = {}
        for ix in await conn.fetch(
            "SELECT i.relname, pg_get_indexdef(x.indexrelid) AS def, "
            "EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid AND k.conrelid = x.indrelid) AS backs "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = $1 ORDER BY i.relname",
            t["oid"]):
            indexes[ix["relname"]] = {"definition": uq(ix["def"]), "constraint": ix["backs"]}
        triggers = sorted(r["tgname"] for r in await conn.fetch(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal", t["oid"]))
        tables[t["relname"]] = {
            "columns": columns, "constraints": constraints, "indexes": indexes,
            "row_level_security": t["relrowsecurity"], "triggers": triggers,
        }

    sequences = {}
    for s in await conn.fetch(
        "SELECT c.relname, format_type(q.seqtypid, NULL) AS type, "
        "(SELECT r.relname || '.' || a.attname FROM pg_depend d JOIN pg_class r ON r.oid = d.refobjid "
        " JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
        " WHERE d.objid = c.oid AND d.deptype IN ('a', 'i') AND d.classid = 'pg_class'::regclass LIMIT 1) AS owned_by "
        "FROM pg_class c JOIN pg_sequence q ON q.seqrelid = c.oid WHERE c.relnamespace = $1 ORDER BY c.relname", nsp):
        sequences[s["relname"]] = {"type": s["type"], "owned_by": s["owned_by"]}

    functions = {}
    for f in await conn.fetch(
        "SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args, "
        "pg_get_function_result(p.oid) AS result, l.lanname, p.provolatile, p.prokind "
        "FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.pronamespace = $1", nsp):
        functions[f"{f['proname']}({f['args']})"] = {
            "returns": uq(f["result"]), "language": f["lanname"],
            "volatility": {"s": "stable", "i": "immutable", "v": "volatile"}[_char(f["provolatile"])],
        }

    return {"enums": enums, "tables": tables, "sequences": sequences, "functions": functions}


def _char(value: Any) -> str:
    # asyncpg hands the one-byte "char" type out as bytes
    return value.decode() if isinstance(value, bytes) else value


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def differences(expected: dict[str, Any], actual: dict[str, Any], path: str = "") -> list[str]:
    """One line per fact that differs: missing (only expected), extra (only actual), or changed."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in expected.keys() | actual.keys():
            where = f"{path}.{key}" if path else key
            if key not in actual:
                out.append(f"missing {where}: {json.dumps(expected[key], sort_keys=True)[:300]}")
            elif key not in expected:
                out.append(f"extra {where}: {json.dumps(actual[key], sort_keys=True)[:300]}")
            else:
                out.extend(differences(expected[key], actual[key], where))
        return sorted(out)
    if expected != actual:
        return [f"differs {path}: upstream {json.dumps(expected)} but {json.dumps(actual)}"]
    return []


# --- building a schema from the description ------------------------------------------------------


def build_statements(facts: dict[str, Any], namespace: str) -> list[str]:
    """DDL that recreates the described schema (functions get placeholder bodies of the right
    signature: upstream's bodies are not part of the description)."""
    ns = quote_ident(namespace)
    out = [f"CREATE SCHEMA IF NOT EXISTS {ns}", f"SET search_path TO {ns}"]
    for name, labels in facts["enums"].items():
        values = ", ".join("'" + v.replace("'", "''") + "'" for v in labels)
        out.append(f"CREATE TYPE {quote_ident(name)} AS ENUM ({values})")
    for name, seq in facts["sequences"].items():
        out.append(f"CREATE SEQUENCE {quote_ident(name)} AS {seq['type']}")
    for name, table in facts["tables"].items():
        cols = []
        for col_name, col in table["columns"].items():
            text = f"{quote_ident(col_name)} {col['type']}"
            if "generated" in col:
                text += f" GENERATED ALWAYS AS ({col['generated']}) STORED"
            elif "default" in col:
                text += f" DEFAULT {col['default']}"
            if col["not_null"]:
                text += " NOT NULL"
            cols.append(text)
        out.append(f"CREATE TABLE {quote_ident(name)} (\n  " + ",\n  ".join(cols) + "\n)")
        if table["row_level_security"]:
            out.append(f"ALTER TABLE {quote_ident(name)} ENABLE ROW LEVEL SECURITY")
    for name, seq in facts["sequences"].items():
        if seq["owned_by"]:
            table, column = seq["owned_by"].split(".")
            out.append(f"ALTER SEQUENCE {quote_ident(name)} OWNED BY {quote_ident(table)}.{quote_ident(column)}")
    # primary keys and unique constraints before the foreign keys that need them
    for kinds in (("p", "u", "c", "x"), ("f",)):
        for name, table in facts["tables"].items():
            for con_name, con in table["constraints"].items():
                if con["type"] in kinds:
                    out.append(f"ALTER TABLE {quote_ident(name)} ADD CONSTRAINT {quote_ident(con_name)} "
                               f"{con['definition']}")
    for name, table in facts["tables"].items():
        for ix in table["indexes"].values():
            if not ix["constraint"]:
                out.append(ix["definition"])
    for signature, fn in facts["functions"].items():
        body = "SELECT NULL::" + fn["returns"]
        out.append(f"CREATE FUNCTION {ns}.{signature} RETURNS {fn['returns']} LANGUAGE sql "
                   f"{fn['volatility'].upper()} AS $$ {body} $$")
    return out


async def build(conn: asyncpg.Connection, namespace: str, facts: dict[str, Any] | None = None,
                versions: list[str] | None = None) -> None:
    """Create the described schema in `namespace` and record the migration versions as upstream does."""
    facts = facts or load()
    async with conn.transaction():
        for statement in build_statements(facts["schema"], namespace):
            await conn.execute(statement)
        for version in facts["versions"] if versions is None else versions:
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)


# --- generating the description from upstream's migrations ---------------------------------------


def _git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout


def upstream_migrations(repo: str, rev: str) -> list[tuple[str, str, str]]:
    """(version, file name, SQL template) of each up-migration at rev, in pop's order."""
    found = []
    for path in _git(repo, "ls-tree", "--name-only", f"{rev}:migrations").split():
        m = MIGRATION_NAME.match(path)
        if m:
            found.append((m.group(1), path, _git(repo, "show", f"{rev}:migrations/{path}")))
    # pop sorts by version as a string (Migrations.Less compares Version); the versions are
    # "00" then 14-digit timestamps, so string order is time order.
    return sorted(found)


async def _ensure_roles(admin: asyncpg.Connection) -> None:
    # Upstream's hack/init_postgres.sql; roles are cluster-wide, so create each only once.
    for statement in (
        "CREATE USER supabase_admin LOGIN CREATEROLE CREATEDB REPLICATION BYPASSRLS",
        "CREATE USER supabase_auth_admin NOINHERIT CREATEROLE LOGIN NOREPLICATION",
    ):
        try:
            await admin.execute(statement)
        except asyncpg.DuplicateObjectError:
            pass


async def run_upstream_migrations(dsn_template: str, database: str, namespace: str,
                                  migrations: list[tuple[str, str, str]]) -> None:
    """Apply migrations as upstream's migrator does, as supabase_auth_admin with search_path = namespace."""
    admin = await asyncpg.connect(dsn_template.format(user="postgres", database=database))
    try:
        await _ensure_roles(admin)
        await admin.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(namespace)} AUTHORIZATION supabase_auth_admin")
        await admin.execute(f'GRANT CREATE ON DATABASE "{database}" TO supabase_auth_admin')
    finally:
        await admin.close()
    conn = await asyncpg.connect(dsn_template.format(user="supabase_auth_admin", database=database),
                                 server_settings={"search_path": namespace})
    try:
        try:
            await conn.execute("select * from schema_migrations")
        except asyncpg.UndefinedTableError:
            async with conn.transaction():
                await conn.execute(POP_SCHEMA_MIGRATIONS)
        for version, _name, template in migrations:
            if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", version):
                continue
            sql = TEMPLATE.sub(namespace, template)
            async with conn.transaction():
                if sql.strip():
                    await conn.execute(sql)
                await conn.execute(f"insert into schema_migrations (version) values ('{version}')")
    finally:
        await conn.close()


async def generate(repo: str, rev: str, release: str) -> dict[str, Any]:
    migrations = upstream_migrations(repo, rev)
    database = f"gl_upstream_{uuid.uuid4().hex[:12]}"
    dsn = "postgresql://{user}@127.0.0.1:5432/{database}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        await run_upstream_migrations(dsn, database, "auth", migrations)
        conn = await asyncpg.connect(dsn.format(user="postgres", database=database))
        try:
            schema = await describe(conn, "auth")
            versions = [r["version"] for r in await conn.fetch("SELECT version FROM auth.schema_migrations ORDER BY version")]
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    commit = _git(repo, "rev-parse", rev).strip()
    return {
        "source": {"repository": "github.com/supabase/auth", "commit": commit, "release": release,
                   "migrations": len(migrations), "namespace": "auth",
                   "how": "tests/upstream_schema.py generate (see its docstring)"},
        "versions": versions,
        "schema": schema,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="apply upstream's migrations to a scratch database and describe it")
    gen.add_argument("--repo", required=True, help="git directory of github.com/supabase/auth")
    gen.add_argument("--rev", default="HEAD")
    gen.add_argument("--release", required=True, help="the release these migrations belong to, e.g. v2.196.0")
    gen.add_argument("--out", default=str(DATA_FILE))
    args = parser.parse_args(argv)
    facts = asyncio.run(generate(args.repo, args.rev, args.release))
    Path(args.out).write_text(json.dumps(facts, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {len(facts['schema']['tables'])} tables, {len(facts['versions'])} versions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
