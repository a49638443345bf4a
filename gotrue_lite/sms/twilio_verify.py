"""Twilio Verify: Twilio makes the code, sends it (SMS or WhatsApp) and checks it."""

from __future__ import annotations

import logging

from . import SmsError
from .twilio import error_text, missing  # noqa: F401 - the same credentials and error document
from .wire import Poster, basic_auth, text_of

log = logging.getLogger("gotrue_lite.sms")

ORIGIN = "https://verify.twilio.com"


class TwilioVerify:
    name = "twilio_verify"
    verifies_otp = True

    def __init__(self, cfg, poster: Poster) -> None:
        self._poster = poster
        self._auth = basic_auth(cfg.account_sid, cfg.auth_token)
        service = f"/v2/Services/{cfg.message_service_sid}"
        self._start_url = poster.url(ORIGIN, service + "/Verifications")
        self._check_url = poster.url(ORIGIN, service + "/VerificationCheck")

    async def send(self, phone: str, message: str, channel: str, otp: str) -> str:
        # No text and no code of ours: Twilio writes the message. No whatsapp: prefix here.
        if channel not in ("sms", "whatsapp"):
            raise SmsError(f'channel type "{channel}" is not supported for Twilio')
        answer = await self._poster.form(self._start_url, {"To": "+" + phone, "Channel": channel}, self._auth)
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
