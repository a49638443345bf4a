"""In-process limiters: the global email/SMS send budgets, per-client-IP token buckets for the
endpoints of SESSIONS.md §5.1, and gotrue-lite's per-account slowdown of password guessing.

Every update reads and writes its dictionary without awaiting, so on one event loop no lock is
needed and concurrent requests cannot slip between check and take. (The sign-in guard may make
an attempt wait for a place, but it checks and takes that place in one step too.)
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict, deque

from . import clock as _clock
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


def monotonic() -> float:
    """Seconds on the monotonic clock, moved by gotrue_lite.clock.offset (tests travel in time)."""
    return time.monotonic() + _clock.offset.total_seconds()


# Bounds on what an attacker can make us store. A limiter holds at most MAX_ENTRIES keys (about
# 200–300 bytes each), and a key longer than MAX_KEY_LENGTH — the rate-limit header is free text —
# is stored as a 32-character digest instead.
MAX_ENTRIES = 50_000
MAX_KEY_LENGTH = 64


def _short(key: str) -> str:
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class IPLimiter:
    """A token bucket per key (client IP): capacity `burst`, refilled at `events` per `period`.

    Upstream uses tollbooth (golang.org/x/time/rate buckets, starting full, in a go-cache whose
    entries expire a fixed TTL after creation). Here the refill is lazy — `tokens = min(burst,
    tokens + elapsed·rate)` on each request — and a bucket is forgotten once it has been idle long
    enough to be full again (burst ÷ rate), which loses nothing: a new bucket starts full. This is
    the "evict only idle buckets" variant SESSIONS.md §5.1 allows, stricter than upstream's reset
    of busy buckets every hour. With no refill at all (rate 0) the idle time is upstream's `ttl`.

    Buckets are kept in least-recently-used order, so expired ones are popped from the front (at
    most once a second, amortised O(1) per request). Over `max_entries` keys, the least recently
    used bucket is dropped even though it is not full yet: memory stays bounded against a client
    rotating through millions of addresses, at the price of that (oldest) client getting a fresh
    bucket.
    """

    __slots__ = ("rate", "burst", "idle", "max_entries", "_clock", "_buckets", "_next_sweep")

    def __init__(self, events: float, period: float, burst: float, *, ttl: float = 3600.0,
                 max_entries: int = MAX_ENTRIES, clock=monotonic) -> None:
        self.rate = events / period if events > 0 and period > 0 else 0.0  # tokens per second
        self.burst = float(max(burst, 0))
        self.idle = self.burst / self.rate if self.rate > 0 else ttl
        self.max_entries = max(1, max_entries)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> bool:
        """Take one token from `key`'s bucket; False (and nothing taken) when it is empty."""
        if len(key) > MAX_KEY_LENGTH:
            key = _short(key)
        now = self._clock()
        buckets = self._buckets
        state = buckets.pop(key, None)
        if state is None:
            tokens, at = self.burst, now
        else:
            tokens, at = state
            if now > at:
                tokens, at = min(self.burst, tokens + (now - at) * self.rate), now
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        buckets[key] = (tokens, at)  # re-inserted: the most recently used is last
        if len(buckets) > self.max_entries:
            buckets.popitem(last=False)
        if now >= self._next_sweep:
            self._sweep(now)
        return allowed

    def _sweep(self, now: float) -> None:
        """Forget the buckets idle long enough to be full again (they are at the front)."""
        self._next_sweep = now + min(self.idle, 1.0)
        buckets = self._buckets
        cutoff = now - self.idle
        while buckets:
            oldest, (_tokens, at) = next(iter(buckets.items()))
            if at > cutoff:
                return
            del buckets[oldest]


FIVE_MINUTES, HOUR, MINUTE = 300.0, 3600.0, 60.0
BURST = 30  # upstream's fixed burst for every per-IP limiter but anonymous sign-ins


