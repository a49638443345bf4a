"""Phone OTPs: sending the SMS codes of sign-up, OTP sign-in, phone change and reauthentication, and
checking them (upstream internal/api/phone.go, verify.go → smsVerify, reauthenticate.go)."""

from __future__ import annotations

import dataclasses
import functools
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from .. import clock, crypto
from ..errors import APIError, validation
from ..mail.gotemplate import ROOT, GoTemplateError, go_to_jinja
from ..models import User
from ..sms import SmsError
from ..store import Executor
from ..store import one_time_tokens as ott_store
from ..store import users as user_store
from . import Client, Context, audit, hook_points, otp, sessions

log = logging.getLogger("gotrue_lite.phone")

INVALID_CHANNEL = ("Invalid channel, supported values are 'sms' or 'whatsapp'. 'whatsapp' is only supported if "
                   "Twilio or Twilio Verify is used as the provider.")
WHATSAPP_PROVIDERS = ("twilio", "twilio_verify")


@dataclass(frozen=True)
class Kind:
    name: str  # upstream's otpType, as it appears in "Error sending <name> OTP to provider"
    column: str  # the users column holding the code's hash


CONFIRMATION = Kind("confirmation", "confirmation_token")
PHONE_CHANGE = Kind("phone_change", "phone_change_token")
REAUTHENTICATION = Kind("reauthentication", "reauthentication_token")


def otp_invalid() -> APIError:
    return APIError(403, "otp_expired", "Token has expired or is invalid")


def check_channel(settings, channel: str) -> str:
    """The message channel, 'sms' when none is given; whatsapp needs a Twilio provider."""
    channel = channel or "sms"
    hook = settings.hooks.get("send_sms")
    if hook is not None and hook.enabled:
        return channel  # the send_sms hook takes any channel (upstream IsValidMessageChannel)
    if channel == "sms" or (channel == "whatsapp" and settings.sms.provider in WHATSAPP_PROVIDERS):
        return channel
    raise validation(INVALID_CHANNEL)


def test_otp(settings, phone: str) -> str | None:
    """GOTRUE_SMS_TEST_OTP's code for `phone` while GOTRUE_SMS_TEST_OTP_VALID_UNTIL has not passed."""
    until = settings.sms.test_otp_valid_until
    if until is not None and clock.now() >= until:
        return None
    return settings.sms.test_otp.get(phone)


_TEMPLATES = SandboxedEnvironment(undefined=jinja2.ChainableUndefined, autoescape=False, keep_trailing_newline=True)


@functools.lru_cache(maxsize=8)
def _template(source: str) -> jinja2.Template:
    # Upstream's templates are Go's `{{ .Code }}`; anything the Go translator does not take is
    # read as Jinja (`{{ Code }}`).
    try:
        return _TEMPLATES.from_string(go_to_jinja(source))
    except GoTemplateError:
        return _TEMPLATES.from_string(source)


def message(settings, code: str) -> str:
    """GOTRUE_SMS_TEMPLATE with the code filled in; a broken template is upstream's 500."""
    variables = {"Code": code}
    try:
        return _template(settings.sms.template).render({**variables, ROOT: variables})
    except jinja2.TemplateError as exc:
        log.error("GOTRUE_SMS_TEMPLATE: %s", exc)
        raise APIError(500, "unexpected_failure", "error generating sms template") from exc


def vendor_checks_codes(ctx: Context) -> bool:
    """twilio_verify makes and checks the codes itself, unless the send_sms hook delivers ours."""
    return ctx.sms is not None and ctx.sms.verifies_otp and not hook_points.enabled(ctx, "send_sms")


def _take_budget(ctx: Context) -> None:
    # Upstream skips the SMS budget while SMS_AUTOCONFIRM is on.
    if ctx.settings.sms.autoconfirm or ctx.sms_budget is None:
        return
    if not ctx.sms_budget.take():
        raise APIError(429, "over_sms_send_rate_limit", "SMS rate limit exceeded")


async def send(ctx: Context, tx: Executor, user: User, kind: Kind, phone: str, channel: str = "sms",
               client: Client | None = None) -> str | None:
    """Text a fresh code of `kind` to `phone` and store its hash, in the caller's transaction.

    Returns the message id when one is known. A refusal raises, so the caller's transaction rolls
    back and nothing is left that was never sent.
    """
    settings = ctx.settings
    # Before the test-OTP check, so that test numbers are throttled like real ones (upstream).
    otp.cooldown(getattr(user, otp.SENT_AT[kind.column]), settings.sms.max_frequency, "over_sms_send_rate_limit")
    code = test_otp(settings, phone)
    message_id: str | None = "test-otp" if code is not None else None
    if code is None:
        _take_budget(ctx)
        code = crypto.otp(settings.sms.otp_length)
        if hook_points.enabled(ctx, "send_sms"):
            # The hook delivers the code instead of the vendor; its error is the client's answer.
            # For a phone change the user shown already has the destination as new_phone (upstream).
            shown = dataclasses.replace(user, phone_change=phone) if kind is PHONE_CHANGE else user
            await hook_points.send_sms(ctx, tx, client, shown, phone, code, "")
            extra = {"phone_change": phone} if kind is PHONE_CHANGE else None
            await otp.issue(tx, user.id, kind.column, phone, settings.sms.otp_length, extra=extra, code=code)
            return None
        if ctx.sms is None or not ctx.sms.configured:
            raise APIError(500, "unexpected_failure", "Unable to get SMS provider")
        text = message(settings, code)
        try:
            message_id = await ctx.sms.send(phone, text, channel, code) or None
        except SmsError as exc:
            raise APIError(422, "sms_send_failed", f"Error sending {kind.name} OTP to provider: {exc}") from exc
    extra = {"phone_change": phone} if kind is PHONE_CHANGE else None
    await otp.issue(tx, user.id, kind.column, phone, settings.sms.otp_length, extra=extra, code=code)
    return message_id


