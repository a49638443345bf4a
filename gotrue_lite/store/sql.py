"""Small builders for the INSERT/UPDATE statements the repositories write the same way."""

from __future__ import annotations

from typing import Any

from .base import Executor

NIL_UUID = "00000000-0000-0000-0000-000000000000"


def aliased(alias: str, names: list[str], prefix: str = "") -> str:
    """`alias.col AS prefixcol, …`: the columns of one table in a join, told apart by prefix."""
    return ", ".join(f"{alias}.{name} AS {prefix}{name}" for name in names)


def insert_sql(table: str, columns: list[str], returning: str = "") -> str:
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
    return f"{sql} RETURNING {returning}" if returning else sql


async def insert(ex: Executor, table: str, values: dict[str, Any], returning: str = "") -> Any:
    sql = insert_sql(table, list(values), returning)
    if returning:
        return await ex.fetch_one(sql, *values.values())
    return await ex.execute(sql, *values.values())


async def update(ex: Executor, table: str, key: str, key_value: Any, values: dict[str, Any]) -> int:
    """UPDATE one row by key. Column names come from code, never from a request."""
    assignments = ", ".join(f"{col} = ${i}" for i, col in enumerate(values, start=2))
    return await ex.execute(f"UPDATE {table} SET {assignments} WHERE {key} = $1", key_value, *values.values())
