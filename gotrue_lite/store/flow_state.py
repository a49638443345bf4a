"""SQL for flow_state: the PKCE (and OAuth round-trip) state of a sign-in in progress."""

from __future__ import annotations

import uuid

from .. import clock
from .base import Executor
from .sql import insert


async def create(ex: Executor, *, user_id: str | None, provider_type: str, authentication_method: str,
                 code_challenge: str | None, code_challenge_method: str | None) -> str:
    now = clock.now()
    flow_id = str(uuid.uuid4())
    await insert(ex, "flow_state", {
        "id": flow_id,
        "user_id": user_id,
        "auth_code": str(uuid.uuid4()) if code_challenge else None,
        "code_challenge_method": code_challenge_method,
        "code_challenge": code_challenge,
        "provider_type": provider_type,
        "authentication_method": authentication_method,
        "created_at": now,
        "updated_at": now,
        "email_optional": False,
    })
    return flow_id


FLOW_COLUMNS = ("id, user_id, auth_code, code_challenge_method, code_challenge, provider_type, provider_access_token, "
                "provider_refresh_token, created_at, updated_at, authentication_method, auth_code_issued_at")


async def latest_for_user(ex: Executor, user_id: str, method: str) -> dict | None:
    return await ex.fetch_one(
        f"SELECT {FLOW_COLUMNS} FROM flow_state WHERE user_id = $1 AND authentication_method = $2 "
        "ORDER BY created_at DESC LIMIT 1",
        user_id,
        method,
    )


async def stamp_code_issued(ex: Executor, flow_id: str) -> None:
    now = clock.now()
    await ex.execute("UPDATE flow_state SET auth_code_issued_at = $2, updated_at = $2 WHERE id = $1", flow_id, now)


async def find_by_code(ex: Executor, auth_code: str) -> dict | None:
    return await ex.fetch_one(f"SELECT {FLOW_COLUMNS} FROM flow_state WHERE auth_code = $1", auth_code)


async def take(ex: Executor, flow_id: str) -> bool:
    """Delete the flow; False when a concurrent exchange already took it (single use)."""
    return await ex.execute("DELETE FROM flow_state WHERE id = $1", flow_id) == 1


async def create_oauth(ex: Executor, *, flow_id: str | None = None, provider_type: str, code_challenge: str | None,
                       code_challenge_method: str | None, invite_token: str, referrer: str,
                       oauth_client_state_id: str | None, linking_target_id: str | None,
                       email_optional: bool) -> str:
    """The row every GET /authorize starts (upstream NewFlowState): its id is the OAuth state."""
    now = clock.now()
    flow_id = flow_id or str(uuid.uuid4())
    await insert(ex, "flow_state", {
        "id": flow_id,
        "user_id": None,
        "auth_code": str(uuid.uuid4()) if code_challenge else None,
        "code_challenge_method": code_challenge_method if code_challenge else None,
        "code_challenge": code_challenge or None,
        "provider_type": provider_type,
        "authentication_method": "oauth",
        "created_at": now,
        "updated_at": now,
        "invite_token": invite_token or None,
        "referrer": referrer or None,
        "oauth_client_state_id": oauth_client_state_id,
        "linking_target_id": linking_target_id,
        "email_optional": email_optional,
    })
    return flow_id


async def lock_for_callback(ex: Executor, flow_id: str) -> dict | None:
    """The flow row inside the callback's transaction; a row another callback holds is not found."""
    return await ex.fetch_one("SELECT id, user_id, auth_code FROM flow_state WHERE id = $1 FOR UPDATE SKIP LOCKED",
                              flow_id)


async def park_provider_tokens(ex: Executor, flow_id: str, user_id: str, access_token: str, refresh_token: str) -> None:
    """PKCE callback: the user and the provider's tokens wait in the row for /token?grant_type=pkce."""
    now = clock.now()
    await ex.execute("UPDATE flow_state SET user_id = $2, provider_access_token = $3, provider_refresh_token = $4, "
                     "auth_code_issued_at = $5, updated_at = $5 WHERE id = $1",
                     flow_id, user_id, access_token, refresh_token, now)


async def find_for_callback(ex: Executor, flow_id: str) -> dict | None:
    """The flow an OAuth callback's state names, with whether its linking target user still exists."""
    return await ex.fetch_one(
        "SELECT f.id, f.user_id, f.code_challenge, f.provider_type, f.authentication_method, f.created_at, "
        "f.auth_code_issued_at, f.referrer, f.linking_target_id, f.auth_code, f.invite_token, "
        "f.oauth_client_state_id, f.email_optional, "
        "(f.linking_target_id IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM users u WHERE u.id = f.linking_target_id)) AS linking_target_missing "
        "FROM flow_state f WHERE f.id = $1", flow_id)
