"""Sign-up with email or phone and password, and anonymous sign-in."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from .. import clock, crypto, metrics
from ..errors import APIError, database_failure, validation
from ..models import User
from ..store import Executor, StatementRefused, UniqueViolation
from ..store import flow_state as flow_store
from ..store import users as user_store
from . import Client, Context, audit, emails, fields, hook_points, pkce, sessions, webhooks
from . import phone as phone_otp

log = logging.getLogger("gotrue_lite.auth")

ALREADY_REGISTERED = APIError(422, "user_already_exists", "User already registered")
# upstream's answers when the database refuses a new user (a trigger on auth.users raised):
# signupNewUser's, shared by sign-up, invite, magic link / OTP and generate_link; anonymous.go's.
SAVING_FAILED = "Database error saving new user"
ANONYMOUS_FAILED = "Database error creating anonymous user"


def refused_user(message: str, exc: StatementRefused, *, shown: bool = True) -> APIError:
    """The answer for a user row the database refused; `shown`: upstream keeps the Postgres
    error for its legacy envelope."""
    log.error("%s: %s", message, exc)
    return database_failure(message, exc if shown else None)


def is_race(exc: UniqueViolation) -> bool:
    """A clash on the users table's own keys (a racing sign-up), not in a trigger's insert."""
    return exc.table in (None, "users")


async def insert_user(tx: Executor, values: dict[str, Any], failure: str = SAVING_FAILED, *,
                      shown: bool = True) -> None:
    """INSERT the user row; a refusal other than a racing duplicate is upstream's 500 `failure`."""
    try:
        await user_store.create(tx, values)
    except UniqueViolation as exc:
        if is_race(exc):
            raise
        raise refused_user(failure, exc, shown=shown) from exc
    except StatementRefused as exc:
        raise refused_user(failure, exc, shown=shown) from exc


def _new_user_values(ctx: Context, aud: str, *, email: str = "", phone: str = "", password_hash: str | None,
                     data: dict[str, Any], provider: str | None, anonymous: bool = False) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "aud": aud,
        "role": ctx.settings.jwt.default_group_name,
        "email": email,
        "phone": phone,
        "encrypted_password": password_hash or "",
        "raw_app_meta_data": {"provider": provider, "providers": [provider]} if provider else {},
        "raw_user_meta_data": dict(data),
        "is_anonymous": anonymous,
    }


def _identity_data(user_id: str, provider: str, address: str, data: dict[str, Any]) -> dict[str, Any]:
    identity: dict[str, Any] = {"sub": user_id}
    if address:
        identity[provider] = address
    identity.update(email_verified=False, phone_verified=False)
    for key, value in data.items():
        identity.setdefault(key, value)
    return identity


async def ensure_identity(tx: Executor, user: User, provider: str, data: dict[str, Any], *,
                          with_address: bool = True) -> None:
    """The user's identity for `provider`, made when missing. A phone sign-up's identity names no
    number (upstream builds it from the e-mail claim alone): `with_address=False`."""
    if any(i.provider == provider for i in user.identities):
        return
    address = user.email if provider == "email" else user.phone
    if not with_address:
        address = ""
    await user_store.create_identity(tx, {
        "id": str(uuid.uuid4()),
        "provider_id": user.id,
        "user_id": user.id,
        "identity_data": _identity_data(user.id, provider, address or "", data),
        "provider": provider,
    })


def planned_user(values: dict[str, Any]) -> User:
    """The user a row of `values` will be, as the before_user_created hook is shown it."""
    now = clock.now()
    return User(id=values["id"], aud=values["aud"], role=values["role"], email=values["email"],
                phone=values["phone"], raw_app_meta_data=values["raw_app_meta_data"],
                raw_user_meta_data=values["raw_user_meta_data"], is_anonymous=values["is_anonymous"],
                created_at=now, updated_at=now)


async def new_user_values(ctx: Context, client: Client, provider: str, address: str, *,
                          password_hash: str | None, data: dict[str, Any], autoconfirm: bool = False,
                          webhooks_asked: bool = True) -> dict[str, Any]:
    """The row of a new email or phone user, once the before_user_created hook and the Netlify
    webhooks (validate, then signup when it is confirmed at once) have let it be created.
    Called before the transaction that creates it, as upstream and netlify do; netlify's admin
    routes send no webhook (`webhooks_asked=False`)."""
    values = _new_user_values(ctx, client.aud, password_hash=password_hash, data=data, provider=provider,
                              **{provider: address})
    await hook_points.before_user_created(ctx, client, planned_user(values))
    if not webhooks_asked:
        return values
    events = (webhooks.VALIDATE, webhooks.SIGNUP) if autoconfirm else (webhooks.VALIDATE,)
    return await webhooks.vet_new_user(ctx, values, *events)


