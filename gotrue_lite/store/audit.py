"""SQL for the append-only audit log."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from .. import clock
from .base import Statement, Steps
from .sql import NIL_UUID


def record(payloads: list[dict[str, Any]], ip_address: str = "") -> Steps[None]:
    """Append entries in one statement, a microsecond apart so that they list in order."""
    now = clock.now()
    rows = [(NIL_UUID, str(uuid.uuid4()), payload, now + timedelta(microseconds=n), ip_address)
            for n, payload in enumerate(payloads)]
    values = ", ".join(f"(${5 * n + 1}, ${5 * n + 2}, ${5 * n + 3}, ${5 * n + 4}, ${5 * n + 5})" for n in range(len(rows)))
    yield Statement(f"INSERT INTO audit_log_entries (instance_id, id, payload, created_at, ip_address) VALUES {values}",
                    tuple(value for row in rows for value in row), "count")
