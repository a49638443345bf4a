"""Vonage (Nexmo) SMS API (POST /sms/json, key and secret in the form); SMS only."""

from __future__ import annotations

from . import SmsError
from .wire import Poster, text_of

ORIGIN = "https://rest.nexmo.com"


def missing(cfg) -> str | None:
    if not cfg.api_key:
        return "missing Vonage API key"
    if not cfg.api_secret:
        return "missing Vonage API secret"
    if not cfg.sender:
        return "missing Vonage 'from' parameter"
    return None


class Vonage:
    name = "vonage"
    verifies_otp = False

    def __init__(self, cfg, poster: Poster) -> None:
        self._cfg = cfg
        self._poster = poster
        self._url = poster.url(ORIGIN, "/sms/json")

    async def send(self, phone: str, message: str, channel: str, otp: str) -> str:
        if channel != "sms":
            raise SmsError(f'channel type "{channel}" is not supported for Vonage')
        fields = {"from": self._cfg.sender, "to": phone, "text": message,
                  "api_key": self._cfg.api_key, "api_secret": self._cfg.api_secret}
        if not message.isascii():
            fields["type"] = "unicode"  # else Vonage sends GSM-7 and mangles the text
        # The HTTP status says nothing here: each message's status does ("0" is sent).
        doc = (await self._poster.form(self._url, fields)).object()
        messages = doc.get("messages") or []
        if not messages:
            raise SmsError("vonage error: Internal Error")
        first = messages[0] if isinstance(messages[0], dict) else {}
        message_id = text_of(first.get("message-id"))
        if first.get("status") != "0":
            raise SmsError(f"vonage error: {text_of(first.get('error-text'))} (status: "
                           f"{text_of(first.get('status'))}) for message {message_id}")
        return message_id

    async def verify(self, phone: str, code: str) -> bool:
        return False
