"""Textlocal's send API (POST /send, the API key in the form); SMS only."""

from __future__ import annotations

from . import SmsError
from .wire import Poster, text_of

ORIGIN = "https://api.textlocal.in"
_TEMPLATE_ERROR = 80  # India's registered-template check failed: upstream adds the text sent


def missing(cfg) -> str | None:
    if not cfg.api_key:
        return "missing Textlocal API key"
    if not cfg.sender:
        return "missing Textlocal sender"
    return None


class Textlocal:
    name = "textlocal"
    verifies_otp = False

    def __init__(self, cfg, poster: Poster) -> None:
        self._cfg = cfg
        self._poster = poster
        self._url = poster.url(ORIGIN, "/send")

    async def send(self, phone: str, message: str, channel: str, otp: str) -> str:
        if channel != "sms":
            raise SmsError(f'channel type "{channel}" is not supported for TextLocal')
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

    async def verify(self, phone: str, code: str) -> bool:
        return False
