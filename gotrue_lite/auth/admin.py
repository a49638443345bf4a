"""What an admin may do to users (/admin/*): list, create, change, ban, delete, generate links."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .. import clock, crypto, imported_hashes
from ..config import parse_duration
from ..errors import APIError, validation
from ..models import User, iso
from ..store import StatementRefused, UniqueViolation
from ..store import admin as admin_store
from ..store import factors as factor_store
from ..store import one_time_tokens as ott_store
from ..store import sessions as session_store
from ..store import users as user_store
from . import Client, Context, audit, emails, fields, hook_points, mfa, otp
from .account import PENDING_TOKENS, merge_metadata
from .signup import (
    confirm_email, confirm_phone, create_user as create_email_user, ensure_identity, is_race, new_user_values,
    refused_user,
)

EMAIL_EXISTS = "A user with this email address has already been registered"
CREATING_FAILED = "Database error creating new user"  # upstream adminUserCreate, for any error in its transaction
PHONE_EXISTS = "Phone number already registered by another user"
AUDIT_SCOPES = {"author": ("actor_username", "actor_name"), "action": ("action",), "type": ("log_type",)}
# generate_link type -> the mail kind whose token it stores (and whose link it builds)
LINK_KINDS = {
    "signup": emails.CONFIRMATION,
    "invite": emails.INVITE,
    "magiclink": emails.MAGIC_LINK,
    "recovery": emails.RECOVERY,
    "email_change_current": emails.EMAIL_CHANGE_CURRENT,
    "email_change_new": emails.EMAIL_CHANGE_NEW,
}
_MISSING_UNIT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)$")


@dataclass(frozen=True)
class Actor:
    """Who acts: the admin user when the token names a session, else just the token's role."""

    user: User | None
    role: str


@dataclass(frozen=True)
class Attributes:
    """The body of POST/PUT /admin/users; "" and None mean "not given"."""

    email: str = ""
    phone: str = ""
    password: str | None = None
    password_hash: str = ""
    email_confirm: bool = False
    phone_confirm: bool = False
    user_metadata: dict[str, Any] | None = None
    app_metadata: dict[str, Any] | None = None
    role: str = ""
    ban_duration: str = ""
    id: str = ""
    aud: str = ""


def _email_exists() -> APIError:
    return APIError(422, "email_exists", EMAIL_EXISTS)


def _phone_exists() -> APIError:
    return APIError(422, "phone_exists", PHONE_EXISTS)


async def _audit(ctx: Context, tx, actor: Actor, action: str, traits: dict[str, Any]) -> None:
    await audit.record_admin(ctx, tx, actor.role, action, traits, actor=actor.user)


