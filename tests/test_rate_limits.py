"""Per-IP request limits (SESSIONS.md §5.1) and the per-account sign-in slowdown (issue 7)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from gotrue_lite import clock
from gotrue_lite.ratelimit import IPLimiter, SignInGuard
from helpers import PASSWORD, V2, assert_error, bearer, concurrently, new_email, signup_session

LIMITED = "Request rate limit reached"
XFF = {"GOTRUE_RATE_LIMIT_HEADER": "X-Forwarded-For"}


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def travel(seconds: float) -> None:
    """Move the server's clock (and the limiters', which read gotrue_lite.clock.offset)."""
    clock.offset += timedelta(seconds=seconds)


def statuses(http: httpx.Client, method: str, path: str, count: int, **kwargs) -> list[int]:
    return [http.request(method, path, **kwargs).status_code for _ in range(count)]


def assert_limited(resp: httpx.Response) -> None:
    assert_error(resp, 429, "over_request_rate_limit", LIMITED)
    assert "Retry-After" not in resp.headers


def assert_limited_v2(resp: httpx.Response) -> None:
    assert resp.status_code == 429, resp.text
    assert resp.json() == {"code": "over_request_rate_limit", "message": LIMITED}
    assert resp.headers["X-Supabase-Api-Version"] == "2024-01-01"
    assert resp.headers["x-sb-error-code"] == "over_request_rate_limit"


# --- the bucket itself ---------------------------------------------------------------------


def test_bucket_starts_full_and_refills_lazily():
    now = FakeClock()
    limiter = IPLimiter(3, 300, 5, clock=now)  # one token per 100 s, capacity 5
    assert [limiter.take("a") for _ in range(6)] == [True] * 5 + [False]
    assert limiter.take("b")  # every key has its own full bucket
    now.now += 99
    assert not limiter.take("a")  # 0.99 of a token is not enough (rejections take nothing)
    now.now += 1
    assert limiter.take("a") and not limiter.take("a")
    now.now += 10_000
    assert [limiter.take("a") for _ in range(6)] == [True] * 5 + [False]  # capped at the burst


def test_bucket_without_refill_and_zero_burst():
    now = FakeClock()
    frozen = IPLimiter(0, 300, 2, ttl=3600, clock=now)
    assert [frozen.take("a") for _ in range(3)] == [True, True, False]
    now.now += 3599
    assert not frozen.take("a")  # no refill, and the bucket was not idle
    now.now += 3600
    frozen.take("other")  # the idle bucket of "a" is dropped: full again, as upstream's TTL does
    assert frozen.take("a")
    assert not IPLimiter(30, 3600, 0, clock=now).take("a")  # burst 0 allows nothing


def test_idle_buckets_are_forgotten_once_they_would_be_full():
    now = FakeClock()
    limiter = IPLimiter(30, 300, 30, clock=now)  # refills completely in 300 s
    for _ in range(31):
        limiter.take("old")
    now.now += 299
    limiter.take("new")
    assert len(limiter) == 2  # "old" is not full yet: kept
    now.now += 2
    limiter.take("newer")
    assert len(limiter) == 2  # "old" (idle 301 s) is gone, "new" (idle 2 s) stays
    assert limiter.take("old")


def test_memory_stays_bounded_against_a_million_addresses():
    now = FakeClock()
    cap = 10_000
    limiter = IPLimiter(150, 300, 30, max_entries=cap, clock=now)
    for _ in range(30):
        limiter.take("victim")
    assert not limiter.take("victim")
    # All at one instant: nothing has refilled, so only the hard cap holds the line.
    for i in range(1_000_000):
        limiter.take(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}-{i}")
        if i % 100_000 == 0:
            assert len(limiter) <= cap
    assert len(limiter) == cap
    assert "victim" not in limiter._buckets  # pushed out by the cap: the documented price
    # A long header value is stored as a short digest, whatever its length.
    limiter.take("x" * 8000)
    assert max(len(key) for key in limiter._buckets) <= 64

    # Time passing: buckets idle for their refill time (30 ÷ 0.5/s = 60 s) expire on their own.
    now.now += 61
    limiter.take("fresh")
    assert len(limiter) == 1

    # 100 new addresses a second for 2,000 s: only about the last minute's (6,000) are remembered
    # (expired buckets are swept once a second).
    limiter = IPLimiter(150, 300, 30, clock=now)  # default cap, 50,000
    for i in range(200_000):
        now.now += 0.01
        limiter.take(f"2001:db8::{i:x}")
        if i % 10_000 == 0:
            assert len(limiter) <= 6_100
    assert 5_900 <= len(limiter) <= 6_100
    now.now += 61
    limiter.take("last")
    assert len(limiter) == 1


async def wrong_password(guard: SignInGuard, account: str) -> float:
    """One attempt with a wrong password: the guard's answer, and the failure counted if admitted."""
    wait = await guard.admit(account)
    if not wait:
        guard.settle(account, False)
    return wait


