"""SQL for PostgreSQL function hooks: calling the configured function, and checking it exists."""

from __future__ import annotations

from typing import Any

from .base import Executor


def _name(schema: str, function: str) -> str:
    # Quoted as upstream builds HookName (%q.%q); the config check allows [A-Za-z_][A-Za-z0-9_]* only.
    return f'"{schema}"."{function}"'


async def call_function(tx: Executor, schema: str, function: str, payload: dict[str, Any],
                        timeout_ms: int) -> str | None:
    """The function's answer as JSON text, run under a statement_timeout local to the transaction
    (upstream's guard against a function that never returns), then back to the default."""
    await tx.execute(f"SET LOCAL statement_timeout TO '{int(timeout_ms)}'")
    # The argument's type comes from the function's signature (json or jsonb); ::text hands back
    # the answer as the bytes upstream parses, so garbage is judged in one place for both kinds.
    answer = await tx.fetch_val(f"SELECT {_name(schema, function)}($1)::text", payload)
    await tx.execute("SET LOCAL statement_timeout TO DEFAULT")
    return answer


async def function_exists(db: Executor, schema: str, function: str) -> bool:
    return bool(await db.fetch_val(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n "
        "ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = $2)", schema, function))
