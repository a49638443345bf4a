"""SQL for gotrue_lite_dev_mail, the development mailbox and SMS outbox (newest KEEP entries only)."""

from __future__ import annotations

from .base import Executor
from .sql import insert

KEEP = 500
COLUMNS = ("id", "created_at", "kind", "channel", "recipient", "subject", "text_body", "html_body", "code")
_SELECT = ", ".join(COLUMNS)


async def add(ex: Executor, entry: dict) -> None:
    """Store one entry (a row with COLUMNS); drops what falls beyond the newest KEEP."""
    await insert(ex, "gotrue_lite_dev_mail", {name: entry[name] for name in COLUMNS})
    await ex.execute(
        "DELETE FROM gotrue_lite_dev_mail WHERE id NOT IN "
        "(SELECT id FROM gotrue_lite_dev_mail ORDER BY created_at DESC, id DESC LIMIT $1)",
        KEEP,
    )


async def latest(ex: Executor, limit: int = 100) -> list[dict]:
    return await ex.fetch_all(
        f"SELECT {_SELECT} FROM gotrue_lite_dev_mail ORDER BY created_at DESC, id DESC LIMIT $1", limit)


async def for_recipient(ex: Executor, recipient: str, limit: int = 100) -> list[dict]:
    """An e-mail address (any case) or a normalised phone number."""
    return await ex.fetch_all(
        f"SELECT {_SELECT} FROM gotrue_lite_dev_mail WHERE lower(recipient) = lower($1) "
        f"ORDER BY created_at DESC, id DESC LIMIT $2",
        recipient, limit,
    )
