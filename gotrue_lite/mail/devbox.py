"""The development mailbox: messages kept in the database (or memory) instead of being sent."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque

from .. import clock
from ..store import dev_mail
from .links import extract_links
from .message import Message

log = logging.getLogger("gotrue_lite.mail")


def enabled(settings) -> bool:
    """GOTRUE_LITE_DEV_MAILBOX; its default (config.py) is on while there is no SMTP server and
    the API only listens on loopback (mail holds sign-in links: never serve it to the network unasked)."""
    return settings.lite.dev_mailbox


class DevMailbox:
    def __init__(self, db=None) -> None:
        self.db = db
        # Without a database (tests, tools) the newest messages stay in memory.
        self._memory: deque[dict] = deque(maxlen=dev_mail.KEEP)
        self._pending: set[asyncio.Task] = set()
        # One write at a time, so the cap holds exactly (Postgres would otherwise prune from
        # concurrent snapshots, each blind to the others' rows).
        self._write_lock = asyncio.Lock()

    async def put(self, message: Message, code: str | None = None) -> None:
        links = extract_links(message.html, message.text)
        log.info("dev mailbox: %s mail to %s, subject %r; links: %s%s", message.kind, message.to,
                 message.subject, " ".join(links) or "none", f"; code: {code}" if code else "")
        if self.db is None:
            self._memory.appendleft({
                "id": str(uuid.uuid4()), "created_at": clock.now(), "kind": message.kind,
                "recipient": message.to, "subject": message.subject,
                "text_body": message.text, "html_body": message.html,
            })
            return
        # The flows send from inside their own transaction, and on SQLite that holds the one
        # write lock: writing here and now would wait for ourselves forever. So the row is
        # written as soon as that transaction ends, and readers wait for it (flush).
        task = asyncio.create_task(self._store(message, clock.now()))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _store(self, message: Message, created_at) -> None:
        try:
            async with self._write_lock, self.db.transaction() as tx:
                await dev_mail.add(tx, message, created_at)
        except Exception as exc:  # noqa: BLE001 - the flow has moved on; say so loudly
            log.error("dev mailbox: cannot store the %s mail to %s: %s", message.kind, message.to, exc)

    async def flush(self) -> None:
        """Wait until every message put so far is in the database."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def messages(self, email: str | None = None, limit: int = 100) -> list[dict]:
        """Newest first: {id, created_at, kind, to, subject, text, html, links}."""
        await self.flush()
        if self.db is None:
            rows = [r for r in self._memory if email is None or r["recipient"].lower() == email.lower()][:limit]
        elif email:
            rows = await dev_mail.for_recipient(self.db, email, limit)
        else:
            rows = await dev_mail.latest(self.db, limit)
        return [{
            "id": row["id"],
            "created_at": row["created_at"],
            "kind": row["kind"],
            "to": row["recipient"],
            "subject": row["subject"],
            "text": row["text_body"],
            "html": row["html_body"],
            "links": extract_links(row["html_body"], row["text_body"]),
        } for row in rows]
