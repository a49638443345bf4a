"""A signed-in user's own changes to the account (PUT /user)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .. import clock, crypto
from ..errors import APIError, validation
from ..models import Session, User
from ..store import flow_state as flow_store
from ..store import one_time_tokens as ott_store
from ..store import sessions as session_store
from ..store import users as user_store
from . import Client, Context, audit, fields, otp
from . import phone as phone_otp
from .signup import confirm_email, ensure_identity

RECOVERY_METHODS = {"otp", "magiclink", "recovery"}
# Every pending one-time token, cleared together when the password changes.
PENDING_TOKENS = {
    "confirmation_token": "", "recovery_token": "", "email_change_token_new": "", "email_change_token_current": "",
    "email_change": "", "phone_change_token": "", "phone_change": "", "reauthentication_token": "",
    "email_change_confirm_status": 0,
}


def merge_metadata(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Shallow merge where a key set to null is removed."""
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


async def update(ctx: Context, client: Client, user: User, session: Session | None, params: dict[str, Any]) -> dict[str, Any]:
    settings = ctx.settings
    email = params.get("email")
    phone = params.get("phone")
    password = params.get("password")
    data = params.get("data")
    app_metadata = params.get("app_metadata")

    if email is not None:
        email = fields.email(email)
    channel = "sms"
    if phone:
        phone = fields.phone(phone)
        channel = phone_otp.check_channel(settings, params.get("channel") or "")
    if password is not None:
        fields.check_new_password(settings, password)
    if app_metadata is not None and not (user.aud == settings.jwt.aud and user.role == settings.jwt.admin_group_name):
        raise APIError(403, "not_admin", "Updating app_metadata requires admin privileges")
    changes_credentials = password is not None or (email and email != user.email) or (phone and phone != user.phone)
    if changes_credentials and any(f.status == "verified" for f in user.factors) and (session is None or session.aal != "aal2"):
        raise APIError(401, "insufficient_aal", "AAL2 session is required to update email or password when MFA is enabled.")
    if user.is_anonymous and password is not None and not (email or phone or user.email or user.phone):
        raise validation("Updating password of an anonymous user without an email or phone is not allowed", 422)
    if user.is_sso_user and (email or phone or password is not None or params.get("nonce")):
        raise APIError(422, "user_sso_managed", "Updating email, phone, password of a SSO account only possible via SSO")
    if email and email != user.email and await user_store.email_taken(ctx.db, email, user.aud or "", except_user=user.id):
        raise APIError(422, "email_exists", "A user with this email address has already been registered")
    if phone and phone != user.phone and await user_store.find_by_phone(ctx.db, phone, user.aud or "") is not None:
        raise APIError(422, "phone_exists", "A user with this phone number has already been registered")

    new_hash = None
    if password is not None:
        await _check_password_change(ctx, user, session, password, params)
        new_hash = await crypto.hash_password(password)

    async with ctx.db.transaction() as tx:
        if new_hash is not None:
            await user_store.update_user(tx, user.id, encrypted_password=new_hash, **PENDING_TOKENS)
            await ott_store.delete_for_user(tx, user.id)
            await session_store.delete_for_user(tx, user.id, keep=session.id if session else None)
            await audit.record(ctx, tx, user, "user_updated_password")
        if data is not None:
            await user_store.update_user(tx, user.id, raw_user_meta_data=merge_metadata(user.user_metadata, data))
        if app_metadata is not None:
            await user_store.update_user(tx, user.id, raw_app_meta_data=merge_metadata(user.app_metadata, app_metadata))
        if email and email != user.email:
            await _change_email(ctx, tx, user, email, params.get("pkce"), params.get("redirect_to") or settings.site_url)
        if phone and phone != user.phone:
            await _change_phone(ctx, tx, user, phone, channel)
        await audit.record(ctx, tx, user, "user_modified")
        fresh = await user_store.get(tx, user.id)
    return fresh.to_json()


async def _check_password_change(ctx: Context, user: User, session: Session | None, password: str,
                                 params: dict[str, Any]) -> None:
    security = ctx.settings.security
    if security.update_password_require_reauthentication and (
        session is None or session.created_at + timedelta(hours=24) < clock.now()
    ):
        nonce = params.get("nonce")
        if not nonce:
            raise APIError(400, "reauthentication_needed", "Password update requires reauthentication")
        if user.email:
            _check_email_nonce(ctx, user, nonce)
        else:
            await phone_otp.check_nonce(ctx, user, nonce)
    await _check_current_password(ctx, user, session, password, params)


def _check_email_nonce(ctx: Context, user: User, nonce: str) -> None:
    sent_at = user.reauthentication_sent_at
    expected = user.reauthentication_token or ""
    valid = (
        bool(expected)
        and sent_at is not None
        and clock.now() <= sent_at + timedelta(seconds=ctx.settings.mailer.otp_exp)
        and crypto.equal(crypto.token_hash(user.email or "", nonce), expected)
    )
    if not valid:
        raise APIError(422, "reauthentication_not_valid", "Nonce has expired or is invalid")


async def _check_current_password(ctx: Context, user: User, session: Session | None, password: str,
                                  params: dict[str, Any]) -> None:
    security = ctx.settings.security
    if security.update_password_require_current_password and user.has_password:
        methods = {m.method for m in await session_store.methods(ctx.db, session.id)} if session else set()
        if not methods & RECOVERY_METHODS:
            current = params.get("current_password")
            if not current:
                raise APIError(400, "current_password_required", "Current password required when setting new password.")
            if not await crypto.check_password(current, user.encrypted_password):
                raise APIError(400, "current_password_invalid", "Current password required when setting new password.")
    if user.has_password and await crypto.check_password(password, user.encrypted_password):
        raise APIError(422, "same_password", "New password should be different from the old password.")


async def _change_email(ctx: Context, tx, user: User, email: str, pkce, redirect_to: str) -> None:
    settings = ctx.settings
    if user.is_anonymous and settings.mailer.autoconfirm:
        # An anonymous account becomes permanent at once.
        await user_store.update_user(tx, user.id, email=email, is_anonymous=False,
                                     raw_app_meta_data={**user.app_metadata, "provider": "email", "providers": ["email"]})
        fresh = await user_store.get(tx, user.id)
        await ensure_identity(tx, fresh, "email", {})
        await confirm_email(tx, await user_store.get(tx, user.id))
        return
    from .recovery import send_email_change

    otp.cooldown(user.email_change_sent_at, settings.smtp.max_frequency)
    await user_store.update_user(tx, user.id, email_change=email, email_change_confirm_status=0)
    if pkce:
        await flow_store.create(tx, user_id=user.id, provider_type="email_change", authentication_method="email_change",
                                code_challenge=pkce.code_challenge, code_challenge_method=pkce.method)
    await send_email_change(ctx, tx, await user_store.get(tx, user.id), redirect_to, pkce is not None)


async def _change_phone(ctx: Context, tx, user: User, phone: str, channel: str) -> None:
    """The new number gets a code to verify (type phone_change); with SMS_AUTOCONFIRM it applies at once."""
    if ctx.settings.sms.autoconfirm:
        await user_store.update_user(tx, user.id, phone_change=phone)
        await phone_otp.apply_change(ctx, tx, await user_store.get(tx, user.id), phone)
        if user.is_anonymous:
            await user_store.update_user(tx, user.id, is_anonymous=False)
        return
    await phone_otp.send(ctx, tx, user, phone_otp.PHONE_CHANGE, phone, channel)