async def create_user(ctx: Context, tx: Executor, aud: str, provider: str, address: str, *,
                      password_hash: str | None, data: dict[str, Any], extra: dict[str, Any] | None = None,
                      values: dict[str, Any] | None = None) -> User:
    """A new email or phone user with its identity, inside the caller's transaction; `values`
    from new_user_values when the hooks have been asked."""
    if values is None:
        values = _new_user_values(ctx, aud, password_hash=password_hash, data=data, provider=provider,
                                  **{provider: address})
    values = {**values, **(extra or {})}
    await insert_user(tx, values)
    await ensure_identity(tx, await user_store.get(tx, values["id"]), provider, data, with_address=provider == "email")
    return await user_store.get(tx, values["id"])


async def confirm_email(tx: Executor, user: User) -> None:
    """Mark the email verified on the user and on its email identity."""
    now = clock.now()
    metadata = {**user.user_metadata, "email_verified": True}
    await user_store.update_user(tx, user.id, email_confirmed_at=now, confirmation_token="", raw_user_meta_data=metadata)
    for identity in user.identities:
        if identity.provider == "email":
            await user_store.update_identity_data(tx, identity.id, {**identity.identity_data, "email_verified": True})


async def confirm_phone(tx: Executor, user: User) -> None:
    await user_store.update_user(tx, user.id, phone_confirmed_at=clock.now(), confirmation_token="")
    for identity in user.identities:
        if identity.provider == "phone":
            await user_store.update_identity_data(tx, identity.id, {**identity.identity_data, "phone_verified": True})


def obfuscated_user(ctx: Context, aud: str, provider: str, address: str, data: dict[str, Any]) -> dict[str, Any]:
    """What a sign-up for an already-confirmed address answers: built from scratch, leaking nothing."""
    now = clock.now()
    return User(
        id=str(uuid.uuid4()), aud=aud, role="",
        email=address if provider == "email" else "",
        phone=address if provider == "phone" else "",
        raw_app_meta_data={"provider": provider, "providers": [provider]},
        raw_user_meta_data=dict(data), created_at=now, updated_at=now, confirmation_sent_at=now,
    ).to_json()


