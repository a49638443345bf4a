"""Outgoing SMS: one module per vendor behind the `Sender` interface, and the development outbox.

The rules in auth/ see only `Sms`: `send(phone, message, channel, otp)` returns the vendor's
message id or raises SmsError with the vendor's own words (upstream answers 422 sms_send_failed
with them); a provider that checks codes itself (twilio_verify) also answers `verify`.
"""

from __future__ import annotations

from typing import Protocol

from .. import metrics


def normalise_phone(phone: str) -> str:
    """A number as upstream stores, compares and sends it (phone.go formatPhoneNumber): one
    leading '+' and every space dropped, nothing else; validating it is the caller's business."""
    return phone.removeprefix("+").replace(" ", "")


class SmsError(Exception):
    """The vendor refused or could not be reached; str() is the text the client is shown."""


class Sender(Protocol):
    """One vendor (or the dev outbox). `phone` is normalised: digits only, no leading '+'."""

    name: str
    verifies_otp: bool  # True when the vendor generates and checks the code (twilio_verify)

    async def send(self, phone: str, message: str, channel: str, otp: str) -> str:
        """Deliver `message` (which contains `otp`) over `channel` ('sms' or 'whatsapp');
        return the vendor's message id."""
        ...

    async def verify(self, phone: str, code: str) -> bool:
        """Only for senders with verifies_otp: whether the vendor accepts `code` for `phone`."""
        ...


class Sms:
    """The server's SMS edge: the configured vendor, or the dev outbox, or nothing.

    Built by sms.factory.build; `problem` says why there is no sender (no provider named, an
    unknown one, or incomplete credentials in upstream's words).
    """

    def __init__(self, sender: Sender | None, problem: str | None = None) -> None:
        self.sender = sender
        self.problem = problem if sender is None else None

    @property
    def configured(self) -> bool:
        return self.sender is not None

    @property
    def verifies_otp(self) -> bool:
        return bool(self.sender and self.sender.verifies_otp)

    async def send(self, phone: str, message: str, channel: str, otp: str) -> str:
        if self.sender is None:
            raise SmsError("Unable to get SMS provider")
        metrics.count("sms_sent", provider=self.sender.name)
        try:
            return await self.sender.send(phone, message, channel, otp)
        except Exception:
            metrics.count("sms_errors", provider=self.sender.name)
            raise

    async def verify(self, phone: str, code: str) -> bool:
        if self.sender is None or not self.sender.verifies_otp:
            raise SmsError("Unable to get SMS provider")
        return await self.sender.verify(phone, code)
