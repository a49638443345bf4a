"""SQL for the external-account decision: identities by subject or email, users by email or invite."""

from __future__ import annotations

from typing import Any

from .. import clock
from ..models import Identity
from .base import Executor
from .users import IDENTITY_COLUMNS


def _placeholders(values: list[str], start: int = 1) -> str:
    return ", ".join(f"${i}" for i in range(start, start + len(values)))


async def find_identity(ex: Executor, provider_id: str, provider: str) -> Identity | None:
    row = await ex.fetch_one(
        f"SELECT {IDENTITY_COLUMNS} FROM identities WHERE provider_id = $1 AND provider = $2", provider_id, provider)
    return None if row is None else Identity.from_row(row)


async def identities_with_emails(ex: Executor, emails: list[str]) -> list[dict[str, Any]]:
    """(user_id, provider) of every identity whose (lower-cased) email is one of `emails`."""
    if not emails:
        return []
    return await ex.fetch_all(
        f"SELECT user_id, provider FROM identities WHERE email IN ({_placeholders(emails)}) ORDER BY created_at, id",
        *emails)


async def users_with_emails(ex: Executor, emails: list[str]) -> list[str]:
    """Ids of the non-SSO users whose email is one of `emails`, in any audience (as upstream)."""
    if not emails:
        return []
    rows = await ex.fetch_all(
        f"SELECT id FROM users WHERE email IN ({_placeholders(emails)}) AND is_sso_user = false ORDER BY created_at, id",
        *emails)
    return [row["id"] for row in rows]


async def identity_owners_with_email(ex: Executor, email: str) -> list[dict[str, Any]]:
    """(user_id, provider, aud) for each identity holding `email`, for the duplicate-email check."""
    return await ex.fetch_all(
        "SELECT i.user_id, i.provider, u.aud FROM identities i JOIN users u ON u.id = i.user_id "
        "WHERE i.email = $1 ORDER BY i.created_at, i.id", email.lower())


async def user_id_by_confirmation_token(ex: Executor, token: str) -> str | None:
    if not token:
        return None
    row = await ex.fetch_one(
        "SELECT id FROM users WHERE confirmation_token = $1 AND is_sso_user = false", token)
    return None if row is None else row["id"]


async def sign_in_identity(ex: Executor, identity_id: str, data: dict[str, Any]) -> None:
    """A returning identity: its data replaced, its sign-in time now."""
    now = clock.now()
    await ex.execute("UPDATE identities SET identity_data = $2, last_sign_in_at = $3, updated_at = $3 WHERE id = $1",
                     identity_id, data, now)


async def delete_other_identities(ex: Executor, user_id: str, keep_identity_id: str) -> None:
    await ex.execute("DELETE FROM identities WHERE user_id = $1 AND id <> $2", user_id, keep_identity_id)


async def email_owner(ex: Executor, email: str, aud: str) -> str | None:
    """The non-SSO user of `aud` holding `email` (FindUserByEmailAndAudience), if any."""
    row = await ex.fetch_one("SELECT id FROM users WHERE email = $1 AND aud = $2 AND is_sso_user = false",
                             email.lower(), aud)
    return None if row is None else row["id"]