async def sign_up(ctx: Context, client: Client, *, email: str, phone: str, password: str, data: dict[str, Any],
                  channel: str, challenge: tuple[str | None, str | None], redirect_to: str = "",
                  with_session: bool = True) -> dict[str, Any]:
    """POST /signup; `with_session=False` (the sign-up inside POST /otp) confirms without signing in."""
    settings = ctx.settings
    if settings.disable_signup:
        raise APIError(422, "signup_disabled", "Signups not allowed for this instance")
    if not email and not phone:
        return await sign_in_anonymously(ctx, client, data=data)
    if not password:
        raise validation("Signup requires a valid password")
    fields.check_new_password(settings, password)
    if email and phone:
        raise validation("Only an email address or phone number should be provided on signup.")
    if phone:
        channel = phone_otp.check_channel(settings, channel)
    if phone and challenge[0]:
        raise validation("PKCE not supported for phone signups")
    pkce_challenge = pkce.parse(*challenge)

    provider = "email" if email else "phone"
    if provider == "email":
        if not settings.external.email.enabled:
            raise APIError(400, "email_provider_disabled", "Email signups are disabled")
        address = fields.email(email)
        existing = await user_store.find_by_email(ctx.db, address, client.aud)
        autoconfirm = settings.mailer.autoconfirm
    else:
        if not settings.external.phone.enabled:
            raise APIError(400, "phone_provider_disabled", "Phone signups are disabled")
        address = fields.phone(phone)
        existing = await user_store.find_by_phone(ctx.db, address, client.aud)
        autoconfirm = settings.sms.autoconfirm

    if existing is not None:
        confirmed = existing.email_confirmed_at if provider == "email" else existing.phone_confirmed_at
        # With autoconfirm on, a sign-up for an unconfirmed account is refused rather than
        # confirmed on a stranger's word; inside POST /otp (no session) the code texted next
        # still has to be verified, so there it confirms, as upstream's Signup does.
        if confirmed is not None or (autoconfirm and with_session):
            async with ctx.db.transaction() as tx:
                await audit.record(ctx, tx, existing, "user_repeated_signup", {"provider": provider})
            if settings.mailer.autoconfirm or settings.sms.autoconfirm:
                raise ALREADY_REGISTERED
            return obfuscated_user(ctx, client.aud, provider, address, data)

    # bcrypt runs before the transaction, so the write lock is never held while hashing; the
    # webhooks too.
    password_hash = await crypto.hash_password(password) if existing is None else None
    values = changes = None
    if existing is None:
        values = await new_user_values(ctx, client, provider, address, password_hash=password_hash,
                                       data=data, autoconfirm=autoconfirm)
    elif autoconfirm:
        changes = await webhooks.notify(ctx, webhooks.SIGNUP, existing)
    try:
        async with ctx.db.transaction() as tx:
            if existing is None:
                user = await create_user(ctx, tx, client.aud, provider, address, password_hash=password_hash,
                                         data=data, values=values)
                metrics.count("signups", provider=provider)
            else:
                # Unconfirmed: nothing about the account changes on a stranger's word; the
                # confirmation goes out again.
                await ensure_identity(tx, existing, provider, data, with_address=provider == "email")
                await webhooks.apply(tx, existing.id, changes)
                user = await user_store.get(tx, existing.id)
            user_id = user.id
            if autoconfirm:
                traits = {"provider": provider} if provider == "email" else {"provider": provider, "channel": channel}
                await audit.record(ctx, tx, user, "user_signedup", traits)
                await (confirm_email if provider == "email" else phone_otp.confirm)(tx, user)
                user = await user_store.get(tx, user_id)
                if with_session:
                    await audit.record(ctx, tx, user, "login", {"provider": provider})
                    return await sessions.issue(ctx, tx, user, "password", client)
            else:
                await audit.record(ctx, tx, user, "user_confirmation_requested", {"provider": provider})
                if provider == "phone":
                    await phone_otp.send(ctx, tx, user, phone_otp.CONFIRMATION, address, channel, client)
                else:
                    if pkce_challenge:
                        await flow_store.create(tx, user_id=user_id, provider_type="email",
                                                authentication_method="email/signup",
                                                code_challenge=pkce_challenge.code_challenge,
                                                code_challenge_method=pkce_challenge.method)
                    await emails.send(ctx, tx, user, emails.CONFIRMATION, to=address,
                                      redirect_to=redirect_to or settings.site_url, pkce=pkce_challenge is not None)
            user = await user_store.get(tx, user_id)
    except UniqueViolation:
        # Lost a race with a concurrent sign-up of the same address.
        if settings.mailer.autoconfirm or settings.sms.autoconfirm:
            raise ALREADY_REGISTERED from None
        return obfuscated_user(ctx, client.aud, provider, address, data)
    body = user.to_json()
    if user.invited_at is not None:
        body["user_metadata"] = {}
        body["identities"] = []
    if existing is None:
        # Only here: upstream's sign-up that answers with a session does not call it.
        try:
            await hook_points.after_user_created(ctx, client, user)
        except APIError as exc:
            log.error("after_user_created hook failed: %s", exc.message)
            raise APIError(500, "unexpected_failure", "Error invoking hook") from None
    return body


async def sign_in_anonymously(ctx: Context, client: Client, *, data: dict[str, Any]) -> dict[str, Any]:
    if not ctx.settings.external.anonymous_users.enabled:
        raise APIError(422, "anonymous_provider_disabled", "Anonymous sign-ins are disabled")
    values = _new_user_values(ctx, client.aud, password_hash=None, data=data, provider=None, anonymous=True)
    await hook_points.before_user_created(ctx, client, planned_user(values))
    try:
        async with ctx.db.transaction() as tx:
            # upstream wraps signupNewUser's error in its own, hiding the Postgres error there
            await insert_user(tx, values, ANONYMOUS_FAILED, shown=False)
            metrics.count("signups", provider="anonymous")
            user = await user_store.get(tx, values["id"])
            await audit.record(ctx, tx, user, "user_signedup", {"provider": "anonymous"})
            response = await sessions.issue(ctx, tx, user, "anonymous", client)
    except StatementRefused as exc:  # anything else the database refused in that transaction
        raise refused_user(ANONYMOUS_FAILED, exc) from exc
    await hook_points.after_user_created(ctx, client, user)
    return response