def guess(guard: SignInGuard, account: str) -> float:
    return asyncio.run(wrong_password(guard, account))


def test_signin_guard_grows_caps_and_resets():
    now = FakeClock()
    guard = SignInGuard(3, first_delay=5, max_delay=40, window=900, clock=now)
    assert [guess(guard, "a") for _ in range(3)] == [0, 0, 0]  # the 3rd failure starts a 5 s refusal
    assert guess(guard, "a") == 5
    assert guess(guard, "b") == 0  # another account is unaffected
    delays = []
    for _ in range(5):
        wait = guess(guard, "a")
        now.now += wait
        assert guess(guard, "a") == 0
        delays.append(guess(guard, "a"))
    assert delays == [10, 20, 40, 40, 40]  # doubling, capped

    async def right_password() -> float:
        wait = await guard.admit("a")
        if not wait:
            guard.settle("a", True)
        return wait

    now.now += 40
    assert asyncio.run(right_password()) == 0  # clears the count
    assert [guess(guard, "a") for _ in range(3)] == [0, 0, 0]
    now.now += 901  # a quiet window forgets the count (and the entry)
    assert guess(guard, "a") == 0 and guess(guard, "a") == 0
    assert guess(SignInGuard(0), "a") == 0  # threshold 0: off


def test_signin_guard_counts_neither_attempts_in_flight_nor_successes():
    now = FakeClock()
    guard = SignInGuard(3, first_delay=5, window=900, max_wait=5, clock=now)

    async def scenario() -> None:
        # Three may be in flight at once (each could still fail); a fourth waits for a place.
        assert [await guard.admit("a") for _ in range(3)] == [0, 0, 0]
        fourth = asyncio.create_task(guard.admit("a"))
        await asyncio.sleep(0.05)
        assert not fourth.done()
        guard.settle("a", True)  # a success frees its place and counts nothing
        assert await fourth == 0
        for _ in range(3):
            guard.settle("a", True)
        assert len(guard) == 0
        # An attempt that ended without an answer (None) counts nothing either.
        assert await guard.admit("a") == 0
        guard.settle("a", None)
        assert len(guard) == 0

        # Three in flight that all fail: the waiting fourth is refused, not let through.
        assert [await guard.admit("b") for _ in range(3)] == [0, 0, 0]
        fourth = asyncio.create_task(guard.admit("b"))
        await asyncio.sleep(0.05)
        for _ in range(3):
            guard.settle("b", False)
        assert await fourth == 5
        # Once the refusal has run out, one attempt at a time.
        now.now += 5
        assert await guard.admit("b") == 0
        second = asyncio.create_task(guard.admit("b"))
        await asyncio.sleep(0.05)
        assert not second.done()
        guard.settle("b", False)  # the 4th failure: 10 s
        assert await second == 10

        # A wait is capped: with the places held and nothing settling, refused after max_wait.
        guard.max_wait = 0.1
        for _ in range(3):
            assert await guard.admit("c") == 0
        assert await guard.admit("c") == 5
        # A cancelled waiter leaves nothing behind.
        guard.max_wait = 5
        waiting = asyncio.create_task(guard.admit("c"))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert "c" not in guard._waiting

    asyncio.run(scenario())


def test_signin_guard_memory_is_bounded():
    now = FakeClock()
    guard = SignInGuard(3, max_entries=1000, clock=now)

    async def many() -> None:
        for i in range(100_000):
            await wrong_password(guard, f"user{i}@example.com")

    asyncio.run(many())
    assert len(guard) == 1000
    now.now += 901
    guess(guard, "x")
    assert len(guard) == 1


