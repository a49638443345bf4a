"""SQL for housekeeping: small batches of expired or stale rows, deleted as upstream's models/cleanup.go does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .base import Executor

# Upstream's batch sizes: 100 rows a statement, sessions 10 at a time so that the cascade to
# their refresh tokens and AMR claims stays small. SKIP LOCKED (PostgreSQL; SQLite's single
# writer needs none) leaves rows a request is using to a later sweep instead of waiting for them.
BATCH = 100
SESSION_BATCH = 10


@dataclass(frozen=True)
class Batch:
    """One statement: what it tidies (for logs), its SQL with $1 the cutoff, its row limit."""

    name: str
    sql: str
    limit: int


def _delete(table: str, where: str, limit: int = BATCH) -> str:
    return (f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {where} "
            f"LIMIT {limit} FOR UPDATE SKIP LOCKED)")


REVOKED_REFRESH_TOKENS = Batch(
    "revoked refresh tokens", _delete("refresh_tokens", "revoked = true AND updated_at < $1"), BATCH)
# the tokens of sessions past their not_after are revoked first, deleted a day later by the above
ENDED_SESSIONS_TOKENS = Batch(
    "refresh tokens of ended sessions",
    "UPDATE refresh_tokens SET revoked = true, updated_at = $2 WHERE id IN (SELECT r.id FROM refresh_tokens r "
    "JOIN sessions s ON r.session_id = s.id WHERE s.not_after < $1 AND r.revoked = false "
    f"LIMIT {BATCH} FOR UPDATE SKIP LOCKED)", BATCH)
ENDED_SESSIONS = Batch("ended sessions", _delete("sessions", "not_after < $1", SESSION_BATCH), SESSION_BATCH)
FLOW_STATES = Batch("flow states", _delete("flow_state", "created_at < $1"), BATCH)
MFA_CHALLENGES = Batch("MFA challenges", _delete("mfa_challenges", "created_at < $1"), BATCH)
UNVERIFIED_FACTORS = Batch(
    "unverified MFA factors", _delete("mfa_factors", "created_at < $1 AND status = 'unverified'"), BATCH)
ONE_TIME_TOKENS = Batch("expired one-time tokens", _delete("one_time_tokens", "created_at < $1"), BATCH)
# GOTRUE_SESSIONS_TIMEBOX / _INACTIVITY_TIMEOUT: $1 is now - 24 h - the limit
TIMEBOXED_SESSIONS = Batch("sessions past their timebox", _delete("sessions", "created_at < $1", BATCH), BATCH)
INACTIVE_SESSIONS = Batch(
    "inactive sessions", _delete("sessions", "refreshed_at IS NOT NULL AND refreshed_at < $1", BATCH), BATCH)
INACTIVE_UNREFRESHED_SESSIONS = Batch(
    "inactive sessions never refreshed",
    "DELETE FROM sessions WHERE id IN (SELECT s.id FROM sessions s JOIN refresh_tokens r ON r.session_id = s.id "
    "WHERE s.refreshed_at IS NULL AND r.revoked = false AND r.updated_at < $1 "
    f"LIMIT {BATCH} FOR UPDATE SKIP LOCKED)", BATCH)
ANONYMOUS_USERS = Batch(
    "anonymous users older than 30 days", _delete("users", "created_at < $1 AND is_anonymous = true"), BATCH)


async def run(ex: Executor, batch: Batch, cutoff: datetime, now: datetime) -> int:
    """One batch; the number of rows it deleted or revoked."""
    if batch is ENDED_SESSIONS_TOKENS:
        return await ex.execute(batch.sql, cutoff, now)
    return await ex.execute(batch.sql, cutoff)
