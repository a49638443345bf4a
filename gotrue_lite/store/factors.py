"""SQL for MFA factors and their challenges (the mfa_factors and mfa_challenges tables)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import clock
from ..models import Challenge, Factor
from .base import Executor
from .sql import insert, update

FACTOR_COLUMNS = ("id, user_id, friendly_name, factor_type, status, created_at, updated_at, phone, "
                  "last_challenged_at, secret, web_authn_credential, web_authn_aaguid")
CHALLENGE_COLUMNS = "id, factor_id, created_at, verified_at, ip_address, otp_code, web_authn_session_data"


def _factor(row: dict[str, Any] | None) -> Factor | None:
    return None if row is None else Factor.from_row(row)


async def get(ex: Executor, user_id: str, factor_id: str) -> Factor | None:
    """A factor of this user; another user's factor is None, as if it did not exist."""
    return _factor(await ex.fetch_one(
        f"SELECT {FACTOR_COLUMNS} FROM mfa_factors WHERE user_id = $1 AND id = $2", user_id, factor_id))


async def list_for_user(ex: Executor, user_id: str) -> list[Factor]:
    rows = await ex.fetch_all(
        f"SELECT {FACTOR_COLUMNS} FROM mfa_factors WHERE user_id = $1 ORDER BY created_at", user_id)
    return [Factor.from_row(r) for r in rows]


async def create(ex: Executor, values: dict[str, Any]) -> Factor:
    now = clock.now()
    row = {"created_at": now, "updated_at": now, "status": "unverified", **values}
    await insert(ex, "mfa_factors", row)
    return Factor.from_row(row)


async def update_factor(ex: Executor, factor_id: str, **values: Any) -> None:
    values.setdefault("updated_at", clock.now())
    await update(ex, "mfa_factors", "id", factor_id, values)


async def delete_ids(ex: Executor, factor_ids: list[str]) -> None:
    for factor_id in factor_ids:
        await ex.execute("DELETE FROM mfa_factors WHERE id = $1", factor_id)


async def delete_for_user(tx: Executor, user_id: str) -> None:
    await tx.execute("DELETE FROM mfa_factors WHERE user_id = $1", user_id)


async def delete_expired(ex: Executor, created_before: datetime) -> None:
    """Pending factors nobody ever challenged, of every user (upstream DeleteExpiredFactors)."""
    await ex.execute(
        "DELETE FROM mfa_factors WHERE status = 'unverified' AND created_at < $1 "
        "AND NOT EXISTS (SELECT 1 FROM mfa_challenges c WHERE c.factor_id = mfa_factors.id)",
        created_before,
    )


async def delete_unverified_of_type(tx: Executor, user_id: str, factor_type: str) -> None:
    await tx.execute("DELETE FROM mfa_factors WHERE user_id = $1 AND factor_type = $2 AND status = 'unverified'",
                     user_id, factor_type)


async def delete(tx: Executor, factor: Factor, amr_method: str) -> None:
    """Delete a factor and drop the sessions it raised back to aal1, without their AMR entry
    for it (upstream DowngradeSessionsToAAL1)."""
    await tx.execute("DELETE FROM mfa_factors WHERE id = $1", factor.id)
    # Sessions are reached through user_id, which is indexed; factor_id is not.
    await tx.execute(
        "DELETE FROM mfa_amr_claims WHERE authentication_method = $3 AND session_id IN "
        "(SELECT id FROM sessions WHERE user_id = $1 AND factor_id = $2)",
        factor.user_id, factor.id, amr_method,
    )
    await tx.execute("UPDATE sessions SET aal = 'aal1', factor_id = NULL WHERE user_id = $1 AND factor_id = $2",
                     factor.user_id, factor.id)


# Challenges -------------------------------------------------------------------------------

async def create_challenge(tx: Executor, values: dict[str, Any]) -> Challenge:
    """A challenge row; the factor's last_challenged_at moves to the challenge's time."""
    await insert(tx, "mfa_challenges", values)
    await tx.execute("UPDATE mfa_factors SET last_challenged_at = $2 WHERE id = $1",
                     values["factor_id"], values["created_at"])
    return Challenge.from_row(values)


async def get_challenge(ex: Executor, factor_id: str, challenge_id: str) -> Challenge | None:
    row = await ex.fetch_one(f"SELECT {CHALLENGE_COLUMNS} FROM mfa_challenges WHERE id = $1 AND factor_id = $2",
                             challenge_id, factor_id)
    return None if row is None else Challenge.from_row(row)


async def mark_challenge_verified(tx: Executor, challenge_id: str) -> int:
    """Set verified_at once; 0 rows when a racing verify of the same challenge got there first."""
    return await tx.execute("UPDATE mfa_challenges SET verified_at = $2 WHERE id = $1 AND verified_at IS NULL",
                            challenge_id, clock.now())


async def update_challenge(ex: Executor, challenge_id: str, **values: Any) -> None:
    await update(ex, "mfa_challenges", "id", challenge_id, values)


async def delete_challenge(ex: Executor, challenge_id: str) -> int:
    return await ex.execute("DELETE FROM mfa_challenges WHERE id = $1", challenge_id)
