"""Password recovery (/recover), re-sending confirmations (/resend) and reauthentication nonces."""

from __future__ import annotations

from ..errors import APIError, validation
from ..models import User
from ..store import users as user_store
from . import Client, Context, audit, emails, fields, hook_points, pkce
from . import phone as phone_otp
from .passwordless import _flow


async def recover(ctx: Context, client: Client, *, email: str, challenge: tuple[str | None, str | None],
                  redirect_to: str) -> None:
    if not ctx.settings.external.email.enabled:
        raise APIError(400, "email_provider_disabled", "Email logins are disabled")
    if not email:
        raise validation("Password recovery requires an email")
    address = fields.email(email)
    pkce_challenge = pkce.parse(*challenge)
    user = await user_store.find_by_email(ctx.db, address, client.aud)
    if user is None:
        return  # the same empty answer as for a known address
    async with ctx.db.transaction() as tx:
        if pkce_challenge:
            await _flow(tx, user.id, "recovery", "recovery", pkce_challenge)
        await audit.record(ctx, tx, user, "user_recovery_requested")
        await emails.send(ctx, tx, user, emails.RECOVERY, to=address, redirect_to=redirect_to,
                          pkce=pkce_challenge is not None)


RESEND_TYPES = ("signup", "email_change", "sms", "phone_change")


async def resend(ctx: Context, client: Client, *, kind: str, email: str, phone: str,
                 challenge: tuple[str | None, str | None], redirect_to: str) -> dict[str, str]:
    """POST /resend: {} or, for a text, {"message_id"} when the vendor's id is known."""
    settings = ctx.settings
    if kind not in RESEND_TYPES:
        raise validation("Missing one of these types: signup, email_change, sms, phone_change")
    # upstream ResendConfirmationParams.Validate, in its order
    pkce_challenge = pkce.parse(*challenge) if kind in ("signup", "email_change") else None
    if kind == "signup" and not email:
        raise validation("Type provided requires an email address")
    if kind == "sms" and not phone:
        raise validation("Type provided requires a phone number")
    if email and phone:
        raise validation("Only an email address or phone number should be provided.")
    if email:
        if not settings.external.email.enabled:
            raise APIError(400, "email_provider_disabled", "Email logins are disabled")
        address = fields.email(email)
    elif phone:
        if not settings.external.phone.enabled:
            raise APIError(400, "phone_provider_disabled", "Phone logins are disabled")
        address = fields.phone(phone)
    else:
        raise validation("Missing email address or phone number")
    if phone:
        user = await user_store.find_by_phone(ctx.db, address, client.aud)
    else:
        user = await user_store.find_by_email(ctx.db, address, client.aud)
    if user is None:
        return {}
    if kind in ("sms", "phone_change"):
        return await _resend_sms(ctx, user, kind)
    async with ctx.db.transaction() as tx:
        if kind == "signup":
            if user.email_confirmed_at is not None:
                return {}
            if pkce_challenge:
                await _flow(tx, user.id, "email", "email/signup", pkce_challenge)
            await audit.record(ctx, tx, user, "user_confirmation_requested", {"provider": "email"})
            await emails.send(ctx, tx, user, emails.CONFIRMATION, to=address, redirect_to=redirect_to,
                              pkce=pkce_challenge is not None)
        elif kind == "email_change":
            if not user.email_change:
                return {}
            if pkce_challenge:
                await _flow(tx, user.id, "email_change", "email_change", pkce_challenge)
            await send_email_change(ctx, tx, user, redirect_to, pkce_challenge is not None)
    return {}


async def _resend_sms(ctx: Context, user: User, kind: str) -> dict[str, str]:
    """The confirmation code again (unconfirmed phone), or the pending change's code to the new number."""
    if kind == "sms":
        if user.phone_confirmed_at is not None or not user.phone:
            return {}
        async with ctx.db.transaction() as tx:
            await audit.record(ctx, tx, user, "user_recovery_requested")
            message_id = await phone_otp.send(ctx, tx, user, phone_otp.CONFIRMATION, user.phone)
    else:
        if not user.phone_change:
            return {}
        async with ctx.db.transaction() as tx:
            message_id = await phone_otp.send(ctx, tx, user, phone_otp.PHONE_CHANGE, user.phone_change)
    return {"message_id": message_id} if message_id else {}


async def send_email_change(ctx: Context, tx, user: User, redirect_to: str, pkce_flow: bool) -> None:
    """Mail the new address and, with secure email change, the current one too (one budget unit)."""
    settings = ctx.settings
    emails.take_budget(ctx)
    hooked = hook_points.enabled(ctx, "send_email")
    new = await emails.send(ctx, tx, user, emails.EMAIL_CHANGE_NEW, to=user.email_change, redirect_to=redirect_to,
                            pkce=pkce_flow, budget=False, extra={"email_change_confirm_status": 0},
                            deliver=not hooked)
    current = None
    if settings.mailer.secure_email_change_enabled and user.email:
        fresh = await user_store.get(tx, user.id)
        current = await emails.send(ctx, tx, fresh, emails.EMAIL_CHANGE_CURRENT, to=user.email,
                                    redirect_to=redirect_to, pkce=pkce_flow, budget=False, cooldown=False,
                                    deliver=not hooked)
    if hooked:
        # One hook call for both addresses, with upstream's field placement: token / token_new are
        # the current / new address's codes, token_hash / token_hash_new the new / current hashes
        # (upstream's own note calls the crossing a bug it keeps); without a current-address code
        # the new one is `token`.
        data = hook_points.email_data(
            token=current.code if current else new.code, token_hash=new.stored, redirect_to=redirect_to,
            action="email_change", site_url=settings.api.external_url,
            token_new=new.code if current else "", token_hash_new=current.stored if current else "")
        await hook_points.send_email(ctx, tx, None, await user_store.get(tx, user.id), data)


async def reauthenticate(ctx: Context, client: Client, user: User) -> dict[str, str]:
    """A nonce by e-mail, or by SMS for a user without e-mail: {} or {"message_id"}."""
    if not user.email and not user.phone:
        raise validation("Reauthentication requires the user to have an email or a phone number")
    if user.email:
        if user.email_confirmed_at is None:
            raise APIError(422, "email_not_confirmed", "Please verify your email first.")
        async with ctx.db.transaction() as tx:
            await audit.record(ctx, tx, user, "user_reauthenticate_requested")
            await emails.send(ctx, tx, user, emails.REAUTHENTICATION, to=user.email, redirect_to=ctx.settings.site_url)
        return {}
    if user.phone_confirmed_at is None:
        raise APIError(422, "phone_not_confirmed", "Please verify your phone first.")
    async with ctx.db.transaction() as tx:
        await audit.record(ctx, tx, user, "user_reauthenticate_requested")
        message_id = await phone_otp.send(ctx, tx, user, phone_otp.REAUTHENTICATION, user.phone or "")
    return {"message_id": message_id} if message_id else {}
