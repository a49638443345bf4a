"""The load generator: separate processes, each an aiohttp client with keep-alive connections.

Two modes, both bounded by a request count and by time:

* closed loop (rate=None): `concurrency` workers per process, each sending its next request as
  soon as the previous answer is read, until the deadline. This measures throughput.
* paced (rate=R): requests leave on a fixed schedule of R per second per process, whatever the
  answers do, and each latency is counted from its scheduled departure (so a stalled server is
  not hidden by a stalled client: no coordinated omission). This measures latency at a given
  load.

The first `warmup` seconds are excluded from the numbers, but not from the error count.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

REQUEST_TIMEOUT = 30.0  # seconds, for one request
MAX_ERROR_SAMPLES = 5


@dataclass
class Job:
    """What one load-generator process does."""

    base_url: str
    scenario: str
    concurrency: int
    duration: float
    warmup: float = 0.0
    max_requests: int = 200_000
    rate: float | None = None  # requests/s of this process (paced); None: closed loop
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    start_at: float = 0.0  # time.monotonic() (system-wide on Linux) when the clock starts


@dataclass
class LoadResult:
    requests: int  # every request sent, warm-up included
    measured: int  # answered as expected inside the measurement window
    window: float  # seconds
    errors: int
    latencies: list[float]  # seconds, sorted, of requests sent inside the window
    error_samples: list[str]
    client_cpu: float  # seconds of CPU used by the load-generator processes

    @property
    def rps(self) -> float:
        """Expected answers per second (errors do not count)."""
        return self.measured / self.window if self.window > 0 else 0.0

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile in milliseconds, or None without samples."""
        if not self.latencies:
            return None
        rank = max(1, min(len(self.latencies), int(round(q / 100.0 * len(self.latencies) + 0.5))))
        return self.latencies[rank - 1] * 1000.0


# --- scenarios: one request each; True when the answer is the expected one -----------------


class _Scenario:
    method = "GET"
    path = "/"

    def __init__(self, job: Job, rng: random.Random) -> None:
        self.job = job
        self.params = job.params
        self.rng = rng
        self.url = job.base_url + self.path
        self.headers: dict[str, str] = {}

    async def call(self, session, worker: int) -> tuple[bool, str]:
        async with session.request(self.method, self.url, headers=self.headers) as resp:
            body = await resp.read()
            return resp.status == 200, _sample(resp.status, body)


def _sample(status: int, body: bytes) -> str:
    return "" if status == 200 else f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}"


class Health(_Scenario):
    path = "/health"


class Bare(_Scenario):
    path = "/"


class User(_Scenario):
    path = "/user"

    def __init__(self, job: Job, rng: random.Random) -> None:
        super().__init__(job, rng)
        self.tokens = self.params["access_tokens"]

    async def call(self, session, worker: int) -> tuple[bool, str]:
        headers = {"Authorization": "Bearer " + self.tokens[worker % len(self.tokens)]}
        async with session.get(self.url, headers=headers) as resp:
            body = await resp.read()
            return resp.status == 200, _sample(resp.status, body)


class SignIn(_Scenario):
    method = "POST"
    path = "/token?grant_type=password"

    def __init__(self, job: Job, rng: random.Random) -> None:
        super().__init__(job, rng)
        self.users = int(self.params["users"])
        self.email = self.params["email_format"]
        self.password = self.params["password"]
        self.headers = {"Content-Type": "application/json"}

    async def call(self, session, worker: int) -> tuple[bool, str]:
        email = self.email.format(self.rng.randrange(self.users))
        data = json.dumps({"email": email, "password": self.password}).encode()
        async with session.post(self.url, data=data, headers=self.headers) as resp:
            body = await resp.read()
            return resp.status == 200, _sample(resp.status, body)


class Refresh(_Scenario):
    """Each worker owns one session and always presents that session's newest refresh token."""

    method = "POST"
    path = "/token?grant_type=refresh_token"

    def __init__(self, job: Job, rng: random.Random) -> None:
        super().__init__(job, rng)
        self.tokens = list(self.params["refresh_tokens"])
        self.headers = {"Content-Type": "application/json"}

    async def call(self, session, worker: int) -> tuple[bool, str]:
        data = json.dumps({"refresh_token": self.tokens[worker]}).encode()
        async with session.post(self.url, data=data, headers=self.headers) as resp:
            body = await resp.read()
            if resp.status != 200:
                return False, _sample(resp.status, body)
            self.tokens[worker] = json.loads(body)["refresh_token"]
            return True, ""


class SignUp(_Scenario):
    method = "POST"
    path = "/signup"

    def __init__(self, job: Job, rng: random.Random) -> None:
        super().__init__(job, rng)
        self.prefix = self.params["email_prefix"]
        self.password = self.params["password"]
        self.headers = {"Content-Type": "application/json"}
        self.counter = 0

    async def call(self, session, worker: int) -> tuple[bool, str]:
        self.counter += 1
        email = f"{self.prefix}-{self.counter}@bench.test"
        data = json.dumps({"email": email, "password": self.password}).encode()
        async with session.post(self.url, data=data, headers=self.headers) as resp:
            body = await resp.read()
            return resp.status == 200, _sample(resp.status, body)