# --- over HTTP -----------------------------------------------------------------------------


@pytest.fixture
def http_of():
    clients = []

    def make(server) -> httpx.Client:
        client = httpx.Client(base_url=server.url, timeout=60)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_verify_limit_per_ip_shared_prefix_and_refill(make_server, http_of):
    server = make_server("sqlite", **XFF, GOTRUE_RATE_LIMIT_VERIFY="3")  # 1 token / 100 s, burst 30
    http = http_of(server)
    a = {"X-Forwarded-For": "203.0.113.7, 10.0.0.1"}
    body = {"type": "signup", "token_hash": "nope"}
    # 30 between both mounts and both methods: one bucket.
    got = statuses(http, "POST", "/verify", 15, json=body, headers=a)
    got += statuses(http, "POST", "/auth/v1/verify", 10, json=body, headers=a)
    got += statuses(http, "GET", "/verify?type=signup&token=x", 5, headers=a)
    assert 429 not in got, got
    assert_limited(http.post("/verify", json=body, headers=a))
    assert_limited(http.post("/auth/v1/verify", json=body, headers={"X-Forwarded-For": "203.0.113.7 ,10.9.9.9"}))
    assert_limited_v2(http.get("/verify?type=signup&token=x", headers={**a, **V2}))
    # Another client (first value differs) has its own bucket; the rest of the list is ignored.
    other = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
    assert http.post("/verify", json=body, headers=other).status_code != 429
    # No header on the request, or a blank first value: not limited at all.
    assert 429 not in statuses(http, "POST", "/verify", 3, json=body)
    assert 429 not in statuses(http, "POST", "/verify", 3, json=body, headers={"X-Forwarded-For": ",1.2.3.4"})
    # Other endpoints are not touched by the verify bucket; unknown routes are just 404s.
    assert http.post("/verify/x", json=body, headers=a).status_code == 404
    assert http.delete("/verify", headers=a).status_code == 405
    assert http.post("/token?grant_type=refresh_token", json={"refresh_token": "x"}, headers=a).status_code == 400
    # Refill: 3 per 5 minutes = one token per 100 s.
    travel(101)
    assert http.post("/verify", json=body, headers=a).status_code != 429
    assert_limited(http.post("/verify", json=body, headers=a))


def test_no_rate_limit_header_means_no_per_ip_limit(make_server, http_of):
    server = make_server("sqlite", GOTRUE_RATE_LIMIT_VERIFY="0", GOTRUE_RATE_LIMIT_TOKEN_REFRESH="0")
    http = http_of(server)
    headers = {"X-Forwarded-For": "203.0.113.7"}
    got = statuses(http, "POST", "/verify", 40, json={"type": "signup", "token_hash": "x"}, headers=headers)
    got += statuses(http, "POST", "/token?grant_type=refresh_token", 40, json={"refresh_token": "x"},
                    headers=headers)
    assert 429 not in got