def parse_id(value: str, name: str) -> str:
    """A path id in canonical form; anything that is not a UUID is upstream's 404."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise validation(f"{name} must be an UUID", 404) from None


async def load_user(ctx: Context, user_id: str) -> User:
    user = await user_store.get(ctx.db, parse_id(user_id, "user_id"))
    if user is None:
        raise APIError(404, "user_not_found", "User not found")
    return user


def ban_duration(text: str) -> timedelta | None:
    """A Go duration, or "none" (= 0, lifts the ban); None when not given."""
    if not text:
        return None
    if text == "none":
        return timedelta(0)
    try:
        return parse_duration(text)
    except ValueError:
        detail = "missing unit in duration" if _MISSING_UNIT.match(text) else "invalid duration"
        raise validation(f'invalid format for ban duration: time: {detail} "{text}"') from None


def _banned_until(duration: timedelta) -> datetime | None:
    return None if duration == timedelta(0) else clock.now() + duration


def _listed(user: User) -> dict[str, Any]:
    # Upstream's listing loads no relations: identities null, factors absent.
    body = user.to_json(with_relations=False)
    body["identities"] = None
    return body


# --- listings ------------------------------------------------------------------------------

async def list_users(ctx: Context, aud: str, *, needle: str, descending: bool, page: int,
                     per_page: int, email: str = "") -> tuple[list[dict[str, Any]], int]:
    """A page of users; `email` (a gotrue-lite addition) is an exact, indexed lookup."""
    users, total = await admin_store.list_users(ctx.db, aud, needle=needle, email=email.strip().lower(),
                                                descending=descending, limit=per_page,
                                                offset=(page - 1) * per_page)
    return [_listed(u) for u in users], total


def audit_scope(query: str) -> tuple[tuple[str, ...], str]:
    """`<author|action|type>:<substring>` -> (payload keys, substring)."""
    if not query:
        return (), ""
    scope, colon, needle = query.partition(":")
    if scope not in AUDIT_SCOPES or not colon:
        raise validation(f"Invalid query scope: {query}")
    return AUDIT_SCOPES[scope], needle


async def list_audit(ctx: Context, query: str, *, page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
    keys, needle = audit_scope(query)
    rows, total = await admin_store.list_audit(ctx.db, keys=keys, needle=needle, limit=per_page,
                                               offset=(page - 1) * per_page)
    entries = [{"id": r["id"], "payload": r["payload"], "created_at": iso(r["created_at"]),
                "ip_address": r["ip_address"] or ""} for r in rows]
    return entries, total


# --- create --------------------------------------------------------------------------------

def _custom_id(value: str) -> str | None:
    if not value:
        return None
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise validation("ID must conform to the uuid v4 format") from None
    if parsed.int == 0:
        raise validation("ID cannot be a nil uuid")
    return str(parsed)


def _imported_hash(value: str) -> str:
    # bcrypt, argon2i/argon2id and Firebase scrypt, as upstream (NewUserWithPasswordHash); the hash
    # goes in as given, so the old password keeps working. A malformed one is a 400 here
    # (upstream answers 500 "Error creating user").
    if value.startswith(imported_hashes.TEXT_PREFIXES):
        problem = imported_hashes.problem(value)
        if problem:
            raise validation(f"Invalid password hash: {problem}")
        return value
    cost = crypto.bcrypt_cost(value)
    if cost is None or not 4 <= cost <= 31:
        raise validation("Invalid password hash: expected a bcrypt ($2a$, $2b$, $2y$), argon2 or Firebase scrypt hash")
    return value


async def create_user(ctx: Context, client: Client, actor: Actor, attrs: Attributes) -> dict[str, Any]:
    """POST /admin/users: a user with its identities, confirmed or not; no mail is sent."""
    settings = ctx.settings
    aud = attrs.aud or client.aud
    if not attrs.email and not attrs.phone:
        raise validation("Cannot create a user without either an email or phone")
    providers: list[str] = []
    email = phone = ""
    if attrs.email:
        email = fields.email(attrs.email)
        if await user_store.email_taken(ctx.db, email, aud):
            raise _email_exists()
        providers.append("email")
    if attrs.phone:
        phone = fields.phone(attrs.phone)
        if await user_store.find_by_phone(ctx.db, phone, aud) is not None:
            raise _phone_exists()
        providers.append("phone")
    if attrs.password is not None and attrs.password_hash:
        raise validation("Only a password or a password hash should be provided")
    if attrs.password_hash:
        imported = _imported_hash(attrs.password_hash)
    else:
        imported = None
        if attrs.password and fields.password_too_long(attrs.password):
            raise validation("bcrypt: password length exceeds 72 bytes")
    user_id = _custom_id(attrs.id) or str(uuid.uuid4())
    ban = ban_duration(attrs.ban_duration)
    if attrs.id and await user_store.get_bare(ctx.db, user_id) is not None:
        raise APIError(422, "user_already_exists", "User already registered")

    # Upstream applies no strength policy here; without a password a random one is stored.
    password_hash = imported or await crypto.hash_password(attrs.password or crypto.random_password())
    app_metadata = merge_metadata({"provider": providers[0], "providers": providers}, attrs.app_metadata or {})
    values: dict[str, Any] = {
        "id": user_id, "aud": aud, "role": attrs.role or settings.jwt.default_group_name,
        "email": email, "phone": phone, "encrypted_password": password_hash,
        "raw_app_meta_data": app_metadata, "raw_user_meta_data": dict(attrs.user_metadata or {}),
    }
    if ban is not None:
        values["banned_until"] = _banned_until(ban)
    try:
        async with ctx.db.transaction() as tx:
            await user_store.create(tx, values)
            user = await user_store.get(tx, user_id)
            for provider in providers:
                await ensure_identity(tx, user, provider, {})
            await _audit(ctx, tx, actor, "user_signedup", {
                "user_id": user_id, "user_email": email, "user_phone": phone, "provider": providers[0]})
            if attrs.email_confirm:
                await confirm_email(tx, await user_store.get(tx, user_id))
            if attrs.phone_confirm:
                await confirm_phone(tx, await user_store.get(tx, user_id))
            user = await user_store.get(tx, user_id)
    except UniqueViolation as exc:
        if not is_race(exc):
            raise refused_user(CREATING_FAILED, exc) from exc
        # Lost a race with a sign-up of the same address (or the address exists in another
        # audience: the unique indexes span audiences).
        phone_taken = bool(phone) and await user_store.find_by_phone(ctx.db, phone, aud) is not None
        raise (_phone_exists() if phone_taken or not email else _email_exists()) from None
    except StatementRefused as exc:  # e.g. a trigger on auth.users raised
        raise refused_user(CREATING_FAILED, exc) from exc
    return user.to_json()


# --- update --------------------------------------------------------------------------------

async def _set_address(tx, user: User, provider: str, address: str, confirmed: bool) -> None:
    """Write email or phone directly, creating or updating the matching identity."""
    await user_store.update_user(tx, user.id, **{provider: address})
    identity = next((i for i in user.identities if i.provider == provider and i.provider_id == user.id), None)
    if identity is None:
        await ensure_identity(tx, await user_store.get(tx, user.id), provider, {})
    else:
        await user_store.update_identity_data(tx, identity.id, {
            **identity.identity_data, provider: address, f"{provider}_verified": confirmed})
    if user.is_anonymous and confirmed:
        await user_store.update_user(tx, user.id, is_anonymous=False)


async def update_user(ctx: Context, actor: Actor, user: User, attrs: Attributes) -> dict[str, Any]:
    """PUT /admin/users/{id}: changes applied as given, without verification mails."""
    email = fields.email(attrs.email) if attrs.email else ""
    phone = fields.phone(attrs.phone) if attrs.phone else ""
    ban = ban_duration(attrs.ban_duration)
    if attrs.password is not None:
        fields.check_new_password(ctx.settings, attrs.password)
    # gotrue-lite deviation: upstream lets the unique index fail and answers 500.
    if email and email != user.email and await user_store.email_taken(ctx.db, email, user.aud or "",
                                                                       except_user=user.id):
        raise _email_exists()
    if phone and phone != user.phone:
        holder = await user_store.find_by_phone(ctx.db, phone, user.aud or "")
        if holder is not None and holder.id != user.id:
            raise _phone_exists()

    new_hash = await crypto.hash_password(attrs.password) if attrs.password is not None else None
    try:
        async with ctx.db.transaction() as tx:
            if attrs.role:
                await user_store.update_user(tx, user.id, role=attrs.role)
            if new_hash is not None:
                # A password set by an admin: whatever was pending and every session goes.
                await user_store.update_user(tx, user.id, encrypted_password=new_hash, **PENDING_TOKENS)
                await ott_store.delete_for_user(tx, user.id)
                await session_store.delete_for_user(tx, user.id)
            if email:
                await _set_address(tx, await user_store.get(tx, user.id), "email", email, attrs.email_confirm)
            if phone:
                await _set_address(tx, await user_store.get(tx, user.id), "phone", phone, attrs.phone_confirm)
            if attrs.email_confirm:
                await confirm_email(tx, await user_store.get(tx, user.id))
            if attrs.phone_confirm:
                await confirm_phone(tx, await user_store.get(tx, user.id))
            current = await user_store.get(tx, user.id)
            if attrs.app_metadata is not None:
                await user_store.update_user(tx, user.id,
                                             raw_app_meta_data=merge_metadata(current.app_metadata, attrs.app_metadata))
            if attrs.user_metadata is not None:
                await user_store.update_user(tx, user.id, raw_user_meta_data=merge_metadata(current.user_metadata,
                                                                                          attrs.user_metadata))
            if ban is not None:
                await user_store.update_user(tx, user.id, banned_until=_banned_until(ban))
            updated = await user_store.get(tx, user.id)
            await _audit(ctx, tx, actor, "user_modified", {
                "user_id": user.id, "user_email": updated.email or "", "user_phone": updated.phone or ""})
    except UniqueViolation:
        # A concurrent write took the address after the check above.
        raise (_email_exists() if email else _phone_exists()) from None
    return updated.to_json()


# --- delete --------------------------------------------------------------------------------

def _obfuscate(user_id: str, value: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256((user_id + value).encode()).digest()).decode().rstrip("=")


async def delete_user(ctx: Context, actor: Actor, user: User, *, soft: bool) -> None:
    """Hard delete removes everything; soft delete keeps the row, with nothing left that
    identifies the person or lets anyone sign in (upstream SoftDeleteUser)."""
    async with ctx.db.transaction() as tx:
        await _audit(ctx, tx, actor, "user_deleted", {
            "user_id": user.id, "user_email": user.email or "", "user_phone": user.phone or ""})
        if not soft:
            await admin_store.delete_user(tx, user.id)
            return
        current = await user_store.get(tx, user.id, lock=True)
        if current is None or current.deleted_at is not None:
            return  # gone meanwhile, or soft-deleted already: nothing more to do
        uid = current.id
        await user_store.update_user(
            tx, uid,
            email=_obfuscate(uid, current.email or ""),
            phone=_obfuscate(uid, current.phone or "")[:15],
            email_change=_obfuscate(uid, current.email_change or ""),
            phone_change=_obfuscate(uid, current.phone_change or "")[:15],
            encrypted_password=None,
            confirmation_token="", recovery_token="", email_change_token_current="", email_change_token_new="",
            phone_change_token="", reauthentication_token="",
            raw_user_meta_data={}, raw_app_meta_data={},
            deleted_at=clock.now(),
        )
        await ott_store.delete_for_user(tx, uid)
        for identity in current.identities:
            await admin_store.obfuscate_identity(
                tx, identity.id, _obfuscate(identity.user_id, f"{identity.provider}:{identity.provider_id}"))
        await factor_store.delete_for_user(tx, uid)
        await session_store.delete_for_user(tx, uid)


# --- factors -------------------------------------------------------------------------------

async def delete_factor(ctx: Context, client: Client, user: User, factor_id: str) -> dict[str, Any]:
    """Remove a factor, whatever the caller's aal; sessions it had raised to aal2 fall back to aal1."""
    factor = await mfa.load_factor(ctx, user, factor_id)
    async with ctx.db.transaction() as tx:
        await factor_store.delete(tx, factor, mfa.FACTOR_AMR[factor.factor_type])
        # Upstream records the factor's owner as the actor of factor_deleted, with the address.
        await audit.record(ctx, tx, user, "factor_deleted", {"user_id": user.id, "factor_id": factor.id},
                           client.ip or "")
    return factor.to_json()


