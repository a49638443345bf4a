"""Password hashes imported from other systems (argon2i/argon2id, Firebase scrypt): parsed and
checked with upstream's formats and limits (internal/crypto/password.go)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

from argon2.exceptions import HashingError
from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ARGON2_PREFIX = "$argon2"
FBSCRYPT_PREFIX = "$fbscrypt"
TEXT_PREFIXES = (ARGON2_PREFIX, FBSCRYPT_PREFIX)
PREFIXES = tuple(p.encode() for p in TEXT_PREFIXES)

# Upstream's limits: a hash whose parameters ask for more is refused, not computed.
ARGON2_MAX_MEMORY_KIB = 1024 * 1024  # 1 GiB
ARGON2_MAX_TIME = 20
ARGON2_MAX_THREADS = 16
ARGON2_VERSION = 19
FBSCRYPT_KEY_LEN = 32  # AES-256
# Not an upstream limit (Go computes whatever n asks for): scrypt's memory is 128·r·N bytes,
# and one sign-in may not ask for more than argon2's cap.
FBSCRYPT_MAX_MEMORY = 1024 * 1024 * 1024

# The PHC string format as upstream reads it (argon2d is matched, then refused). \Z, not $:
# Go's $ does not match before a trailing newline.
_ARGON2 = re.compile(
    r"^\$(?P<alg>argon2(?:d|i|id))\$v=(?P<v>16|19)\$m=(?P<m>[0-9]+),t=(?P<t>[0-9]+),p=(?P<p>[0-9]+)"
    r"(?:,keyid=(?P<keyid>[^,$]+))?(?:,data=(?P<data>[^$]+))?\$(?P<salt>[^$]*)\$(?P<hash>.*)\Z")
_FBSCRYPT = re.compile(
    r"^\$fbscrypt\$v=(?P<v>[0-9]+),n=(?P<n>[0-9]+),r=(?P<r>[0-9]+),p=(?P<p>[0-9]+)"
    r"(?:,ss=(?P<ss>[^,]+))?(?:,sk=(?P<sk>[^$]+))?\$(?P<salt>[^$]+)\$(?P<hash>.+)\Z")


class UnusableHash(ValueError):
    """The hash is not one upstream would check; the message says why."""


@dataclass(frozen=True)
class Argon2Hash:
    type: Type
    memory_kib: int
    time: int
    threads: int
    salt: bytes
    digest: bytes


@dataclass(frozen=True)
class FirebaseScryptHash:
    n: int
    r: int
    p: int
    salt_separator: bytes
    signer_key: bytes
    salt: bytes
    digest: bytes


def _b64(text: str, *, padded: bool, what: str) -> bytes:
    # Go's StdEncoding wants the padding, RawStdEncoding refuses it.
    if not padded:
        if "=" in text:
            raise UnusableHash(f"invalid base64 in the {what}")
        text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise UnusableHash(f"invalid base64 in the {what}") from None


def _uint(text: str, bits: int, what: str) -> int:
    value = int(text)
    if value >= 1 << bits:
        raise UnusableHash(f"invalid {what} parameter {text}")
    return value


def parse_argon2(value: str) -> Argon2Hash:
    m = _ARGON2.match(value)
    if m is None:
        raise UnusableHash("incorrect argon2 hash format")
    if m["alg"] not in ("argon2i", "argon2id"):
        raise UnusableHash(f"argon2 hash uses unsupported algorithm {m['alg']!r}, only argon2i and argon2id")
    if m["v"] != str(ARGON2_VERSION):
        raise UnusableHash(f"argon2 hash uses unsupported version {m['v']!r}, only {ARGON2_VERSION}")
    if m["data"] is not None:
        raise UnusableHash("argon2 hashes with the data parameter are not supported")
    if m["keyid"] is not None:
        raise UnusableHash("argon2 hashes with the keyid parameter are not supported")
    memory = _uint(m["m"], 32, "m")
    if memory > ARGON2_MAX_MEMORY_KIB:
        raise UnusableHash(f"argon2 hash has m parameter {memory} exceeding the memory limit")
    time = _uint(m["t"], 32, "t")
    if time > ARGON2_MAX_TIME:
        raise UnusableHash(f"argon2 hash has t parameter {time} exceeding the time limit")
    threads = _uint(m["p"], 8, "p")
    if threads > ARGON2_MAX_THREADS:
        raise UnusableHash(f"argon2 hash has p parameter {threads} exceeding the thread limit")
    digest = _b64(m["hash"], padded=False, what="argon2 hash section")
    if not digest:
        raise UnusableHash("argon2 hash is empty")
    salt = _b64(m["salt"], padded=False, what="argon2 salt section")
    if not salt:
        raise UnusableHash("argon2 salt is empty")
    # Go's argon2 panics on t=0 or p=0 and silently raises m below 8·p: parameters no argon2
    # implementation writes. Refused here rather than answered differently.
    if time < 1 or threads < 1 or memory < 8 * threads:
        raise UnusableHash("argon2 hash has parameters no argon2 implementation produces")
    return Argon2Hash(Type.ID if m["alg"] == "argon2id" else Type.I, memory, time, threads, salt, digest)


def parse_fbscrypt(value: str) -> FirebaseScryptHash:
    m = _FBSCRYPT.match(value)
    if m is None:
        raise UnusableHash("incorrect Firebase scrypt hash format")
    if m["v"] != "1":
        raise UnusableHash(f"Firebase scrypt hash uses unsupported version {m['v']!r}, only version 1")
    power = _uint(m["n"], 32, "n")
    rounds = _uint(m["r"], 64, "r")
    threads = _uint(m["p"], 8, "p")
    for name, number in (("n", power), ("r", rounds), ("p", threads)):
        if number == 0:
            raise UnusableHash(f"Firebase scrypt hash has invalid {name}=0")
    if power >= 63 or 128 * rounds * (1 << power) > FBSCRYPT_MAX_MEMORY:
        raise UnusableHash(f"Firebase scrypt hash has n={power}, r={rounds} exceeding the memory limit")
    digest = _b64(m["hash"], padded=True, what="Firebase scrypt hash section")
    salt = _b64(m["salt"], padded=True, what="Firebase scrypt salt section")
    signer_key = _b64(m["sk"] or "", padded=True, what="Firebase scrypt signer key")
    separator = _b64(m["ss"] or "", padded=True, what="Firebase scrypt salt separator")
    return FirebaseScryptHash(1 << power, rounds, threads, separator, signer_key, salt, digest)


def problem(value: str) -> str | None:
    """Why an argon2 / Firebase scrypt hash would not be checked, or None when it would be
    (and for any other value: that is bcrypt's business)."""
    try:
        if value.startswith(ARGON2_PREFIX):
            parse_argon2(value)
        elif value.startswith(FBSCRYPT_PREFIX):
            parse_fbscrypt(value)
    except UnusableHash as exc:
        return str(exc)
    return None


def _argon2_matches(password: bytes, h: Argon2Hash) -> bool:
    try:
        derived = hash_secret_raw(password, h.salt, time_cost=h.time, memory_cost=h.memory_kib,
                                  parallelism=h.threads, hash_len=len(h.digest), type=h.type,
                                  version=ARGON2_VERSION)
    except HashingError:  # e.g. a salt shorter than libargon2's 8 bytes: nothing can match
        return False
    return hmac.compare_digest(derived, h.digest)


def _fbscrypt_matches(password: bytes, h: FirebaseScryptHash) -> bool:
    # Firebase's scheme: scrypt derives an AES-256 key from the password and salt+separator;
    # the stored value is the signer key encrypted with it in CTR mode under an all-zero IV.
    try:
        key = hashlib.scrypt(password, salt=h.salt + h.salt_separator, n=h.n, r=h.r, p=h.p,
                             maxmem=2**31 - 1, dklen=FBSCRYPT_KEY_LEN)
    except (ValueError, MemoryError):
        return False
    encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    derived = encryptor.update(h.signer_key) + encryptor.finalize()
    return hmac.compare_digest(derived, h.digest)


def matches(password: bytes, value: str) -> bool:
    """Blocking: run it off the event loop (crypto.check_password does)."""
    try:
        if value.startswith(ARGON2_PREFIX):
            return _argon2_matches(password, parse_argon2(value))
        if value.startswith(FBSCRYPT_PREFIX):
            return _fbscrypt_matches(password, parse_fbscrypt(value))
    except UnusableHash:
        return False  # upstream: a comparison error, answered as wrong credentials
    return False
