"""Chooses the server's SMS sender from the settings: the named vendor, the dev outbox, or none."""

from __future__ import annotations

import logging

import aiohttp

from . import Sms, messagebird, outbox, textlocal, twilio, twilio_verify, vonage
from .wire import Poster

log = logging.getLogger("gotrue_lite.sms")

# GOTRUE_SMS_PROVIDER -> the sender class; its settings are settings.sms.<name>
VENDORS = {vendor.name: vendor for vendor in (
    twilio.Twilio, twilio_verify.TwilioVerify, messagebird.Messagebird, textlocal.Textlocal, vonage.Vonage)}


def build(settings, http: aiohttp.ClientSession, mailbox=None) -> Sms:
    """The Sms for `settings`. `mailbox` is the dev mailbox (mail.devbox.DevMailbox) that keeps
    SMS while no provider is configured; without it there is no outbox."""
    provider = settings.sms.provider
    if not provider:
        if mailbox is not None and outbox.enabled(settings):
            log.info("no GOTRUE_SMS_PROVIDER: SMS are kept in the dev outbox, read them at "
                     "GET /_dev/mail (JSON) or /_dev/mail/")
            return Sms(outbox.DevOutbox(mailbox))
        return Sms(None, problem="no GOTRUE_SMS_PROVIDER set")
    sender_class = VENDORS.get(provider)
    if sender_class is None:
        return _unusable(f"sms Provider {provider} could not be found")
    cfg = getattr(settings.sms, provider)
    problem = sender_class.missing(cfg)
    if problem:
        return _unusable(problem)
    poster = Poster(http, settings.internal_http_timeout.total_seconds(), settings.lite.sms_api_url)
    if settings.lite.sms_api_url:
        log.info("SMS provider %s, sending to %s (GOTRUE_LITE_SMS_API_URL)", provider, settings.lite.sms_api_url)
    else:
        log.info("SMS provider %s", provider)
    return Sms(sender_class(cfg, poster))


def _unusable(problem: str) -> Sms:
    # Upstream looks the provider up on every send and answers 500 "Unable to get SMS provider"
    # while it is unusable; the settings cannot change while running, so once is enough here.
    log.warning("GOTRUE_SMS_PROVIDER is unusable (%s): phone sign-in answers 500 "
                "\"Unable to get SMS provider\"", problem)
    return Sms(None, problem=problem)
