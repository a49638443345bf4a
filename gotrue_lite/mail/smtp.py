"""Building the MIME message and handing it to the SMTP server with aiosmtplib."""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import aiosmtplib

from .. import clock
from .message import MailError

log = logging.getLogger("gotrue_lite.mail")

SEND_TIMEOUT = 10.0  # seconds per SMTP step
PROBE_TIMEOUT = 5.0
# Structure headers belong to the MIME builder; an extra header must not break the message.
_RESERVED = {"content-type", "content-transfer-encoding", "mime-version"}


def helo_name(settings) -> str:
    """The EHLO/HELO name: the host of API_EXTERNAL_URL, as upstream."""
    try:
        return urlsplit(settings.api.external_url).hostname or "localhost"
    except ValueError:
        return "localhost"


def from_address(settings) -> str:
    smtp = settings.smtp
    if not smtp.sender_name or not smtp.admin_email:
        return smtp.admin_email
    name = smtp.sender_name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{name}" <{smtp.admin_email}>'


def message_type(kind: str) -> str:
    # Upstream names the reauthentication mail "reauthenticate" in $messageType.
    return "reauthenticate" if kind == "reauthentication" else kind


def extra_headers(settings, kind: str) -> dict[str, str]:
    """GOTRUE_SMTP_HEADERS with $messageType filled in; several values share one header line."""
    headers: dict[str, str] = {}
    for name, values in settings.smtp.headers.items():
        name = name.strip()
        if not name or name.lower() in _RESERVED:
            continue
        kept = [v.replace("$messageType", message_type(kind)) for v in values if v]
        headers[name] = ", ".join(kept)
    return headers


def headers_for(settings, kind: str, to: str, subject: str) -> dict[str, str]:
    """From, To, Subject and the extra headers of one mail."""
    headers = {"From": from_address(settings), "To": to, "Subject": subject}
    for name, value in extra_headers(settings, kind).items():
        # Like upstream's SetHeader, an extra header replaces ours of the same name.
        for existing in [k for k in headers if k.lower() == name.lower()]:
            del headers[existing]
        headers[name] = value
    return headers


def build(settings, message) -> EmailMessage:
    """The multipart/alternative (text, then HTML) MIME message for a Message."""
    email = EmailMessage()
    for name, value in message.headers.items():
        if value:
            email[name] = value
    email["Date"] = format_datetime(clock.now())
    # An explicit domain: make_msgid would otherwise look the local host name up (blocking).
    email["Message-ID"] = make_msgid(domain=helo_name(settings))
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    return email


def implicit_tls(settings) -> bool:
    choice = settings.lite.smtp_implicit_tls
    return settings.smtp.port == 465 if choice is None else choice


def connection_options(settings, timeout: float) -> dict[str, Any]:
    smtp = settings.smtp
    tls = implicit_tls(settings)
    return {
        "hostname": smtp.host,
        "port": smtp.port,
        "local_hostname": helo_name(settings),
        "use_tls": tls,
        "start_tls": False if tls else None,  # None: STARTTLS whenever the server offers it
        "validate_certs": settings.lite.smtp_tls_verify,
        "timeout": timeout,
    }


def _why(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}".strip()
    text = str(exc).strip()
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


async def _greet(client: aiosmtplib.SMTP) -> None:
    """EHLO (HELO for a server that knows no EHLO), so that its extensions are known."""
    if not client.is_ehlo_or_helo_needed:
        return
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError:
        await client.helo()


async def _open(settings, client: aiosmtplib.SMTP) -> bool:
    """Connect and, with SMTP_USER set, log in if the server offers AUTH (as upstream's gomail
    Dialer, which sends unauthenticated otherwise); or MailError. True when logged in."""
    smtp = settings.smtp
    where = f"{smtp.host}:{smtp.port}"
    try:
        await client.connect()
        if smtp.user:
            await _greet(client)
    except (aiosmtplib.SMTPException, OSError) as exc:
        await _close(client)
        raise MailError(f"cannot connect to the SMTP server {where}: {_why(exc)}") from None
    if not smtp.user or not client.supports_extension("auth"):
        return False
    try:
        await client.login(smtp.user, smtp.password)
    except aiosmtplib.SMTPAuthenticationError as exc:
        await _close(client)
        raise MailError(f"the SMTP server {where} refused the login of user {smtp.user!r}: {_why(exc)}") from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        await _close(client)
        raise MailError(f"cannot log in to the SMTP server {where} as {smtp.user!r}: {_why(exc)}") from None
    return True


async def _close(client: aiosmtplib.SMTP) -> None:
    if not client.is_connected:
        return
    try:
        await client.quit()
    except Exception:  # noqa: BLE001 - the message is already handed over (or lost anyway)
        client.close()


async def deliver(settings, email: EmailMessage, to: str) -> None:
    """One connection per message, as upstream; any failure is a MailError."""
    smtp = settings.smtp
    client = aiosmtplib.SMTP(**connection_options(settings, SEND_TIMEOUT))
    await _open(settings, client)
    try:
        await client.send_message(email, sender=smtp.admin_email, recipients=[to])
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise MailError(f"the SMTP server {smtp.host}:{smtp.port} did not take the message for {to}: "
                        f"{_why(exc)}") from None
    finally:
        await _close(client)


class Probe(NamedTuple):
    problem: str | None  # why the server cannot be used; None when connect (+ login) works
    unauthenticated: bool  # SMTP_USER is set but the server offers no AUTH: mail goes without login


async def probe(settings) -> Probe:
    """Connect (and log in) once, as a send would."""
    smtp = settings.smtp
    client = aiosmtplib.SMTP(**connection_options(settings, PROBE_TIMEOUT))
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            logged_in = await _open(settings, client)
            await _close(client)
    except MailError as exc:
        return Probe(str(exc), False)
    except TimeoutError:
        client.close()
        return Probe(f"no answer from the SMTP server {smtp.host}:{smtp.port} within {PROBE_TIMEOUT:g} s", False)
    return Probe(None, bool(smtp.user) and not logged_in)
