"""Twilio Verify: Twilio makes the code, sends it (SMS or WhatsApp) and checks it."""

from __future__ import annotations

import logging

from . import SmsError
from .twilio import TWILIO_REQUIRED, error_text
from .wire import Poster, Vendor, basic_auth, text_of

log = logging.getLogger("gotrue_lite.sms")

class TwilioVerify(Vendor):
    name, label = "twilio_verify", "Twilio"
    verifies_otp = True
    origin = "https://verify.twilio.com"
    channels = ("sms", "whatsapp")
    required = TWILIO_REQUIRED  # the same credentials and error document as Twilio's

    def __init__(self, cfg, poster: Poster) -> None:
        super().__init__(cfg, poster)  # self._url: the Verifications endpoint
        self._auth = basic_auth(cfg.account_sid, cfg.auth_token)
        self._check_url = poster.url(self.origin, f"/v2/Services/{cfg.message_service_sid}/VerificationCheck")

    def path_for(self, cfg) -> str:
        return f"/v2/Services/{cfg.message_service_sid}/Verifications"

    async def send(self, phone: str, message: str, channel: str, otp: str) -> str:
        # No text and no code of ours: Twilio writes the message. No whatsapp: prefix here.
        self.check_channel(channel)
        answer = await self._poster.form(self._url, {"To": "+" + phone, "Channel": channel}, self._auth)
        if answer.status not in (200, 201):
            raise SmsError(error_text(answer))
        return text_of(answer.object().get("sid"))

    async def verify(self, phone: str, code: str) -> bool:
        """Whether Twilio approves `code`. Every failure (a wrong or expired code, Twilio's error
        answer, no answer at all) is False, as upstream turns each into 403 otp_expired; the
        reason goes to the log."""
        try:
            answer = await self._poster.form(self._check_url, {"To": "+" + phone, "Code": code}, self._auth)
            if answer.status not in (200, 201):
                raise SmsError(error_text(answer))
            doc = answer.object()
            if doc.get("status") != "approved" or doc.get("valid") is not True:
                raise SmsError(f"twilio verification error: {text_of(doc.get('error_message'))} "
                               f"{text_of(doc.get('status'))}")
        except SmsError as exc:
            log.info("twilio_verify: code for +%s not accepted: %s", phone, exc)
            return False
        return True
