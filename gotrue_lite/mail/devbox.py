"""The development mailbox: mail (and SMS, see sms/outbox.py) kept in the database instead of sent."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque

from .. import clock
from ..sms import normalise_phone
from ..store import dev_mail
from .links import extract_links
from .message import Message

log = logging.getLogger("gotrue_lite.mail")


def enabled(settings) -> bool:
    """GOTRUE_LITE_DEV_MAILBOX; its default (config.py) is on while there is no SMTP server and
    the API only listens on loopback (mail holds sign-in links: never serve it to the network unasked)."""
    return settings.lite.dev_mailbox


class DevMailbox:
    """Mail, and SMS while no SMS provider is set (sms/outbox.py), kept for the developer."""

    def __init__(self, db=None) -> None:
        self.db = db
        # Without a database (tests, tools) the newest entries stay in memory.
        self._memory: deque[dict] = deque(maxlen=dev_mail.KEEP)
        self._pending: set[asyncio.Task] = set()
        # One write at a time, so the cap holds exactly (Postgres would otherwise prune from
        # concurrent snapshots, each blind to the others' rows).
        self._write_lock = asyncio.Lock()

    async def put(self, message: Message, code: str | None = None) -> str:
        # Never the links or the code (nor the subject, which a template may fill with the
        # code): they sign people in, and logs travel further than the mailbox. The page shows them.
        log.info("dev mailbox: %s mail to %s; read it at /_dev/mail/", message.kind, message.to)
        return self._keep({
            "kind": message.kind, "channel": "email", "recipient": message.to,
            "subject": message.subject, "text_body": message.text, "html_body": message.html,
            "code": code or "",
        })

    async def put_sms(self, phone: str, text: str, channel: str, code: str) -> str:
        """Keep an SMS (`phone` normalised, digits only); returns its id."""
        log.info("dev outbox: %s to +%s; read it at /_dev/mail/", channel, phone)  # never the code
        return self._keep({
            "kind": channel, "channel": channel, "recipient": phone, "subject": "",
            "text_body": text, "html_body": "", "code": code or "",
        })

    def _keep(self, entry: dict) -> str:
        entry = {"id": str(uuid.uuid4()), "created_at": clock.now(), **entry}
        if self.db is None:
            self._memory.appendleft(entry)
            return entry["id"]
        # The flows send from inside their own transaction, and on SQLite that holds the one
        # write lock: writing here and now would wait for ourselves forever. So the row is
        # written as soon as that transaction ends, and readers wait for it (flush).
        task = asyncio.create_task(self._store(entry))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return entry["id"]

    async def _store(self, entry: dict) -> None:
        try:
            async with self._write_lock, self.db.transaction() as tx:
                await dev_mail.add(tx, entry)
        except Exception as exc:  # noqa: BLE001 - the flow has moved on; say so loudly
            log.error("dev mailbox: cannot store the %s %s to %s: %s", entry["kind"],
                      "mail" if entry["channel"] == "email" else "message", entry["recipient"], exc)

    async def flush(self) -> None:
        """Wait until every entry put so far is in the database."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def messages(self, email: str | None = None, limit: int = 100, phone: str | None = None) -> list[dict]:
        """Newest first: {id, created_at, kind, channel, to, subject, text, html, links, code};
        `email` or `phone` (any spelling upstream accepts: '+', spaces) picks one recipient."""
        await self.flush()
        recipient = email or (normalise_phone(phone) if phone else None)
        if self.db is None:
            rows = [r for r in self._memory
                    if recipient is None or r["recipient"].lower() == recipient.lower()][:limit]
        elif recipient:
            rows = await dev_mail.for_recipient(self.db, recipient, limit)
        else:
            rows = await dev_mail.latest(self.db, limit)
        return [{
            "id": str(row["id"]),
            "created_at": row["created_at"],
            "kind": row["kind"],
            "channel": row["channel"],
            "to": row["recipient"],
            "subject": row["subject"],
            "text": row["text_body"],
            "html": row["html_body"],
            "links": extract_links(row["html_body"], row["text_body"]),
            "code": row["code"] or None,
        } for row in rows]
