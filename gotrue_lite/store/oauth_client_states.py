"""SQL for oauth_client_states: the PKCE verifier gotrue-lite itself sends to a provider that wants PKCE."""

from __future__ import annotations

import uuid

from .. import clock
from .base import Executor
from .sql import insert


async def create(ex: Executor, provider_type: str, code_verifier: str, *, state_id: str | None = None) -> str:
    state_id = state_id or str(uuid.uuid4())
    await insert(ex, "oauth_client_states", {"id": state_id, "provider_type": provider_type,
                                             "code_verifier": code_verifier, "created_at": clock.now()})
    return state_id


async def take(ex: Executor, state_id: str) -> dict | None:
    """Delete the row and return it (FindAndDeleteOAuthClientStateByID): usable once."""
    return await ex.fetch_one("DELETE FROM oauth_client_states WHERE id = $1 "
                              "RETURNING id, provider_type, code_verifier, created_at", state_id)
