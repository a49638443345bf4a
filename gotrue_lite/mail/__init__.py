"""Outgoing mail: renders the templates and sends through SMTP, the dev mailbox, or nowhere."""

from __future__ import annotations

import logging

import aiohttp
from aiohttp import web

from .. import metrics
from . import devbox, smtp
from .links import action_link, extract_links
from .message import MailError, Message
from .templates import DEFAULT_SUBJECTS, KINDS, LINK_KINDS, NOTIFICATION_KINDS, Templates

__all__ = [
    "KINDS", "LINK_KINDS", "MAILER", "NOTIFICATION_KINDS", "MailError", "Mailer", "Message",
    "action_link", "extract_links",
]

log = logging.getLogger("gotrue_lite.mail")


class Mailer:
    """One per server. `send` renders a mail kind and delivers it; MailError when that fails."""

    def __init__(self, settings, db=None, http: aiohttp.ClientSession | None = None) -> None:
        self.settings = settings
        self.dev_mailbox: bool = devbox.enabled(settings)
        self._http = http
        self._own_http = http is None
        self._box = devbox.DevMailbox(db)
        self._templates = Templates(settings, self._session)

    @property
    def db(self):
        return self._box.db

    @db.setter
    def db(self, database) -> None:
        # The app may build the Mailer before its database is open.
        self._box.db = database

    def use_http(self, http: aiohttp.ClientSession) -> None:
        """Fetch remote templates through the app's shared client (outbound.py) from now on."""
        self._http, self._own_http = http, False

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
            self._own_http = True
        return self._http

    async def start(self) -> None:
        """Load the shipped templates and say where mail goes; an unusable SMTP server is
        logged, never raised: the server still starts (as upstream, which only fails sends)."""
        try:
            await self._templates.load_defaults()
        except Exception as exc:  # noqa: BLE001 - sends will report it as MailError
            log.error("cannot load the mail templates: %s", exc)
        self._templates.prefetch()
        smtp_settings = self.settings.smtp
        if self.dev_mailbox:
            if smtp_settings.host:
                log.warning("GOTRUE_LITE_DEV_MAILBOX is on: mail is kept in the dev mailbox, "
                            "not sent to the SMTP server %s", smtp_settings.host)
            log.info("dev mailbox on: mail is not sent; read it at GET /_dev/mail (JSON) or /_dev/mail/")
        elif smtp_settings.host:
            checked = await smtp.probe(self.settings)
            if checked.problem:
                log.warning("SMTP check failed, mail will not be delivered until this is fixed: %s", checked.problem)
            else:
                if checked.unauthenticated:
                    log.warning("GOTRUE_SMTP_USER is set but the SMTP server %s:%d offers no AUTH: mail is sent "
                                "without logging in", smtp_settings.host, smtp_settings.port)
                log.info("SMTP server %s:%d reachable", smtp_settings.host, smtp_settings.port)
        else:
            log.info("no GOTRUE_SMTP_HOST: mail is dropped (the dev mailbox is off: set "
                     "GOTRUE_LITE_DEV_MAILBOX=true to keep it)")

    async def templates_settled(self) -> None:
        """Wait until background template fetches are done (tests)."""
        await self._templates.settled()

    async def close(self) -> None:
        """Before the database closes: finishes writing the dev mailbox."""
        await self._templates.cancel()
        await self._box.flush()
        if self._own_http and self._http is not None and not self._http.closed:
            await self._http.close()
        self._http = None

    async def render(self, kind: str, to: str, variables: dict) -> Message:
        """The message `send` would deliver, without delivering it."""
        if kind not in DEFAULT_SUBJECTS:
            raise ValueError(f"unknown mail kind {kind!r}")
        values = dict(variables)
        values.setdefault("SiteURL", self.settings.site_url)
        try:
            subject, text, html = await self._templates.render(kind, values, to)
        except Exception as exc:  # noqa: BLE001 - e.g. the shipped templates are missing
            raise MailError(f"cannot render the {kind} mail: {exc}") from exc
        headers = smtp.headers_for(self.settings, kind, to, subject)
        return Message(kind=kind, to=to, subject=subject, text=text, html=html, headers=headers)

    async def send(self, kind: str, to: str, variables: dict) -> Message:
        # As upstream: every send operation is counted, and its failures once more.
        metrics.count("mails_sent", type=kind)
        try:
            return await self._send(kind, to, variables)
        except Exception:
            metrics.count("mail_errors", type=kind)
            raise

    async def _send(self, kind: str, to: str, variables: dict) -> Message:
        message = await self.render(kind, to, variables)
        if self.dev_mailbox:
            await self._box.put(message, code=variables.get("Token") or None)
        elif self.settings.smtp.host:
            try:
                email = smtp.build(self.settings, message)
            except (ValueError, TypeError) as exc:  # e.g. a malformed GOTRUE_SMTP_HEADERS name
                raise MailError(f"cannot build the {kind} mail to {to}: {exc}") from exc
            await smtp.deliver(self.settings, email, to)
            if self.settings.smtp.logging_enabled:
                log.info("mail.send: %s mail from %s to %s", smtp.message_type(kind),
                         message.headers.get("From", ""), to)
        else:
            log.debug("no SMTP host and no dev mailbox: %s mail to %s dropped", kind, to)
        return message

    @property
    def dev_box(self) -> devbox.DevMailbox | None:
        """The dev mailbox while it is on (the SMS dev outbox keeps its messages there too)."""
        return self._box if self.dev_mailbox else None

    async def dev_messages(self, email: str | None = None, limit: int = 100,
                           phone: str | None = None) -> list[dict]:
        """The dev mailbox, newest first (see devbox.DevMailbox.messages)."""
        return await self._box.messages(email, limit, phone)


MAILER = web.AppKey("mailer", Mailer)
