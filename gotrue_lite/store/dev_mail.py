"""SQL for gotrue_lite_dev_mail, the development mailbox (newest KEEP messages only)."""

from __future__ import annotations

import uuid
from datetime import datetime

from .. import clock
from .base import Executor
from .sql import insert

KEEP = 500
_COLUMNS = "id, created_at, kind, recipient, subject, text_body, html_body"


async def add(ex: Executor, message, created_at: datetime | None = None) -> str:
    """Store a sent Message; drops what falls beyond the newest KEEP. Returns the new id."""
    mail_id = str(uuid.uuid4())
    await insert(ex, "gotrue_lite_dev_mail", {
        "id": mail_id,
        "created_at": created_at or clock.now(),
        "kind": message.kind,
        "recipient": message.to,
        "subject": message.subject,
        "text_body": message.text,
        "html_body": message.html,
    })
    await ex.execute(
        "DELETE FROM gotrue_lite_dev_mail WHERE id NOT IN "
        "(SELECT id FROM gotrue_lite_dev_mail ORDER BY created_at DESC, id DESC LIMIT $1)",
        KEEP,
    )
    return mail_id


async def latest(ex: Executor, limit: int = 100) -> list[dict]:
    return await ex.fetch_all(
        f"SELECT {_COLUMNS} FROM gotrue_lite_dev_mail ORDER BY created_at DESC, id DESC LIMIT $1", limit)


async def for_recipient(ex: Executor, email: str, limit: int = 100) -> list[dict]:
    return await ex.fetch_all(
        f"SELECT {_COLUMNS} FROM gotrue_lite_dev_mail WHERE lower(recipient) = lower($1) "
        f"ORDER BY created_at DESC, id DESC LIMIT $2",
        email, limit,
    )
