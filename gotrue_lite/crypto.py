"""Password hashing (bcrypt, off the event loop; imported argon2 and Firebase scrypt hashes checked), random tokens, token hashes and PKCE checks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import bcrypt

from . import imported_hashes, metrics

BCRYPT_COST = 10  # Go's bcrypt.DefaultCost, what upstream writes
MAX_PASSWORD_BYTES = 72

HASHING_NICENESS = 10


def _yield_to_requests() -> None:
    # Hashing threads run at a lower priority: they still get every idle cycle, but the event
    # loop, the SQLite threads and PostgreSQL take a core from them at once when they wake, so
    # other requests (and the sign-in's own queries) do not queue behind bcrypt.
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: normal priority
        pass


# bcrypt releases the GIL, so one thread per core keeps every core busy without queueing
# the event loop behind hashing.
_pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="bcrypt",
                           initializer=_yield_to_requests)

# Compared against when the user does not exist, so an unknown email costs as much time as
# a wrong password (no timing oracle for account enumeration).
_DUMMY_HASH = bcrypt.hashpw(b"gotrue-lite dummy password", bcrypt.gensalt(BCRYPT_COST))

_BCRYPT_RE = re.compile(rb"^\$2[abxy]?\$(\d\d)\$[./A-Za-z0-9]{53}$")


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()


def _check(password: str, hashed: bytes) -> bool:
    raw = password.encode()
    if hashed.startswith(imported_hashes.PREFIXES):
        # Imported users (argon2, Firebase scrypt): checked as upstream checks them, any length.
        return imported_hashes.matches(raw, hashed.decode())
    if len(raw) > MAX_PASSWORD_BYTES or not _BCRYPT_RE.match(hashed):
        # Over-long input is a mismatch (Go truncates, python-bcrypt raises); spend the time anyway.
        bcrypt.checkpw(b"x", _DUMMY_HASH)
        return False
    return bcrypt.checkpw(raw, hashed)


_queued = 0  # hashes and checks submitted to _pool and not finished: the bcrypt queue
metrics.watch("bcrypt_queue", lambda: _queued)


async def _in_pool(kind: str, work, *args):
    global _queued
    metrics.count(f"{kind}_submitted")
    _queued += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(_pool, work, *args)
    finally:
        _queued -= 1
        metrics.count(f"{kind}_completed")


async def hash_password(password: str) -> str:
    return await _in_pool("password_hash", _hash, password)


async def check_password(password: str, hashed: str | None) -> bool:
    """True if `password` matches `hashed`; a missing hash still costs one bcrypt check."""
    target = hashed.encode() if hashed else _DUMMY_HASH
    ok = await _in_pool("password_check", _check, password, target)
    return ok and bool(hashed)


def is_bcrypt_hash(value: str) -> bool:
    return bool(_BCRYPT_RE.match(value.encode()))


def needs_rehash(value: str, password: str) -> bool:
    """Whether a hash that just matched `password` is replaced by a bcrypt hash at BCRYPT_COST:
    another bcrypt cost, or an imported argon2 / Firebase scrypt hash. A password over 72 bytes
    keeps its imported hash, which checks every byte where bcrypt would refuse it."""
    if value.startswith(imported_hashes.TEXT_PREFIXES):
        return len(password.encode()) <= MAX_PASSWORD_BYTES
    cost = bcrypt_cost(value)
    return cost is not None and cost != BCRYPT_COST


def bcrypt_cost(value: str) -> int | None:
    m = _BCRYPT_RE.match(value.encode())
    return int(m.group(1)) if m else None


def new_refresh_token() -> str:
    """Upstream's legacy format: 12 lower-case base32 characters (60 random bits)."""
    return base64.b32encode(secrets.token_bytes(8)).decode().lower()[:12]


def random_password() -> str:
    """For accounts that have no password of their own (OTP sign-ups, invites)."""
    return secrets.token_urlsafe(48)[:64]


def otp(length: int) -> str:
    return f"{secrets.randbelow(10 ** length):0{length}d}"


def token_hash(identifier: str, code: str) -> str:
    """hex SHA-224 of address + code: the value stored and put into links."""
    return hashlib.sha224((identifier + code).encode()).hexdigest()


def equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def pkce_matches(method: str, challenge: str, verifier: str) -> bool:
    if method == "s256":
        digest = hashlib.sha256(verifier.encode()).digest()
        computed = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        return equal(computed, challenge)
    return equal(verifier, challenge)
