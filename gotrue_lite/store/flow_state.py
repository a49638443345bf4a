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
