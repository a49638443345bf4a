"""Validation and normalisation of the values users type: emails, phones, passwords."""

from __future__ import annotations

import re

from ..crypto import MAX_PASSWORD_BYTES
from ..errors import validation, weak_password
from ..sms import normalise_phone

_EMAIL = re.compile(
    r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)
_E164 = re.compile(r"^[1-9][0-9]{1,14}$")


def email(value: str, status: int = 400) -> str:
    """A valid email, lower-cased, or the 400 upstream gives."""
    if not value:
        raise validation("An email address is required", status)
    if len(value) > 255:
        raise validation("An email address is too long", status)
    if not _EMAIL.fullmatch(value):  # fullmatch: `$` alone lets a trailing "\n" through
        raise validation("Unable to validate email address: invalid format", status)
    return value.lower()


def phone(value: str) -> str:
    """A valid number in upstream's stored form (digits, no '+'), or upstream's 400 (validatePhone)."""
    normalised = normalise_phone(value)
    if not _E164.fullmatch(normalised):
        raise validation("Invalid phone number format (E.164 required)")
    return normalised


def password_too_long(value: str) -> bool:
    return len(value.encode()) > MAX_PASSWORD_BYTES


def weakness(settings, value: str) -> tuple[str, list[str]] | None:
    """Why a password fails the policy (message, reasons), or None when it passes."""
    messages: list[str] = []
    reasons: list[str] = []
    policy = settings.password
    # Go counts bytes.
    if len(value.encode()) < policy.min_length:
        reasons.append("length")
        messages.append(f"Password should be at least {policy.min_length} characters.")
    required = [s for s in policy.required_characters if s]
    if any(not any(ch in value for ch in charset) for charset in required):
        reasons.append("characters")
        messages.append(
            f"Password should contain at least one character of each: {', '.join(policy.required_characters)}."
        )
    return (" ".join(messages), reasons) if reasons else None


def check_new_password(settings, value: str) -> None:
    """The rule every password write applies: the bcrypt limit, then the policy."""
    if password_too_long(value):
        raise validation(f"Password cannot be longer than {MAX_PASSWORD_BYTES} characters")
    weak = weakness(settings, value)
    if weak:
        raise weak_password(*weak)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               '"': '\\"', "\\": "\\\\"}


def go_quote(value: str) -> str:
    """Go's %q of a string, as upstream's messages show what the user typed."""
    out = []
    for ch in value:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'
