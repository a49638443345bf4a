"""Column encryption as upstream writes it (internal/crypto EncryptedString): AES-256-GCM with a
key derived per row by HKDF-SHA256 (info = the row id), stored as JSON {key_id, alg, data, nonce}."""

from __future__ import annotations

import base64
import json
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import APIError

ALGORITHM = "aes-gcm-hkdf"


def _key(row_id: str, key_b64url: str) -> bytes:
    master = base64.urlsafe_b64decode(key_b64url + "=" * (-len(key_b64url) % 4))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=row_id.encode()).derive(master)


def seal(settings, row_id: str, plain: str) -> str:
    """The value to store: encrypted JSON when GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPT is on, else plain."""
    security = settings.security
    if not security.db_encryption_encrypt:
        return plain
    nonce = os.urandom(12)
    data = AESGCM(_key(row_id, security.db_encryption_encryption_key)).encrypt(nonce, plain.encode(), None)
    # Go marshals []byte as standard base64 with padding; the field order is the struct's.
    return json.dumps({"key_id": security.db_encryption_encryption_key_id, "alg": ALGORITHM,
                       "data": base64.b64encode(data).decode(), "nonce": base64.b64encode(nonce).decode()},
                      separators=(",", ":"))


def _parse(stored: str) -> dict | None:
    """Upstream ParseEncryptedString: anything that is not a valid encrypted JSON is plain text."""
    if not stored.startswith("{"):
        return None
    try:
        value = json.loads(stored)
        nonce = base64.b64decode(value["nonce"])
        data = base64.b64decode(value["data"])
    except (ValueError, KeyError, TypeError):
        return None
    if not value.get("key_id") or not data or len(nonce) != 12 or value.get("alg") != ALGORITHM:
        return None
    return {"key_id": value["key_id"], "data": data, "nonce": nonce}


def open_(settings, row_id: str, stored: str) -> tuple[str, bool]:
    """(plain text, whether it should be re-sealed under the current key)."""
    security = settings.security
    parsed = _parse(stored)
    if parsed is None:
        return stored, security.db_encryption_encrypt
    key = security.db_encryption_decryption_keys.get(parsed["key_id"])
    if not key:
        raise APIError(500, "unexpected_failure", "Database error verifying MFA TOTP secret")
    try:
        plain = AESGCM(_key(row_id, key)).decrypt(parsed["nonce"], parsed["data"], None)
    except Exception:  # a wrong key or tampered data: upstream's 500 as well
        raise APIError(500, "unexpected_failure", "Database error verifying MFA TOTP secret") from None
    stale = security.db_encryption_encrypt and parsed["key_id"] != security.db_encryption_encryption_key_id
    return plain.decode(), stale
