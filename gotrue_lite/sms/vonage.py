"""Vonage (Nexmo) SMS API (POST /sms/json, key and secret in the form); SMS only."""

from __future__ import annotations

from . import SmsError
from .wire import Vendor, text_of

class Vonage(Vendor):
    name, label = "vonage", "Vonage"
    origin, path = "https://rest.nexmo.com", "/sms/json"
    required = (("api_key", "missing Vonage API key"), ("api_secret", "missing Vonage API secret"),
                ("sender", "missing Vonage 'from' parameter"))

    async def send(self, phone: str, message: str, channel: str, otp: str) -> str:
        self.check_channel(channel)
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
