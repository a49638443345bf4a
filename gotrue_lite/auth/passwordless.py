"""Passwordless sign-in: POST /otp and /magiclink mail a magic link carrying a code; POST /otp with a
phone texts a code."""

from __future__ import annotations

from typing import Any

from .. import crypto
from ..errors import APIError, validation
from ..store import flow_state as flow_store
from ..store import users as user_store
from . import Client, Context, audit, emails, fields, pkce
from . import phone as phone_otp
from .signup import confirm_email, create_user, sign_up, vetted_user_values


async def email_otp(ctx: Context, client: Client, *, email: str, create: bool, data: dict[str, Any],
                    challenge: tuple[str | None, str | None], redirect_to: str, status_for_empty: int = 400) -> None:
    settings = ctx.settings
    pkce_challenge = pkce.parse(*challenge)
    if not settings.external.email.enabled:
        raise APIError(422, "email_provider_disabled", "Email logins are disabled")
    if not settings.external.email.magic_link_enabled:
        raise APIError(422, "email_provider_disabled", "Login with magic link is disabled")
    if not email and status_for_empty == 422:
        raise validation("Password recovery requires an email", 422)  # upstream MagicLinkParams.Validate
    address = fields.email(email, status_for_empty)
    user = await user_store.find_by_email(ctx.db, address, client.aud)
    if user is None and not create:
        raise APIError(422, "otp_disabled", "Signups not allowed for otp")
    if (user is None or user.email_confirmed_at is None) and settings.disable_signup:
        # An unconfirmed user goes through the sign-up path too, which refuses first (upstream
        # MagicLink → Signup).
        raise APIError(422, "signup_disabled", "Signups not allowed for this instance")
    password_hash = await crypto.hash_password(crypto.random_password()) if user is None else None
    values = None
    if user is None:
        values = await vetted_user_values(ctx, client.aud, "email", address, password_hash=password_hash, data=data)

    async with ctx.db.transaction() as tx:
        if user is None:
            user = await create_user(ctx, tx, client.aud, "email", address, password_hash=password_hash, data=data,
                                     values=values)
            await audit.record(ctx, tx, user, "user_confirmation_requested", {"provider": "email"})
        if user.email_confirmed_at is None and not settings.mailer.autoconfirm:
            # Not yet confirmed: the mail that goes out is the sign-up confirmation.
            if pkce_challenge:
                await _flow(tx, user.id, "email", "email/signup", pkce_challenge)
            await emails.send(ctx, tx, user, emails.CONFIRMATION, to=address, redirect_to=redirect_to,
                              pkce=pkce_challenge is not None)
            return
        if user.email_confirmed_at is None:
            await confirm_email(tx, user)
            user = await user_store.get(tx, user.id)
        if pkce_challenge:
            await _flow(tx, user.id, "magiclink", "magiclink", pkce_challenge)
        await audit.record(ctx, tx, user, "user_recovery_requested")
        await emails.send(ctx, tx, user, emails.MAGIC_LINK, to=address, redirect_to=redirect_to,
                          pkce=pkce_challenge is not None)


async def _flow(tx, user_id: str, provider_type: str, method: str, challenge: pkce.Challenge) -> None:
    await flow_store.create(tx, user_id=user_id, provider_type=provider_type, authentication_method=method,
                            code_challenge=challenge.code_challenge, code_challenge_method=challenge.method)


def check_otp_params(*, email: str, phone: str, channel: str) -> None:
    if email and phone:
        raise validation("Only an email address or phone number should be provided")
    if email and channel:
        raise validation("Channel should only be specified with Phone OTP")


def _otp_disabled() -> APIError:
    return APIError(422, "otp_disabled", "Signups not allowed for otp")


async def sms_otp(ctx: Context, client: Client, *, phone: str, create: bool, data: dict[str, Any], channel: str,
                  challenge: tuple[str | None, str | None]) -> dict[str, Any]:
    """POST /otp with a phone (upstream Otp → shouldCreateUser → SmsOtp): {} or {"message_id"}."""
    settings = ctx.settings
    pkce.parse(*challenge)  # checked, though a phone flow has no PKCE
    if not create:
        try:
            address = fields.phone(phone)
        except APIError:
            raise _otp_disabled() from None  # upstream swallows the format error here
        if await user_store.find_by_phone(ctx.db, address, client.aud) is None:
            raise _otp_disabled()
    if not settings.external.phone.enabled:
        raise APIError(400, "phone_provider_disabled", "Unsupported phone provider")
    address = fields.phone(phone)
    channel = phone_otp.check_channel(settings, channel)
    user = await user_store.find_by_phone(ctx.db, address, client.aud)
    if user is None or user.phone_confirmed_at is None:
        # Not yet a confirmed account: the sign-up path, whose text is the confirmation code.
        await sign_up(ctx, client, email="", phone=address, password=crypto.random_password(), data=data,
                      channel=channel, challenge=(None, None), with_session=False)
        if not settings.sms.autoconfirm:
            return {}
        user = await user_store.find_by_phone(ctx.db, address, client.aud)
        if user is None:
            raise _otp_disabled()
    async with ctx.db.transaction() as tx:
        await audit.record(ctx, tx, user, "user_recovery_requested", {"channel": channel})
        message_id = await phone_otp.send(ctx, tx, user, phone_otp.CONFIRMATION, address, channel)
    return {"message_id": message_id} if message_id else {}
