"""One-time tokens: generating a code, storing its hash on the user and in one_time_tokens."""

from __future__ import annotations

from dataclasses import dataclass

from .. import clock, crypto
from ..errors import APIError
from ..store import Executor
from ..store import one_time_tokens as ott_store
from ..store import users as user_store

# token column on users → the sent-at column that starts its lifetime and cooldown
SENT_AT = {
    "confirmation_token": "confirmation_sent_at",
    "recovery_token": "recovery_sent_at",
    "email_change_token_new": "email_change_sent_at",
    "email_change_token_current": "email_change_sent_at",
    "phone_change_token": "phone_change_sent_at",
    "reauthentication_token": "reauthentication_sent_at",
}


@dataclass(frozen=True)
class IssuedToken:
    code: str  # the OTP mailed as {{ .Token }}
    stored: str  # what the link carries: the hash, maybe pkce_-prefixed


def cooldown(sent_at, frequency, error_code: str = "over_email_send_rate_limit") -> None:
    """429 when the previous message of this kind went out less than `frequency` ago."""
    if sent_at is None:
        return
    remaining = (sent_at + frequency - clock.now()).total_seconds()
    if remaining > 0:
        raise APIError(429, error_code,
                       f"For security purposes, you can only request this after {int(remaining)} seconds.")


async def issue(tx: Executor, user_id: str, column: str, identifier: str, length: int, *,
                pkce: bool = False, extra: dict | None = None, code: str | None = None) -> IssuedToken:
    """A fresh code for `column` (or the given one: a test OTP), replacing the previous one of its
    kind, in the caller's transaction."""
    code = code or crypto.otp(length)
    hashed = crypto.token_hash(identifier, code)
    stored = f"pkce_{hashed}" if pkce else hashed
    await user_store.update_user(tx, user_id, **{column: stored, SENT_AT[column]: clock.now()}, **(extra or {}))
    await ott_store.replace(tx, user_id, column, stored, identifier)
    return IssuedToken(code=code, stored=stored)