class EndpointLimits:
    """The per-IP limiters of upstream's apilimiter.New, by name, built from the settings.

    Each name is one bucket set: the OTP-family endpoints share a rate setting but not buckets.
    SAML assertions and passkeys have no limiter because gotrue-lite has neither feature (nor
    their settings); MFA's are ready for when /factors exists.
    """

    def __init__(self, settings, *, max_entries: int = MAX_ENTRIES, clock=monotonic) -> None:
        rl = settings.rate_limit

        def per_5m(events: float) -> IPLimiter:
            return IPLimiter(events, FIVE_MINUTES, BURST, ttl=HOUR, max_entries=max_entries, clock=clock)

        mfa = settings.mfa.rate_limit_challenge_and_verify
        self.limiters: dict[str, IPLimiter] = {
            "token": per_5m(rl.token_refresh),
            "web3": per_5m(rl.web3),
            "verify": per_5m(rl.verify),
            "sso": per_5m(rl.sso),
            "otp": per_5m(rl.otp),
            "magiclink": per_5m(rl.otp),
            "recover": per_5m(rl.otp),
            "resend": per_5m(rl.otp),
            "user": per_5m(rl.otp),
            "signups": per_5m(rl.otp),
            # N per hour with a burst of N (upstream: SetBurst(int(RateLimitAnonymousUsers))).
            "anonymous_sign_ins": IPLimiter(rl.anonymous_users, HOUR, int(rl.anonymous_users), ttl=HOUR,
                                            max_entries=max_entries, clock=clock),
            # 1-minute TTL upstream; per minute, burst 30.
            "factor_challenge": IPLimiter(mfa, MINUTE, BURST, ttl=MINUTE, max_entries=max_entries, clock=clock),
            "factor_verify": IPLimiter(mfa, MINUTE, BURST, ttl=MINUTE, max_entries=max_entries, clock=clock),
        }

    def take(self, name: str, key: str) -> bool:
        return self.limiters[name].take(key)


