"""Password sign-in (grant_type=password), with upstream's order of checks."""

from __future__ import annotations

from typing import Any

from .. import crypto
from ..errors import INVALID_CREDENTIALS, APIError, validation
from ..sms import normalise_phone
from ..store import users as user_store
from . import Client, Context, audit, fields, hook_points, sessions, webhooks


async def with_password(ctx: Context, client: Client, *, email: str, phone: str, password: str) -> dict[str, Any]:
    settings = ctx.settings
    if email and phone:
        raise validation("Only an email address or phone number should be provided on login.")
    if not email and not phone:
        raise validation("missing email or phone")
    if email:
        if not settings.external.email.enabled:
            raise APIError(422, "email_provider_disabled", "Email logins are disabled")
        address, find = email.lower(), user_store.find_by_email
    else:
        if not settings.external.phone.enabled:
            raise APIError(422, "phone_provider_disabled", "Phone logins are disabled")
        address, find = normalise_phone(phone), user_store.find_by_phone

    # gotrue-lite addition (upstream relies on the per-IP /token limit only; see SignInGuard in
    # ratelimit.py): repeated wrong passwords on one identifier — existing or not — are slowed
    # down. Checked before the lookup and the bcrypt check, so a refused guess costs next to nothing.
    guard = ctx.signin_guard
    account = f"{client.aud}\x00{'email' if email else 'phone'}\x00{address}"
    if guard is not None and await guard.admit(account):
        raise APIError(429, "over_request_rate_limit", "Request rate limit reached")
    right: bool | None = None  # None: no answer (e.g. the database failed), not a failure
    try:
        user = await find(ctx.db, address, client.aud)
        # The password is checked before anything else is said about the account, and an unknown
        # user costs one bcrypt check too: the answer and its timing reveal nothing.
        matches = await crypto.check_password(password, user.encrypted_password if user else None)
        right = user is not None and bool(matches)
    finally:
        if guard is not None:
            guard.settle(account, right)
    if user is not None and user.has_password and hook_points.enabled(ctx, "password_verification_attempt"):
        # Told of right and wrong passwords alike, before the answer (upstream); its reject
        # decision wins even over a right password.
        await hook_points.password_attempt(ctx, client, user, bool(right))
    if not right:
        raise APIError(400, "invalid_credentials", INVALID_CREDENTIALS)
    if user.is_banned():
        raise APIError(400, "user_banned", "User is banned")
    if email and user.email_confirmed_at is None and not settings.mailer.allow_unverified_email_sign_ins:
        raise APIError(400, "email_not_confirmed", "Email not confirmed")
    if phone and user.phone_confirmed_at is None:
        raise APIError(400, "phone_not_confirmed", "Phone not confirmed")

    # Once the password is known to be right, bcrypt hashes at another cost and imported
    # argon2 / Firebase scrypt hashes are replaced by bcrypt at the default cost.
    new_hash = await crypto.hash_password(password) if crypto.needs_rehash(user.encrypted_password or "", password) else None
    changes = await webhooks.notify(ctx, webhooks.LOGIN, user)

    async with ctx.db.transaction() as tx:
        if new_hash:
            await user_store.update_user(tx, user.id, encrypted_password=new_hash)
        await audit.record(ctx, tx, user, "login", {"provider": "email" if email else "phone"})
        if changes is not None:
            # the session's access token carries what the webhook answered (roles, say)
            await webhooks.apply(tx, user.id, changes)
            user = await user_store.get(tx, user.id)
        response = await sessions.issue(ctx, tx, user, "password", client)
    weak = fields.weakness(settings, password)
    if weak:
        response["weak_password"] = {"message": weak[0], "reasons": weak[1]}
    return response