async def confirm(tx: Executor, user: User) -> None:
    """User.ConfirmPhone: the identity's data is left as it is."""
    await user_store.update_user(tx, user.id, phone_confirmed_at=clock.now(), confirmation_token="")
    await ott_store.delete_for_user(tx, user.id)


async def apply_change(ctx: Context, tx: Executor, user: User, new_phone: str) -> None:
    """The verified phone change: the phone identity follows, the number moves, pending codes go."""
    await audit.record(ctx, tx, user, "user_modified")
    identity = next((i for i in user.identities if i.provider == "phone"), None)
    if identity is None:
        await user_store.create_identity(tx, {
            "id": str(uuid.uuid4()), "provider_id": user.id, "user_id": user.id, "provider": "phone",
            "identity_data": {"sub": user.id, "phone": new_phone, "email_verified": False, "phone_verified": True},
        })
    else:
        await user_store.update_identity_data(tx, identity.id, {**identity.identity_data, "phone": new_phone,
                                                                "phone_verified": True})
    await user_store.update_user(tx, user.id, phone=new_phone, phone_change="", phone_change_token="",
                                 phone_confirmed_at=clock.now())
    await ott_store.delete_for_user(tx, user.id)


async def _vendor_accepts(ctx: Context, phone: str, code: str) -> bool:
    try:
        return await ctx.sms.verify(phone, code)
    except SmsError as exc:
        log.info("SMS vendor refused the code for a verification: %s", exc)
        return False


def _local_code_valid(ctx: Context, user: User, column: str, phone: str, code: str) -> bool:
    """isOtpValid: a stored, unexpired hash of phone + code (or its pkce_ form)."""
    expected = getattr(user, column) or ""
    sent_at = getattr(user, otp.SENT_AT[column])
    if not expected or sent_at is None:
        return False
    if clock.now() > sent_at + timedelta(seconds=ctx.settings.sms.otp_exp):
        return False
    hashed = crypto.token_hash(phone, code)
    return crypto.equal(hashed, expected) | crypto.equal("pkce_" + hashed, expected)


async def verify(ctx: Context, client: Client, *, vtype: str, phone: str, code: str) -> dict[str, Any]:
    """POST /verify type sms | phone_change with a normalised phone: a session, or 403."""
    from .external_accounts import refresh_providers

    by_change = vtype == "phone_change"
    column = PHONE_CHANGE.column if by_change else CONFIRMATION.column

    async def find(ex: Executor) -> User:
        if by_change:
            user = await user_store.find_by_phone_change(ex, phone, client.aud)
        else:
            user = await user_store.find_by_phone(ex, phone, client.aud)
        if user is None:
            raise otp_invalid()
        if user.is_banned():
            raise APIError(403, "user_banned", "User is banned")
        return user

    user = await find(ctx.db)
    accepted = (test := test_otp(ctx.settings, phone)) is not None and crypto.equal(test, code)
    if not accepted and vendor_checks_codes(ctx):
        # twilio_verify: the code is the vendor's, and only the vendor can check it.
        if not await _vendor_accepts(ctx, user.phone_change if by_change else phone, code):
            raise otp_invalid()
        accepted = True
    async with ctx.db.transaction() as tx:
        # Again, locked: of two verifications racing with one code only the first may win.
        user = await user_store.get(tx, user.id, lock=True)
        if user is None or (user.phone_change if by_change else user.phone) != phone:
            raise otp_invalid()
        target = (user.phone_change or "") if by_change else phone
        if not accepted and not _local_code_valid(ctx, user, column, target, code):
            raise otp_invalid()
        if by_change:
            await apply_change(ctx, tx, user, user.phone_change or "")
        else:
            await audit.record(ctx, tx, user, "user_signedup", {"provider": "phone"})
            await confirm(tx, user)
        if user.is_anonymous:
            await user_store.update_user(tx, user.id, is_anonymous=False)
        user = await refresh_providers(tx, user.id)
        return await sessions.issue(ctx, tx, user, "otp", client)


async def check_nonce(ctx: Context, user: User, nonce: str) -> None:
    """The reauthentication nonce of a user without e-mail (upstream verifyReauthentication). What
    it clears, the password change that follows clears anyway."""
    if not user.reauthentication_token or user.reauthentication_sent_at is None:
        raise APIError(422, "reauthentication_not_valid", "Nonce has expired or is invalid")
    if vendor_checks_codes(ctx):
        if not await _vendor_accepts(ctx, user.phone or "", nonce):
            raise otp_invalid()
        return
    if not _local_code_valid(ctx, user, REAUTHENTICATION.column, user.phone or "", nonce):
        raise APIError(422, "reauthentication_not_valid", "Nonce has expired or is invalid")
