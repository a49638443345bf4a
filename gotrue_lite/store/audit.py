"""SQL for the append-only audit log."""

from __future__ import annotations

import uuid
from typing import Any

from .. import clock
from .base import Executor
from .sql import NIL_UUID, insert


async def record(ex: Executor, payload: dict[str, Any], ip_address: str = "") -> None:
    await insert(ex, "audit_log_entries", {
        "instance_id": NIL_UUID,
        "id": str(uuid.uuid4()),
        "payload": payload,
        "created_at": clock.now(),
        "ip_address": ip_address,
    })