class AdminUsers(_Scenario):
    def __init__(self, job: Job, rng: random.Random) -> None:
        super().__init__(job, rng)
        self.pages = int(self.params["pages"])
        self.per_page = int(self.params.get("per_page", 50))
        self.headers = {"Authorization": "Bearer " + self.params["service_key"]}

    async def call(self, session, worker: int) -> tuple[bool, str]:
        page = self.rng.randrange(self.pages) + 1
        url = f"{self.job.base_url}/admin/users?page={page}&per_page={self.per_page}"
        async with session.get(url, headers=self.headers) as resp:
            body = await resp.read()
            return resp.status == 200, _sample(resp.status, body)


SCENARIOS: dict[str, type[_Scenario]] = {
    "health": Health,
    "bare": Bare,
    "user": User,
    "signin": SignIn,
    "refresh": Refresh,
    "signup": SignUp,
    "admin": AdminUsers,
}


# --- one process ----------------------------------------------------------------------------


async def _run_job(job: Job) -> dict[str, Any]:
    import aiohttp

    rng = random.Random(job.seed)
    scenario = SCENARIOS[job.scenario](job, rng)
    lat = array("d")
    state = {"sent": 0, "errors": 0, "measured": 0, "samples": []}
    begin = job.start_at + job.warmup
    end = job.start_at + job.duration

    async def one(worker: int, departure: float) -> None:
        try:
            ok, sample = await scenario.call(session, worker)
        except Exception as exc:  # noqa: BLE001 - counted as an error, the run goes on
            ok, sample = False, f"{type(exc).__name__}: {exc}"
        done = time.monotonic()
        if not ok:
            state["errors"] += 1
            if len(state["samples"]) < MAX_ERROR_SAMPLES:
                state["samples"].append(sample)
        if departure >= begin:
            lat.append(done - departure)
        if ok and begin <= done <= end:
            state["measured"] += 1

    async def closed_worker(worker: int) -> None:
        while state["sent"] < job.max_requests:
            departure = time.monotonic()
            if departure >= end:
                return
            state["sent"] += 1
            await one(worker, departure)

    async def paced() -> None:
        interval = 1.0 / job.rate
        inflight = asyncio.Semaphore(max(1, job.concurrency))
        tasks = []
        k = 0
        while k < job.max_requests:
            departure = job.start_at + k * interval
            if departure >= end:
                break
            delay = departure - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await inflight.acquire()
            worker = k % max(1, job.concurrency)
            state["sent"] += 1

            async def run(worker=worker, departure=departure) -> None:
                try:
                    await one(worker, departure)
                finally:
                    inflight.release()

            tasks.append(asyncio.create_task(run()))
            k += 1
        await asyncio.gather(*tasks)

    connector = aiohttp.TCPConnector(limit=max(1, job.concurrency), limit_per_host=0,
                                     force_close=False, use_dns_cache=True)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    cpu0 = time.process_time()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        delay = job.start_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if job.rate:
            await paced()
        else:
            await asyncio.gather(*(closed_worker(w) for w in range(job.concurrency)))
    return {
        "sent": state["sent"],
        "measured": state["measured"],
        "errors": state["errors"],
        "samples": state["samples"],
        "lat": lat.tobytes(),
        "cpu": time.process_time() - cpu0,
    }


def _child(job: Job, conn) -> None:
    try:
        result = asyncio.run(_run_job(job))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as one error
        result = {"sent": 0, "measured": 0, "errors": 1, "samples": [f"load generator died: {exc!r}"],
                  "lat": b"", "cpu": 0.0}
    conn.send(result)
    conn.close()


class Load:
    """Load-generator processes started together; `wait()` collects their merged result."""

    START_DELAY = 1.5  # seconds for the processes to start before the clock starts

    def __init__(self, jobs: list[Job]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.start_at = time.monotonic() + self.START_DELAY
        self.jobs = jobs
        self.window = min(j.duration - j.warmup for j in jobs)
        self.deadline = self.start_at + max(j.duration for j in jobs) + REQUEST_TIMEOUT + 10
        self.procs = []
        for job in jobs:
            job.start_at = self.start_at
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(job, child), daemon=True)
            proc.start()
            child.close()
            self.procs.append((proc, parent))

    def wait_raw(self) -> list[dict[str, Any] | None]:
        """Each process's raw result (None for one that died or overran), in job order."""
        results: list[dict[str, Any] | None] = []
        for proc, conn in self.procs:
            remaining = max(0.1, self.deadline - time.monotonic())
            result = None
            if conn.poll(remaining):
                try:
                    result = conn.recv()
                except EOFError:
                    result = None
            results.append(result)
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        return results

    def wait(self) -> LoadResult:
        return self.merge(self.wait_raw(), self.window)

    @staticmethod
    def merge(results: list[dict[str, Any] | None], window: float) -> LoadResult:
        lat = array("d")
        merged = LoadResult(0, 0, window, 0, [], [], 0.0)
        for res in results:
            if res is None:
                merged.errors += 1
                merged.error_samples.append("load generator timed out or died")
                continue
            merged.requests += res["sent"]
            merged.measured += res["measured"]
            merged.errors += res["errors"]
            merged.client_cpu += res["cpu"]
            for sample in res["samples"]:
                if len(merged.error_samples) < MAX_ERROR_SAMPLES:
                    merged.error_samples.append(sample)
            chunk = array("d")
            chunk.frombytes(res["lat"])
            lat.extend(chunk)
        merged.latencies = sorted(lat)
        return merged


def split(total: int, parts: int) -> list[int]:
    """`total` as `parts` near-equal non-negative integers."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def default_processes() -> int:
    """One load-generator process per two cores, at least one."""
    return max(1, (os.cpu_count() or 2) // 2)
