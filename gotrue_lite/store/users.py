"""SQL for users, their identities and (read-only for now) their MFA factors."""

from __future__ import annotations

from typing import Any

from .. import clock
from ..models import Factor, Identity, User
from .base import Executor
from .sql import NIL_UUID, insert, update

USER_COLUMNS = (
    "id, aud, role, email, encrypted_password, email_confirmed_at, invited_at, confirmation_token, "
    "confirmation_sent_at, recovery_token, recovery_sent_at, email_change_token_new, email_change, "
    "email_change_sent_at, email_change_token_current, email_change_confirm_status, last_sign_in_at, "
    "raw_app_meta_data, raw_user_meta_data, created_at, updated_at, phone, phone_confirmed_at, "
    "phone_change, phone_change_token, phone_change_sent_at, confirmed_at, banned_until, "
    "reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous"
)
IDENTITY_COLUMNS = "id, provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, email"
FACTOR_COLUMNS = "id, user_id, friendly_name, factor_type, status, created_at, updated_at, phone, last_challenged_at"

# Columns the Go model reads as plain strings: they must hold '' rather than NULL.
_EMPTY_STRING_COLUMNS = (
    "confirmation_token", "recovery_token", "email_change_token_new", "email_change",
    "email_change_token_current", "phone_change", "phone_change_token", "reauthentication_token",
)


async def _with_relations(ex: Executor, row: dict[str, Any] | None) -> User | None:
    if row is None:
        return None
    identities = await ex.fetch_all(
        f"SELECT {IDENTITY_COLUMNS} FROM identities WHERE user_id = $1 ORDER BY created_at", row["id"]
    )
    factors = await ex.fetch_all(
        f"SELECT {FACTOR_COLUMNS} FROM mfa_factors WHERE user_id = $1 ORDER BY created_at", row["id"]
    )
    return User.from_row(
        row,
        identities=tuple(Identity.from_row(i) for i in identities),
        factors=tuple(Factor.from_row(f) for f in factors),
    )


async def get(ex: Executor, user_id: str, *, lock: bool = False) -> User | None:
    suffix = " FOR UPDATE" if lock else ""
    row = await ex.fetch_one(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1{suffix}", user_id)
    return await _with_relations(ex, row)


async def get_bare(ex: Executor, user_id: str) -> User | None:
    """The user row alone, for the hot path of authenticating a request."""
    row = await ex.fetch_one(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", user_id)
    return None if row is None else User.from_row(row)


async def find_by_email(ex: Executor, email: str, aud: str) -> User | None:
    # Emails are lower-cased on every write, so equality uses users_email_partial_key.
    row = await ex.fetch_one(
        f"SELECT {USER_COLUMNS} FROM users WHERE email = $1 AND aud = $2 AND is_sso_user = false",
        email.lower(),
        aud,
    )
    return await _with_relations(ex, row)


async def find_by_phone(ex: Executor, phone: str, aud: str) -> User | None:
    row = await ex.fetch_one(
        f"SELECT {USER_COLUMNS} FROM users WHERE phone = $1 AND aud = $2 AND is_sso_user = false", phone, aud
    )
    return await _with_relations(ex, row)


async def email_taken(ex: Executor, email: str, aud: str, *, except_user: str | None = None) -> bool:
    row = await ex.fetch_one(
        "SELECT id FROM users WHERE email = $1 AND aud = $2 AND is_sso_user = false", email.lower(), aud
    )
    return row is not None and row["id"] != except_user


async def create(ex: Executor, values: dict[str, Any]) -> None:
    now = clock.now()
    row: dict[str, Any] = {
        "instance_id": NIL_UUID,
        "is_super_admin": False,
        "is_sso_user": False,
        "is_anonymous": False,
        "email_change_confirm_status": 0,
        "created_at": now,
        "updated_at": now,
        **{col: "" for col in _EMPTY_STRING_COLUMNS},
        **values,
    }
    # No email / no phone is NULL, so the unique indexes never collide on "none".
    for col in ("email", "phone"):
        if not row.get(col):
            row[col] = None
    await insert(ex, "users", row)


async def update_user(ex: Executor, user_id: str, **values: Any) -> None:
    """Partial update; like upstream, every update rewrites updated_at."""
    values.setdefault("updated_at", clock.now())
    await update(ex, "users", "id", user_id, values)


async def create_identity(ex: Executor, values: dict[str, Any]) -> None:
    now = clock.now()
    await insert(ex, "identities", {"created_at": now, "updated_at": now, "last_sign_in_at": now, **values})


async def update_identity_data(ex: Executor, identity_id: str, data: dict[str, Any]) -> None:
    await update(ex, "identities", "id", identity_id, {"identity_data": data, "updated_at": clock.now()})
