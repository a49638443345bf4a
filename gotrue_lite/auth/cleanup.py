"""Housekeeping (GOTRUE_DB_CLEANUP_ENABLED): a background task that deletes expired rows in small batches."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from .. import clock
from ..store import cleanup as batches
from ..store.base import Executor

log = logging.getLogger("gotrue_lite.cleanup")

# Upstream runs one batch after each successful write request; a background task instead runs
# every batch once a sweep, and again at once while a batch comes back full.
SWEEP_INTERVAL = 30.0  # seconds between sweeps
MAX_ROUNDS = 20  # full batches in a row before the sweep yields to the next one
DAY = timedelta(hours=24)


class Cleanup:
    """Which batches apply under these settings, and the task that runs them."""

    def __init__(self, settings, db: Executor) -> None:
        self.db = db
        otp_lifetime = timedelta(seconds=max(settings.mailer.otp_exp, settings.sms.otp_exp))
        # (batch, how long before now its rows count as stale)
        self.plan: list[tuple[batches.Batch, timedelta]] = [
            (batches.REVOKED_REFRESH_TOKENS, DAY),
            (batches.ENDED_SESSIONS_TOKENS, DAY),
            (batches.ENDED_SESSIONS, 3 * DAY),
            (batches.FLOW_STATES, DAY),
            (batches.MFA_CHALLENGES, DAY),
            (batches.UNVERIFIED_FACTORS, DAY),
            # not in upstream's list: a one-time token is spent or useless once its code expired
            (batches.ONE_TIME_TOKENS, DAY + otp_lifetime),
        ]
        if settings.external.anonymous_users.enabled:
            self.plan.append((batches.ANONYMOUS_USERS, timedelta(days=30)))
        if settings.sessions.timebox is not None:
            self.plan.append((batches.TIMEBOXED_SESSIONS, DAY + settings.sessions.timebox))
        if settings.sessions.inactivity_timeout is not None:
            self.plan.append((batches.INACTIVE_SESSIONS, DAY + settings.sessions.inactivity_timeout))
            self.plan.append((batches.INACTIVE_UNREFRESHED_SESSIONS, DAY + settings.sessions.inactivity_timeout))
        self._task: asyncio.Task | None = None
        self.swept = asyncio.Event()  # set after each sweep (tests and shutdown wait on it)

    async def sweep(self) -> int:
        """Every batch until it comes back short (or MAX_ROUNDS); the rows it touched."""
        total = 0
        for batch, age in self.plan:
            for _ in range(MAX_ROUNDS):
                now = clock.now()
                try:
                    count = await batches.run(self.db, batch, now - age, now)
                except Exception as exc:  # noqa: BLE001 - a failed batch waits for the next sweep
                    log.warning("database cleanup of %s failed: %s", batch.name, type(exc).__name__)
                    break
                total += count
                if count:
                    log.debug("cleaned up %d %s", count, batch.name)
                if count < batch.limit:
                    break
                await asyncio.sleep(0)  # let requests have the database between batches
        return total

    async def _loop(self) -> None:
        while True:
            await self.sweep()
            self.swept.set()
            await asyncio.sleep(SWEEP_INTERVAL)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="gotrue-lite cleanup")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None
