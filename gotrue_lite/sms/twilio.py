"""Twilio Programmable Messaging (the Messages API): SMS, and WhatsApp with `whatsapp:` addresses."""

from __future__ import annotations

import re

from . import SmsError
from .wire import Answer, Poster, Vendor, basic_auth, text_of

_E164_DIGITS = re.compile(r"^[1-9][0-9]{1,14}$")


def error_text(answer: Answer) -> str:
    """Twilio's error document {code, message, more_info, status}, as upstream words it."""
    doc = answer.object()
    return f"{text_of(doc.get('message'))} More information: {text_of(doc.get('more_info'))}"


def _looks_like_number(sender: str) -> bool:
    # A sender that is a phone number gets the whatsapp: prefix; a Messaging Service SID does not.
    return bool(_E164_DIGITS.match(sender.removeprefix("+").replace(" ", "")))


# Upstream's check of the credentials, with its words (shared by twilio_verify).
TWILIO_REQUIRED = (("account_sid", "missing Twilio account SID"), ("auth_token", "missing Twilio auth token"),
                   ("message_service_sid", "missing Twilio message service SID or Twilio phone number"))


class Twilio(Vendor):
    name, label = "twilio", "Twilio"
    origin = "https://api.twilio.com"
    channels = ("sms", "whatsapp")
    required = TWILIO_REQUIRED

    def __init__(self, cfg, poster: Poster) -> None:
        super().__init__(cfg, poster)
        self._auth = basic_auth(cfg.account_sid, cfg.auth_token)

    def path_for(self, cfg) -> str:
        return f"/2010-04-01/Accounts/{cfg.account_sid}/Messages.json"

    def fields(self, phone: str, message: str, channel: str, otp: str) -> dict[str, str]:
        sender, receiver = self._cfg.message_service_sid, "+" + phone
        if channel != "whatsapp":
            return {"To": receiver, "Channel": channel, "From": sender, "Body": message}
        if _looks_like_number(sender):
            sender = "whatsapp:" + sender
        fields = {"To": "whatsapp:" + receiver, "Channel": channel, "From": sender}
        if self._cfg.content_sid:
            # A pre-approved WhatsApp authentication template: Twilio fills in {{1}} itself.
            fields["ContentSid"] = self._cfg.content_sid
            fields["ContentVariables"] = '{"1": "%s"}' % otp
        else:
            fields["Body"] = message
        return fields

    async def send(self, phone: str, message: str, channel: str, otp: str) -> str:
        self.check_channel(channel)
        answer = await self._poster.form(self._url, self.fields(phone, message, channel, otp), self._auth)
        if answer.status not in (200, 201):
            raise SmsError(error_text(answer))
        doc = answer.object()
        sid = text_of(doc.get("sid"))
        if doc.get("status") in ("failed", "undelivered"):
            raise SmsError(f"twilio error: {text_of(doc.get('error_message'))} "
                           f"{text_of(doc.get('error_code'))} for message {sid}")
        return sid
