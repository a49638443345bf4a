"""SQL for one_time_tokens, the index of outstanding confirmation/recovery/… token hashes."""

from __future__ import annotations

import uuid

from .. import clock
from .base import Executor
from .sql import insert


async def replace(ex: Executor, user_id: str, token_type: str, token_hash: str, relates_to: str) -> None:
    """Store the user's one outstanding token of this type, dropping the previous one."""
    await ex.execute("DELETE FROM one_time_tokens WHERE user_id = $1 AND token_type = $2", user_id, token_type)
    now = clock.now()
    await insert(ex, "one_time_tokens", {
        "id": str(uuid.uuid4()),
        "user_id": user_id,
        "token_type": token_type,
        "token_hash": token_hash,
        "relates_to": relates_to.lower(),
        "created_at": now,
        "updated_at": now,
    })


async def find(ex: Executor, hashes: tuple[str, ...], token_types: tuple[str, ...]) -> list[dict]:
    """Outstanding tokens whose hash is one of `hashes` and whose type is one of `token_types`."""
    values = (*hashes, *token_types)
    hash_marks = ", ".join(f"${i}" for i in range(1, len(hashes) + 1))
    type_marks = ", ".join(f"${i}" for i in range(len(hashes) + 1, len(values) + 1))
    return await ex.fetch_all(
        f"SELECT id, user_id, token_type, token_hash, relates_to FROM one_time_tokens "
        f"WHERE token_hash IN ({hash_marks}) AND token_type IN ({type_marks})",
        *values,
    )


async def delete_for_user(ex: Executor, user_id: str, token_type: str | None = None) -> None:
    if token_type is None:
        await ex.execute("DELETE FROM one_time_tokens WHERE user_id = $1", user_id)
    else:
        await ex.execute("DELETE FROM one_time_tokens WHERE user_id = $1 AND token_type = $2", user_id, token_type)
