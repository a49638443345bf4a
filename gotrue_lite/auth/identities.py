"""A user's identities: unlinking one, re-deriving the user's email and providers afterwards."""

from __future__ import annotations

import uuid
from typing import Any

from ..errors import APIError
from ..models import Identity, User
from ..store import Executor, UniqueViolation
from ..store import one_time_tokens as ott_store
from ..store import users as user_store
from . import Client, Context, audit

# ClearAllPendingTokens: every outstanding token and pending change, with their sent_at stamps.
_PENDING = {
    "confirmation_token": "", "confirmation_sent_at": None, "recovery_token": "", "recovery_sent_at": None,
    "email_change": "", "email_change_token_current": "", "email_change_token_new": "",
    "email_change_sent_at": None, "email_change_confirm_status": 0, "phone_change": "",
    "phone_change_token": "", "phone_change_sent_at": None, "reauthentication_token": "",
    "reauthentication_sent_at": None,
}


class EmailConflict(Exception):
    """No remaining identity has an email that no other user holds (UserEmailUniqueConflictError)."""


def _verified(identity: Identity) -> bool:
    return (identity.identity_data or {}).get("email_verified") is True


def _rank(identity: Identity) -> int:
    if not identity.email:
        return 2
    return 0 if _verified(identity) else 1


async def update_email_from_identities(ctx: Context, tx: Executor, user: User) -> None:
    """models/user.go UpdateUserEmailFromIdentities (EXTERNAL.md §5.4)."""
    identities = await user_store.identities_of(tx, user.id)
    current = user.email or ""
    if any((i.email or "") == current for i in identities):
        return
    identities.sort(key=lambda i: (_rank(i), i.created_at, str(i.id)))
    chosen: Identity | None = None
    for identity in identities:
        # no email is never "taken": users without one store NULL
        if not identity.email or not await user_store.email_taken(tx, identity.email, user.aud or ""):
            chosen = identity
            break
    if chosen is None:
        raise EmailConflict()
    changes: dict[str, Any] = {"email": chosen.email or None, **_PENDING}
    demote = not chosen.email or (not _verified(chosen) and not ctx.settings.mailer.autoconfirm)
    if demote:
        changes["email_confirmed_at"] = None
        changes["raw_user_meta_data"] = {**user.user_metadata, "email_verified": False}
    try:
        await user_store.update_user(tx, user.id, **changes)
    except UniqueViolation as exc:  # a racing sign-up took the address meanwhile
        raise EmailConflict() from exc
    await ott_store.delete_for_user(tx, user.id)


async def update_providers(tx: Executor, user_id: str) -> None:
    """UpdateAppMetaDataProviders: app_metadata.providers by identity creation, provider the first."""
    identities = await user_store.identities_of(tx, user_id)
    providers = list(dict.fromkeys(i.provider for i in identities))
    fresh = await user_store.get_bare(tx, user_id)
    metadata = dict(fresh.app_metadata if fresh else {})
    metadata["providers"] = providers
    if providers:
        metadata["provider"] = providers[0]
    await user_store.update_user(tx, user_id, raw_app_meta_data=metadata)


async def check_identity_id(identity_id: str) -> uuid.UUID:
    """The path's identity id, upstream's first check of DeleteIdentity."""
    try:
        return uuid.UUID(identity_id)
    except ValueError:
        raise APIError(404, "validation_failed", "identity_id must be an UUID") from None


async def unlink(ctx: Context, client: Client, user: User, identity_id: str) -> None:
    """DELETE /user/identities/{identity_id} after the audience check (identity.go DeleteIdentity)."""
    wanted = await check_identity_id(identity_id)
    if len(user.identities) <= 1:
        raise APIError(422, "single_identity_not_deletable", "User must have at least 1 identity after unlinking")
    identity = next((i for i in user.identities if str(i.id) == str(wanted)), None)
    if identity is None:
        raise APIError(422, "identity_not_found", "Identity doesn't exist")
    try:
        async with ctx.db.transaction() as tx:
            # Read again under the lock: a racing unlink of the other identity must not leave none.
            locked = await user_store.get(tx, user.id, lock=True)
            if locked is None or not any(str(i.id) == str(wanted) for i in locked.identities):
                raise APIError(422, "identity_not_found", "Identity doesn't exist")
            if len(locked.identities) <= 1:
                raise APIError(422, "single_identity_not_deletable",
                               "User must have at least 1 identity after unlinking")
            await audit.record(ctx, tx, locked, "identity_unlinked", {
                "identity_id": str(identity.id), "provider": identity.provider,
                "provider_id": identity.provider_id}, client.ip or "")
            await user_store.delete_identity(tx, str(identity.id))
            if identity.provider == "phone":
                await user_store.update_user(tx, user.id, phone=None, phone_confirmed_at=None)
            else:
                await update_email_from_identities(ctx, tx, locked)
            await update_providers(tx, user.id)
    except EmailConflict:
        raise APIError(422, "email_conflict_identity_not_deletable",
                       "Unable to unlink identity due to email conflict") from None
