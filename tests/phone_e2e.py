"""Shared by the phone tests: numbers with test OTPs, the settings of a phone-enabled server, and
small readers of what a flow wrote."""

from __future__ import annotations

import hashlib
import itertools
import random

import httpx

from helpers import rows

CODE = "246810"
# Numbers that have a test OTP: nothing is texted to them, and their code is CODE.
_START = random.randrange(10 ** 6, 10 ** 7 - 10 ** 4)
TEST_NUMBERS = [f"1555{n:07d}" for n in range(_START, _START + 300)]
_pool = iter(TEST_NUMBERS)
_other = itertools.count(random.randrange(10 ** 6, 10 ** 7 - 10 ** 5))

# No SMS provider and no dev outbox: a text that must go out cannot.
NO_PROVIDER = {"GOTRUE_LITE_DEV_MAILBOX": "false"}
PHONE_ENV = {
    "GOTRUE_EXTERNAL_PHONE_ENABLED": "true",
    "GOTRUE_MAILER_AUTOCONFIRM": "false",  # with either autoconfirm on, a repeated sign-up is a 422
    "GOTRUE_SMS_TEST_OTP": ",".join(f"{n}:{CODE}" for n in TEST_NUMBERS),
}
OTP_INVALID = "Token has expired or is invalid"
BAD_NUMBER = "Invalid phone number format (E.164 required)"
INVALID_CHANNEL = ("Invalid channel, supported values are 'sms' or 'whatsapp'. 'whatsapp' is only supported if "
                   "Twilio or Twilio Verify is used as the provider.")


def fresh_number() -> str:
    return next(_pool)


def untested_number() -> str:
    """A number without a test OTP: a real text would have to go out."""
    return f"1666{next(_other):07d}"


def spaced(number: str) -> str:
    """The way people type it: a leading + and spaces, which upstream strips."""
    return f"+{number[0]} {number[1:4]} {number[4:7]} {number[7:]}"


def sha224(text: str) -> str:
    return hashlib.sha224(text.encode()).hexdigest()


def user_row(server, phone: str) -> dict | None:
    found = rows(server, "SELECT * FROM users WHERE phone = $1", phone)
    return found[0] if found else None


def outbox(server, phone: str) -> list[dict]:
    """The texts the dev outbox kept for `phone` (no provider set, server on loopback), newest first."""
    resp = httpx.get(server.url + "/_dev/mail", params={"phone": phone}, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()["messages"]


def outbox_code(server, phone: str) -> str:
    """The code of the newest text to `phone` in the dev outbox."""
    found = outbox(server, phone)
    assert found, f"no text to {phone} in the dev outbox"
    return found[0]["code"]
