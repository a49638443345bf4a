"""MessageBird's SMS API (POST /messages, AccessKey auth); SMS only."""

from __future__ import annotations

from . import SmsError
from .wire import Vendor, text_of

# Only these statuses carry MessageBird's error document; upstream reads any other answer
# (5xx included) as a message whose recipients count tells whether it went out.
_ERROR_STATUSES = (400, 401, 403, 422)


class Messagebird(Vendor):
    name, label = "messagebird", "Messagebird"
    origin, path = "https://rest.messagebird.com", "/messages"
    required = (("access_key", "missing Messagebird access key"), ("originator", "missing Messagebird originator"))

    async def send(self, phone: str, message: str, channel: str, otp: str) -> str:
        self.check_channel(channel)
        fields = {"originator": self._cfg.originator, "body": message, "recipients": phone,
                  "type": "sms", "datacoding": "unicode"}
        answer = await self._poster.form(self._url, fields, {"Authorization": f"AccessKey {self._cfg.access_key}"})
        doc = answer.object()
        if answer.status in _ERROR_STATUSES:
            errors = doc.get("errors") or []
            if not errors:
                # Upstream's error method indexes an empty list; Go's formatter prints this.
                raise SmsError("%!v(PANIC=Error method: runtime error: index out of range [0] with length 0)")
            first = errors[0] if isinstance(errors[0], dict) else {}
            raise SmsError(text_of(first.get("description")))
        recipients = doc.get("recipients") or {}
        if not isinstance(recipients, dict) or not recipients.get("totalSentCount"):
            raise SmsError("messagebird error: total sent count is 0")
        return text_of(doc.get("id"))