class SignInGuard:
    """gotrue-lite's per-account slowdown of password guessing. Upstream has none.

    Upstream (internal/api/token.go, Token → performRateLimiting(limiterOpts.Token) before
    ResourceOwnerPasswordGrant) only limits /token per client IP — 150 per 5 minutes, burst 30,
    and only when GOTRUE_RATE_LIMIT_HEADER or Sb-Forwarded-For identifies the client; there is no
    failed-attempt counter on users or identities (the password_verification_attempt hook is the
    only per-account rule, and only where one is configured). So by default one account can be
    guessed at without end by anyone who rotates addresses, or by everyone when no header is set.

    The rule added here, per sign-in identifier (audience + email or phone, known or not, so the
    answers say nothing about which accounts exist): only a wrong password counts, and a right
    one clears the count. Once `threshold` failures have been counted — none more than `window`
    after the previous — the account is refused (429 over_request_rate_limit) for `first_delay`,
    doubling with each further failure up to `max_delay`; refused attempts check no password and
    count nothing. The legitimate user is never locked out for longer than `max_delay` after the
    guessing stops, and the count is forgotten after `window` of quiet.

    Attempts in flight are not failures, but each could become one: so no more may run at once
    than the failures still allowed (one at a time once a refusal has run out), and the others
    wait for a place instead of being refused. A parallel burst of right passwords therefore all
    succeed, a little queued, while a parallel burst of guesses gets exactly `threshold` checks
    and then refusals. A wait is capped at `max_wait` (then refused, as if limited).
    threshold 0 turns the rule off ([lite] signin_failure_limit).

    Use: `wait = await guard.admit(account)`; 0 means go ahead and call `settle` exactly once
    afterwards (True: right password, False: wrong, None: no answer, e.g. the database failed).
    """

    def __init__(self, threshold: int, *, first_delay: float = 5.0, max_delay: float = 300.0,
                 window: float = 900.0, max_wait: float = 30.0, max_entries: int = MAX_ENTRIES,
                 clock=monotonic) -> None:
        self.threshold = threshold
        self.first_delay = first_delay
        self.window = window
        self.max_delay = min(max_delay, window)  # so an entry past its window is never blocked
        self.max_wait = max_wait
        self.max_entries = max(1, max_entries)
        self._clock = clock
        # identifier -> (failures counted, time of the last one, refused until)
        self._failures: OrderedDict[str, tuple[int, float, float]] = OrderedDict()
        self._in_flight: dict[str, int] = {}
        self._waiting: dict[str, deque[asyncio.Future]] = {}

    def __len__(self) -> int:
        return len(self._failures)

    def _counted(self, account: str, now: float) -> tuple[int, float]:
        """(failures still counted, refused until) for `account`; forgets a quiet entry."""
        state = self._failures.get(account)
        if state is None:
            return 0, 0.0
        count, last, until = state
        if now - last > self.window:  # past any refusal too: max_delay <= window
            del self._failures[account]
            return 0, 0.0
        return count, until

    def _places(self, account: str, count: int) -> int:
        return max(self.threshold - count, 1) - self._in_flight.get(account, 0)

    async def admit(self, account: str) -> float:
        """0 if an attempt on `account` may check its password now, else the seconds to wait."""
        if self.threshold <= 0:
            return 0.0
        account = _short(account)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while True:
            now = self._clock()
            count, until = self._counted(account, now)
            if now < until:
                return until - now
            if self._places(account, count) > 0:
                self._in_flight[account] = self._in_flight.get(account, 0) + 1
                return 0.0
            remaining = deadline - loop.time()
            if remaining <= 0:
                return self.first_delay
            waiter = loop.create_future()
            queue = self._waiting.setdefault(account, deque())
            queue.append(waiter)
            try:
                async with asyncio.timeout(remaining):
                    await waiter
            except TimeoutError:
                pass  # looked at again above: refused unless a place has just come free
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake(account)  # the place this request was woken for goes to the next
                raise
            finally:
                if waiter in queue:
                    queue.remove(waiter)
                if not queue and self._waiting.get(account) is queue:
                    del self._waiting[account]

    def settle(self, account: str, right_password: bool | None) -> None:
        """The end of an admitted attempt: True clears the count, False counts a failure."""
        if self.threshold <= 0:
            return
        account = _short(account)
        busy = self._in_flight.get(account, 0) - 1
        if busy > 0:
            self._in_flight[account] = busy
        else:
            self._in_flight.pop(account, None)
        now = self._clock()
        if right_password:
            self._failures.pop(account, None)
        elif right_password is False:
            count, until = self._counted(account, now)
            self._failures.pop(account, None)  # re-inserted last: the newest entry
            count += 1
            if count >= self.threshold:
                delay = min(self.max_delay, self.first_delay * 2 ** min(count - self.threshold, 40))
                until = max(until, now + delay)
            self._failures[account] = (count, now, until)
            self._evict(now)
        self._wake(account)

    def _wake(self, account: str) -> None:
        """Let as many waiting attempts look again as there are places (all, when refused)."""
        queue = self._waiting.get(account)
        if not queue:
            return
        now = self._clock()
        count, until = self._counted(account, now)
        places = len(queue) if now < until else self._places(account, count)
        while places > 0 and queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                places -= 1

    def _evict(self, now: float) -> None:
        entries = self._failures
        cutoff = now - self.window
        while entries:
            oldest, (_count, last, _until) = next(iter(entries.items()))
            if last >= cutoff and len(entries) <= self.max_entries:
                return
            del entries[oldest]


class UsedSteps:
    """The newest TOTP time step each factor has accepted, so that a code works once (RFC 6238
    §5.2): a step at or before it is refused. An entry is only needed while its step could
    still verify (the window is one step either side), so it is forgotten after `ttl` seconds.

    Kept in this process; a deployment of several servers would put a shared store behind the
    same `claim` (until then a code could be replayed once against another server).
    """

    def __init__(self, ttl: float = 120.0, *, max_entries: int = MAX_ENTRIES, clock=monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max(1, max_entries)
        self._clock = clock
        self._steps: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key -> (step, until)

    def __len__(self) -> int:
        return len(self._steps)

    def claim(self, key: str, step: int) -> bool:
        """Record `step` for `key`; False (and nothing recorded) if it, or a later one, was used."""
        now = self._clock()
        while self._steps:  # oldest first: expired entries leave from the front
            first_key, (_step, until) = next(iter(self._steps.items()))
            if until > now:
                break
            del self._steps[first_key]
        found = self._steps.get(key)
        if found is not None and found[1] > now and found[0] >= step:
            return False
        self._steps.pop(key, None)
        self._steps[key] = (step, now + self.ttl)
        if len(self._steps) > self.max_entries:
            self._steps.popitem(last=False)
        return True