async def update_factor(ctx: Context, actor: Actor, user: User, factor_id: str, *, friendly_name: str,
                        phone: str) -> dict[str, Any]:
    """PUT /admin/users/{id}/factors/{factor_id}: a new name, and a new number for a phone factor
    (upstream adminUserUpdateFactor); empty values change nothing."""
    factor = await mfa.load_factor(ctx, user, factor_id)
    changes: dict[str, Any] = {}
    if friendly_name:
        changes["friendly_name"] = mfa.check_friendly_name(friendly_name)
    if phone and factor.factor_type == "phone":
        changes["phone"] = fields.phone(phone)
    try:
        async with ctx.db.transaction() as tx:
            if changes:
                await factor_store.update_factor(tx, factor.id, **changes)
            await _audit(ctx, tx, actor, "factor_updated",
                         {"user_id": user.id, "factor_id": factor.id, "factor_type": factor.factor_type})
            updated = await factor_store.get(tx, user.id, factor.id)
    except UniqueViolation:
        # gotrue-lite deviation: upstream lets the unique index fail with a 500.
        if "phone" in changes and any(f.phone == changes["phone"] and f.id != factor.id for f in user.factors):
            raise APIError(422, "mfa_verified_factor_exists",
                           "A phone factor with this number already exists for this user") from None
        raise mfa.name_conflict(friendly_name) from None
    return updated.to_json()


