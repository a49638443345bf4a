"""Textlocal's send API (POST /send, the API key in the form); SMS only."""

from __future__ import annotations

from . import SmsError
from .wire import Vendor, text_of

_TEMPLATE_ERROR = 80  # India's registered-template check failed: upstream adds the text sent


class Textlocal(Vendor):
    name, label = "textlocal", "TextLocal"
    origin, path = "https://api.textlocal.in", "/send"
    required = (("api_key", "missing Textlocal API key"), ("sender", "missing Textlocal sender"))

    async def send(self, phone: str, message: str, channel: str, otp: str) -> str:
        self.check_channel(channel)
        fields = {"sender": self._cfg.sender, "apikey": self._cfg.api_key, "message": message, "numbers": phone}
        # The HTTP status says nothing here: the document's status does.
        doc = (await self._poster.form(self._url, fields)).object()
        if doc.get("status") == "success":
            return ""  # upstream reads the message id only on failure
        messages = doc.get("messages") or []
        message_id = text_of(messages[0].get("id")) if messages and isinstance(messages[0], dict) else ""
        errors = [e for e in doc.get("errors") or [] if isinstance(e, dict)]
        if not errors:
            # Upstream crashes on this (500); a plain refusal says more.
            raise SmsError(f"textlocal error: status {text_of(doc.get('status'))!r} without errors "
                           f"message {message_id}")
        error, code = text_of(errors[0].get("message")), text_of(errors[0].get("code"))
        if errors[0].get("code") == _TEMPLATE_ERROR:
            raise SmsError(f"textlocal error: {error} (code: {code}) template message: {message}")
        raise SmsError(f"textlocal error: {error} (code: {code}) message {message_id}")