def test_peer_fallback_and_sb_forwarded_for(make_server, http_of):
    server = make_server("sqlite", GOTRUE_LITE_RATE_LIMIT_PEER_FALLBACK="true")
    http = http_of(server)
    body = {"type": "signup", "token_hash": "x"}
    # Keyed on the socket peer: a forwarded header changes nothing.
    got = [http.post("/verify", json=body, headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code
           for i in range(30)]
    assert 429 not in got
    assert_limited(http.post("/verify", json=body))

    server = make_server("sqlite", **XFF, GOTRUE_SECURITY_SB_FORWARDED_FOR_ENABLED="true")
    http = http_of(server)
    sbff = {"Sb-Forwarded-For": "2001:db8::1", "X-Forwarded-For": "203.0.113.7"}
    assert 429 not in statuses(http, "POST", "/verify", 30, json=body, headers=sbff)
    assert_limited(http.post("/verify", json=body, headers=sbff))
    # Sb-Forwarded-For wins over the header; without it (or not an IP) the header is used.
    assert http.post("/verify", json=body, headers={"X-Forwarded-For": "203.0.113.7"}).status_code != 429
    bogus = {"Sb-Forwarded-For": "not-an-ip", "X-Forwarded-For": "203.0.113.7"}
    assert http.post("/verify", json=body, headers=bogus).status_code != 429
    assert_limited(http.post("/verify", json=body, headers={"Sb-Forwarded-For": "2001:db8:0::1"}))


def test_token_bucket_shared_by_grants(make_server, http_of):
    server = make_server("sqlite", **XFF)
    http = http_of(server)
    ip = {"X-Forwarded-For": "203.0.113.9"}
    got = statuses(http, "POST", "/token?grant_type=refresh_token", 20, json={"refresh_token": "x"}, headers=ip)
    got += statuses(http, "POST", "/auth/v1/token?grant_type=pkce", 5, json={}, headers=ip)
    # grant_type inside a form body (netlify) counts too.
    got += statuses(http, "POST", "/token", 5, data={"grant_type": "refresh_token", "refresh_token": "x"},
                    headers=ip)
    assert 429 not in got, got
    assert_limited(http.post("/token?grant_type=password", json={"email": "a@b.co", "password": "x"},
                             headers=ip))
    assert_limited(http.post("/token", data={"grant_type": "refresh_token", "refresh_token": "x"}, headers=ip))
    # An unknown grant is refused before the limiter is consulted.
    assert_error(http.post("/token?grant_type=magic", json={}, headers=ip), 400, "invalid_credentials")
    # Bad JSON is the handler's own error, untouched by the limiter.
    resp = http.post("/token", content=b"{nope", headers={**ip, "Content-Type": "application/json"})
    assert_error(resp, 400, "bad_json")


def test_otp_family_buckets_are_separate(make_server, http_of):
    server = make_server("sqlite", **XFF)
    http = http_of(server)
    ip = {"X-Forwarded-For": "192.0.2.44"}
    assert 429 not in statuses(http, "POST", "/recover", 30, json={}, headers=ip)
    assert_limited(http.post("/auth/v1/recover", json={"email": new_email()}, headers=ip))
    for path in ("/magiclink", "/otp", "/resend"):
        assert http.post(path, json={}, headers=ip).status_code != 429, path
    # Email sign-ups have their own bucket too.
    assert 429 not in statuses(http, "POST", "/signup", 29, json={"email": "bad"}, headers=ip)
    assert http.post("/signup", json={"email": new_email(), "password": PASSWORD}, headers=ip).status_code == 200
    assert_limited(http.post("/signup", json={"phone": "+15550001111", "password": PASSWORD}, headers=ip))


def test_anonymous_sign_ins_have_their_own_hourly_limit(make_server, http_of):
    server = make_server("sqlite", **XFF, GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED="true",
                         GOTRUE_RATE_LIMIT_ANONYMOUS_USERS="2")  # 2 per hour, burst 2
    http = http_of(server)
    ip = {"X-Forwarded-For": "192.0.2.50"}
    assert [http.post("/signup", json={}, headers=ip).status_code for _ in range(2)] == [200, 200]
    assert_limited(http.post("/auth/v1/signup", json={"data": {}}, headers=ip))
    # The email sign-up limiter is another bucket.
    assert http.post("/signup", json={"email": new_email(), "password": PASSWORD}, headers=ip).status_code == 200
    travel(1801)  # one token per 30 minutes
    assert http.post("/signup", json={}, headers=ip).status_code == 200
    assert_limited(http.post("/signup", json={}, headers=ip))

    server = make_server("sqlite", **XFF, GOTRUE_RATE_LIMIT_ANONYMOUS_USERS="0")  # anonymous disabled
    http = http_of(server)
    for _ in range(3):  # the 422 comes first; nothing is taken
        assert_error(http.post("/signup", json={}, headers=ip), 422, "anonymous_provider_disabled")


def test_put_user_is_limited_after_authentication(make_server, http_of):
    server = make_server("sqlite", **XFF)
    http = http_of(server)
    ip = {"X-Forwarded-For": "192.0.2.60"}
    for _ in range(35):  # unauthenticated calls never reach the limiter
        assert http.put("/user", json={}, headers=ip).status_code == 401
    token = signup_session(server)["access_token"]
    auth = {**ip, **bearer(token)}
    assert [http.put("/user", json={"data": {"n": i}}, headers=auth).status_code for i in range(30)] == [200] * 30
    assert_limited(http.put("/auth/v1/user", json={}, headers=auth))
    assert http.get("/user", headers=auth).status_code == 200  # GET /user is not limited
    assert http.put("/user", json={}, headers=ip).status_code == 401


# --- brute force on one account ----------------------------------------------------------


def test_failed_sign_ins_slow_the_account_down(make_server, backend, http_of):
    server = make_server(backend, GOTRUE_LITE_SIGNIN_FAILURE_LIMIT="3")
    http = http_of(server)
    victim, bystander = new_email("victim"), new_email("bystander")
    signup_session(server, victim)
    signup_session(server, bystander)

    def sign_in(email: str, password: str, headers=None) -> httpx.Response:
        return http.post("/token?grant_type=password", json={"email": email, "password": password},
                         headers=headers)

    for _ in range(3):
        assert_error(sign_in(victim, "wrong-guess"), 400, "invalid_credentials")
    assert_limited(sign_in(victim, PASSWORD))  # even the right password waits: no oracle
    assert_limited_v2(sign_in(victim.upper(), "wrong-guess", headers=V2))  # same account, any case
    assert_limited(http.post("/auth/v1/token", data={"grant_type": "password", "username": victim,
                                                     "password": PASSWORD}))
    # Other accounts are unaffected, and unknown addresses behave exactly like known ones.
    assert sign_in(bystander, PASSWORD).status_code == 200
    assert_error(sign_in(bystander, "wrong-guess"), 400, "invalid_credentials")
    ghost = new_email("ghost")
    for _ in range(3):
        assert_error(sign_in(ghost, "wrong-guess"), 400, "invalid_credentials")
    assert_limited(sign_in(ghost, "wrong-guess"))

    travel(5.5)  # the first refusal lasts 5 s
    assert sign_in(victim, PASSWORD).status_code == 200
    # Success cleared the count.
    for _ in range(3):
        assert_error(sign_in(victim, "wrong-guess"), 400, "invalid_credentials")
    assert_limited(sign_in(victim, PASSWORD))
    travel(5.5)
    assert_error(sign_in(victim, "wrong-guess"), 400, "invalid_credentials")  # 4th: 10 s now
    travel(5.5)
    assert_limited(sign_in(victim, PASSWORD))
    travel(5)
    assert sign_in(victim, PASSWORD).status_code == 200


def test_parallel_right_passwords_all_succeed_and_parallel_guesses_are_limited(make_server, backend):
    """40 sign-ins at once with the right password all succeed (only failures count); 40 wrong
    ones at once to another account get exactly the default 10 password checks, then 429s."""
    server = make_server(backend)  # [lite] signin_failure_limit at its default, 10
    owner, victim = new_email("owner"), new_email("victim")
    signup_session(server, owner)
    signup_session(server, victim)
    path = "/token?grant_type=password"
    right = concurrently(server, path, [{"email": owner, "password": PASSWORD}] * 40)
    wrong = concurrently(server, path, [{"email": victim, "password": "wrong-guess"}] * 40)
    assert [r.status_code for r in right] == [200] * 40, [r.text for r in right if r.status_code != 200][:3]
    assert len({r.json()["refresh_token"] for r in right}) == 40  # 40 sessions
    checked = [r for r in wrong if r.status_code == 400]
    limited = [r for r in wrong if r.status_code == 429]
    assert len(checked) == 10 and len(limited) == 30, sorted(r.status_code for r in wrong)
    for resp in checked:
        assert_error(resp, 400, "invalid_credentials")
    for resp in limited:
        assert_limited(resp)
    # The owner's burst left nothing behind: one more right sign-in, then guesses start from 0.
    assert concurrently(server, path, [{"email": owner, "password": PASSWORD}])[0].status_code == 200
    assert_limited(concurrently(server, path, [{"email": victim, "password": PASSWORD}])[0])


def test_sign_in_slowdown_can_be_turned_off(make_server, http_of):
    server = make_server("sqlite", GOTRUE_LITE_SIGNIN_FAILURE_LIMIT="0")
    http = http_of(server)
    email = new_email()
    signup_session(server, email)
    got = statuses(http, "POST", "/token?grant_type=password", 12, json={"email": email, "password": "nope"})
    assert got == [400] * 12
    assert http.post("/token?grant_type=password", json={"email": email, "password": PASSWORD}).status_code == 200
