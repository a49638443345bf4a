"""Unlinking one of a user's identities (DELETE /user/identities/{identity_id}); the email and
providers are then re-derived by external_accounts' UpdateUserEmailFromIdentities and
UpdateAppMetaDataProviders."""

from __future__ import annotations

import uuid

from ..errors import APIError
from ..models import User
from ..store import UniqueViolation
from ..store import users as user_store
from . import Client, Context, audit
from .external_accounts import refresh_providers, update_user_email_from_identities


async def check_identity_id(identity_id: str) -> uuid.UUID:
    """The path's identity id, upstream's first check of DeleteIdentity."""
    try:
        return uuid.UUID(identity_id)
    except ValueError:
        raise APIError(404, "validation_failed", "identity_id must be an UUID") from None


def _email_conflict() -> APIError:
    return APIError(422, "email_conflict_identity_not_deletable", "Unable to unlink identity due to email conflict")


async def unlink(ctx: Context, client: Client, user: User, identity_id: str) -> None:
    """DELETE /user/identities/{identity_id} after the audience check (identity.go DeleteIdentity)."""
    wanted = str(await check_identity_id(identity_id))
    if len(user.identities) <= 1:
        raise APIError(422, "single_identity_not_deletable", "User must have at least 1 identity after unlinking")
    identity = next((i for i in user.identities if str(i.id) == wanted), None)
    if identity is None:
        raise APIError(422, "identity_not_found", "Identity doesn't exist")
    async with ctx.db.transaction() as tx:
        # Read again under the lock: a racing unlink of the other identity must not leave none.
        locked = await user_store.get(tx, user.id, lock=True)
        if locked is None or not any(str(i.id) == wanted for i in locked.identities):
            raise APIError(422, "identity_not_found", "Identity doesn't exist")
        if len(locked.identities) <= 1:
            raise APIError(422, "single_identity_not_deletable", "User must have at least 1 identity after unlinking")
        await audit.record(ctx, tx, locked, "identity_unlinked", {
            "identity_id": str(identity.id), "provider": identity.provider,
            "provider_id": identity.provider_id}, client.ip or "")
        await user_store.delete_identity(tx, str(identity.id))
        if identity.provider == "phone":
            await user_store.update_user(tx, user.id, phone=None, phone_confirmed_at=None)
        else:
            try:
                await update_user_email_from_identities(ctx, tx, user.id)
            except UniqueViolation:  # a racing sign-up took the promoted address
                raise _email_conflict() from None
            except APIError as exc:
                if exc.error_code != "email_conflict":
                    raise
                raise _email_conflict() from None
        await refresh_providers(tx, user.id)
