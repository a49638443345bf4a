"""SQL behind the admin API: paged user and audit listings, deleting users."""

from __future__ import annotations

from typing import Any

from ..models import User
from .base import Executor
from .sql import aliased
from .users import USER_COLUMNS

_PAGE_COLUMNS = aliased("u", USER_COLUMNS.split(", "))

# Far beyond any real table, and inside both databases' signed 64-bit LIMIT/OFFSET.
_MAX_ROWS = 2 ** 62


def _json_text(dialect: str, column: str, key: str) -> str:
    """`column ->> key` as text. Keys come from code, never from a request."""
    if dialect == "postgres":
        return f"{column}->>'{key}'"
    return f"json_extract({column}, '$.{key}')"


def _contains(dialect: str, haystack: str, placeholder: str) -> str:
    """A literal, case-sensitive substring test (LIKE would read % and _ in the needle)."""
    if dialect == "postgres":
        return f"strpos({haystack}, {placeholder}) > 0"
    return f"instr({haystack}, {placeholder}) > 0"


def _window(limit: int, offset: int) -> tuple[int, int]:
    return min(limit, _MAX_ROWS), min(offset, _MAX_ROWS)


async def list_users(db, aud: str, *, needle: str, descending: bool, limit: int,
                     offset: int, email: str = "") -> tuple[list[User], int]:
    """One page of an audience's users and the audience's (filtered) total.

    `needle` is a substring of the email (case-sensitive, as upstream's LIKE) or of
    user_metadata.full_name (case-insensitive, as upstream's ILIKE). The rows come from
    users_aud_created_at_id_idx; relations are not loaded, as upstream does not load them.
    """
    where, args = "aud = $1", [aud]
    if email:
        # Emails are stored lower-cased: equality uses users_email_partial_key.
        where += f" AND email = ${len(args) + 1} AND is_sso_user = false"
        args.append(email)
    if needle:
        full_name = _json_text(db.dialect, "raw_user_meta_data", "full_name")
        mark = f"${len(args) + 1}"
        where += (f" AND ({_contains(db.dialect, 'email', mark)}"
                  f" OR {_contains(db.dialect, f'lower({full_name})', f'lower({mark})')})")
        args.append(needle)
    direction = "DESC" if descending else "ASC"
    limit, offset = _window(limit, offset)
    n = len(args)
    if email:
        # One email names one user at most: no order to keep, so the unique email index serves it.
        page = f"SELECT {USER_COLUMNS} FROM users WHERE {where} LIMIT ${n + 1} OFFSET ${n + 2}"
    else:
        # The rows skipped by OFFSET are walked in users_aud_created_at_id_idx alone; only the
        # page's own rows are read from the table.
        page = (f"SELECT {_PAGE_COLUMNS} FROM "
                f"(SELECT id, created_at FROM users WHERE {where} ORDER BY created_at {direction}, id {direction} "
                f"LIMIT ${n + 1} OFFSET ${n + 2}) AS p JOIN users u ON u.id = p.id "
                f"ORDER BY p.created_at {direction}, p.id {direction}")
    rows = await db.fetch_all(page, *args, limit, offset)
    if email or needle:
        total = await db.fetch_val(f"SELECT count(*) FROM users WHERE {where}", *args)
    else:
        # Kept by triggers (schema 0004_user_counts): one row, however large the audience.
        total = await db.fetch_val("SELECT total FROM gotrue_lite_user_counts WHERE aud = $1", aud)
    return [User.from_row(r) for r in rows], int(total or 0)


async def list_audit(db, *, keys: tuple[str, ...], needle: str, limit: int,
                     offset: int) -> tuple[list[dict[str, Any]], int]:
    """One page of audit entries, newest first, whose payload `keys` contain `needle`
    (case-insensitively), and the number of such entries."""
    where, args = "", []
    if keys and needle:
        tests = [_contains(db.dialect, f"lower({_json_text(db.dialect, 'payload', key)})", "lower($1)")
                 for key in keys]
        where, args = f"WHERE ({' OR '.join(tests)})", [needle]
    limit, offset = _window(limit, offset)
    n = len(args)
    rows = await db.fetch_all(
        f"SELECT id, payload, created_at, ip_address FROM audit_log_entries {where} "
        f"ORDER BY created_at DESC, id DESC LIMIT ${n + 1} OFFSET ${n + 2}",
        *args, limit, offset,
    )
    total = await db.fetch_val(f"SELECT count(*) FROM audit_log_entries {where}", *args)
    return rows, int(total or 0)


async def delete_user(tx: Executor, user_id: str) -> None:
    """Hard delete: identities, sessions (with their refresh tokens and AMR claims), factors
    (with their challenges) and one-time tokens go by ON DELETE CASCADE."""
    await tx.execute("DELETE FROM users WHERE id = $1", user_id)


async def obfuscate_identity(tx: Executor, identity_id: str, provider_id: str) -> None:
    """Soft delete of an identity: its data wiped, its provider id replaced."""
    await tx.execute("UPDATE identities SET identity_data = $2, provider_id = $3 WHERE id = $1",
                     identity_id, {}, provider_id)
