"""The mail package's value types: a rendered message and the error a failed send raises."""

from __future__ import annotations

from dataclasses import dataclass


class MailError(Exception):
    """Sending failed (server unreachable, credentials refused, message rejected)."""


@dataclass(frozen=True)
class Message:
    kind: str
    to: str
    subject: str
    text: str
    html: str
    headers: dict  # From, To, Subject and the GOTRUE_SMTP_HEADERS extras, as sent
