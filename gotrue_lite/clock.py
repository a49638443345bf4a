"""The one clock: every timestamp the server writes or compares comes from here."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

# Tests running the server in-process move time by changing this offset.
offset = timedelta(0)


def now() -> datetime:
    return datetime.now(timezone.utc) + offset


def unix(moment: datetime | None = None) -> int:
    return int((moment or now()).timestamp())