# --- generate_link -------------------------------------------------------------------------

async def generate_link(ctx: Context, client: Client, actor: Actor, *, link_type: str, email: str, new_email: str,
                        password: str, data: dict[str, Any] | None, redirect_to: str) -> dict[str, Any]:
    """POST /admin/generate_link: store the token a mail of that type would carry, send nothing,
    and hand back the link, the OTP and the hash."""
    settings = ctx.settings
    address = fields.email(email)
    user = await user_store.find_by_email(ctx.db, address, client.aud)
    generated = False
    if user is None:
        if link_type == "magiclink":
            # A magic link for a stranger is a sign-up with a password nobody knows.
            link_type, password, generated = "signup", crypto.random_password(), True
        elif link_type in ("recovery", "email_change_current", "email_change_new"):
            raise APIError(404, "user_not_found", "User with this email not found")
    kind = LINK_KINDS.get(link_type)
    if kind is None:
        raise validation(f"Invalid email action link type requested: {link_type}")

    password_hash = None
    if user is None and link_type == "signup":
        if not password:
            raise validation("Signup requires a valid password")
        if not generated:
            fields.check_new_password(settings, password)
        password_hash = await crypto.hash_password(password)
    if user is not None and link_type in ("signup", "invite") and user.email_confirmed_at is not None:
        raise _email_exists()
    identifier, extra = address, {}
    if link_type in ("email_change_current", "email_change_new"):
        if link_type == "email_change_current" and not settings.mailer.secure_email_change_enabled:
            raise validation("Enable secure email change to generate link for current email")
        new_address = fields.email(new_email)
        if await user_store.email_taken(ctx.db, new_address, user.aud or "", except_user=user.id):
            raise _email_exists()
        extra = {"email_change": new_address, "email_change_confirm_status": 0}
        if link_type == "email_change_new":
            identifier = new_address
    elif link_type == "invite":
        extra = {"invited_at": clock.now()}

    values = None
    if user is None:
        # upstream asks before_user_created here (signup and invite links), outside the transaction.
        values = await new_user_values(ctx, client, "email", address, password_hash=password_hash, data=data or {},
                                       webhooks_asked=False)
    try:
        async with ctx.db.transaction() as tx:
            if user is None:
                user = await create_email_user(ctx, tx, client.aud, "email", address, password_hash=password_hash,
                                               data=data or {}, values=values)
            elif link_type == "signup" and data:
                await user_store.update_user(tx, user.id, raw_user_meta_data=merge_metadata(user.user_metadata, data))
            if link_type in ("magiclink", "recovery"):
                await audit.record(ctx, tx, user, "user_recovery_requested")
            elif link_type == "invite":
                await _audit(ctx, tx, actor, "user_invited", {"user_id": user.id, "user_email": address})
            issued = await otp.issue(tx, user.id, kind.column, identifier, settings.mailer.otp_length, extra=extra)
            fresh = await user_store.get(tx, user.id)
    except UniqueViolation:
        raise _email_exists() from None  # a concurrent sign-up took the address

    if values is not None:
        await hook_points.after_user_created(ctx, client, fresh)
    from ..mail import action_link

    return {
        **fresh.to_json(),
        "action_link": action_link(settings, kind.template, issued.stored, kind.verify_type, redirect_to),
        "email_otp": issued.code,
        "hashed_token": issued.stored,
        "verification_type": link_type,
        "redirect_to": redirect_to,
    }
