"""Phone factors: the code sent by SMS on a challenge and checked on verify (upstream
challengePhoneFactor / verifyPhoneFactor); twilio_verify sends and checks codes itself."""

from __future__ import annotations

import logging
from typing import Any

from .. import clock, crypto
from ..errors import APIError, validation
from ..mail.gotemplate import ROOT, GoTemplateError, go_to_jinja
from ..models import Challenge, Factor, User
from ..sms import SmsError
from . import Client, Context, dbcrypt, hook_points

log = logging.getLogger("gotrue_lite.mfa")

INVALID_CHANNEL = ("Invalid channel, supported values are 'sms' or 'whatsapp'. 'whatsapp' is only supported if "
                   "Twilio or Twilio Verify is used as the provider.")
_WHATSAPP_PROVIDERS = ("twilio", "twilio_verify")


def _message(ctx: Context, code: str) -> str:
    """GOTRUE_MFA_PHONE_TEMPLATE (a Go template) with {{ .Code }}."""
    from ..mail.templates import _custom_env  # the sandboxed environment the mail templates use

    source = ctx.settings.mfa.phone_template or "Your code is {{ .Code }}"
    try:
        return _custom_env(autoescape=False).from_string(go_to_jinja(source)).render({"Code": code, ROOT: {"Code": code}})
    except (GoTemplateError, Exception) as exc:  # a template error is the server's: upstream's 500
        log.error("GOTRUE_MFA_PHONE_TEMPLATE cannot be rendered: %s", exc)
        raise APIError(500, "unexpected_failure", "error generating sms template") from None


async def send_code(ctx: Context, factor: Factor, channel: str, challenge_id: str, *, user: User,
                    client: Client) -> dict[str, Any]:
    """Send a fresh code to the factor's number; returns the challenge columns to store."""
    channel = channel or "sms"
    if channel != "sms" and not (channel == "whatsapp" and ctx.settings.sms.provider in _WHATSAPP_PROVIDERS):
        raise validation(INVALID_CHANNEL)
    frequency = ctx.settings.mfa.phone_max_frequency
    if factor.last_challenged_at is not None and clock.now() <= factor.last_challenged_at + frequency:
        left = int((factor.last_challenged_at + frequency - clock.now()).total_seconds())
        raise APIError(429, "over_sms_send_rate_limit",
                       f"For security purposes, you can only request this after {left} seconds.")
    code = crypto.otp(ctx.settings.mfa.phone_otp_length)
    message = _message(ctx, code)
    if hook_points.enabled(ctx, "send_sms"):
        try:
            await hook_points.send_sms(ctx, None, client, user, factor.phone or "", code, "mfa")
        except APIError as exc:
            log.warning("send_sms hook for factor %s failed: %s", factor.id, exc.message)
            raise APIError(500, "unexpected_failure", "error invoking hook") from None
        return {"otp_code": dbcrypt.seal(ctx.settings, challenge_id, code)}
    sms = ctx.sms
    if sms is None or not sms.configured:
        raise APIError(500, "unexpected_failure", "Failed to get SMS provider")
    try:
        await sms.send(factor.phone or "", message, channel, code)
    except SmsError as exc:
        log.warning("MFA SMS to factor %s failed: %s", factor.id, exc)
        raise APIError(500, "unexpected_failure", "error sending message") from None
    # Sealed under the challenge id, as upstream (Challenge.SetOtpCode).
    return {"otp_code": dbcrypt.seal(ctx.settings, challenge_id, code)}


async def check_code(ctx: Context, factor: Factor, challenge: Challenge, code: str) -> bool:
    """Whether `code` answers the challenge; a wrong code leaves the challenge usable."""
    sms = ctx.sms
    # With the send_sms hook the code is ours (upstream), whatever the configured vendor.
    if sms is not None and sms.verifies_otp and not hook_points.enabled(ctx, "send_sms"):
        try:
            accepted = await sms.verify(factor.phone or "", code)
        except SmsError:
            accepted = False
        if not accepted:
            raise APIError(403, "otp_expired", "Token has expired or is invalid")
        return True
    expected, _stale = dbcrypt.open_(ctx.settings, challenge.id, challenge.otp_code or "")
    return bool(expected) and crypto.equal(expected, code)
