"""In-process limiters: the global email/SMS send budgets (and, later, per-IP buckets)."""

from __future__ import annotations

import time

from .config import Rate


class SendBudget:
    """GOTRUE_RATE_LIMIT_EMAIL_SENT / _SMS_SENT: one counter for the whole process.

    A plain number N means N events per fixed one-hour window counted from start-up; `N/<duration>`
    is a token bucket holding N that gains one token per duration (SESSIONS.md §5.2).
    """

    def __init__(self, rate: Rate, clock=time.monotonic) -> None:
        self._rate = rate
        self._clock = clock
        self._start = clock()
        self._window = 0
        self._count = 0.0
        self._tokens = rate.events
        self._last = self._start

    def take(self) -> bool:
        now = self._clock()
        period = self._rate.period.total_seconds()
        if self._rate.bucket:
            if period > 0:
                self._tokens = min(self._rate.events, self._tokens + (now - self._last) / period)
            self._last = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True
        window = int((now - self._start) // period) if period > 0 else 0
        if window != self._window:
            self._window, self._count = window, 0
        if self._count >= self._rate.events:
            return False
        self._count += 1
        return True
