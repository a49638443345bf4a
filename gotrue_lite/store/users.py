"""SQL for users, their identities and (read with them) their MFA factors."""

from __future__ import annotations

from typing import Any

from .. import clock
from ..models import Factor, Identity, Session, User
from .base import Executor, Statement, Steps, run
from .factors import FACTOR_COLUMNS
from .sessions import SESSION_NAMES
from .sql import NIL_UUID, aliased, insert, update

USER_COLUMNS = (
    "id, aud, role, email, encrypted_password, email_confirmed_at, invited_at, confirmation_token, "
    "confirmation_sent_at, recovery_token, recovery_sent_at, email_change_token_new, email_change, "
    "email_change_sent_at, email_change_token_current, email_change_confirm_status, last_sign_in_at, "
    "raw_app_meta_data, raw_user_meta_data, created_at, updated_at, phone, phone_confirmed_at, "
    "phone_change, phone_change_token, phone_change_sent_at, confirmed_at, banned_until, "
    "reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous"
)
IDENTITY_COLUMNS = "id, provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, email"

# Columns the Go model reads as plain strings: they must hold '' rather than NULL.
_EMPTY_STRING_COLUMNS = (
    "confirmation_token", "recovery_token", "email_change_token_new", "email_change",
    "email_change_token_current", "phone_change", "phone_change_token", "reauthentication_token",
)


_USER_NAMES = USER_COLUMNS.split(", ")
_IDENTITY_NAMES = IDENTITY_COLUMNS.split(", ")

# The user with its identities in one statement (a row per identity), and whether it has MFA
# factors at all: every authenticated request reads this, and factors are rare.
_SELECT_USER = (
    f"SELECT {aliased('u', _USER_NAMES)}, {aliased('i', _IDENTITY_NAMES, 'i_')}, "
    "EXISTS (SELECT 1 FROM mfa_factors f WHERE f.user_id = u.id) AS has_factors{session} "
    "FROM {source} LEFT JOIN identities i ON i.user_id = u.id WHERE {where} ORDER BY i.created_at{lock}"
)
_SESSION_SELECT = ", " + aliased("s", SESSION_NAMES, "s_")


def _user_sql(where: str, *, source: str = "users u", session: bool = False, lock: str = "") -> str:
    return _SELECT_USER.format(
        session=_SESSION_SELECT if session else "",
        source=source,
        where=where,
        # An outer join cannot lock its nullable side: name the row to lock.
        lock=f" FOR UPDATE OF {lock}" if lock else "",
    )


# Built once: the statements every authenticated request runs.
_BY_ID = _user_sql("u.id = $1")
_BY_ID_LOCKED = _user_sql("u.id = $1", lock="u")
_BY_ID_WITH_SESSION = _user_sql("u.id = $1", source="users u LEFT JOIN sessions s ON s.id = $2", session=True)
_LOCK_SESSION = _user_sql("s.id = $1", source="sessions s JOIN users u ON u.id = s.user_id", session=True, lock="s")
_BY_EMAIL = _user_sql("u.email = $1 AND u.aud = $2 AND u.is_sso_user = false")
_BY_PHONE = _user_sql("u.phone = $1 AND u.aud = $2 AND u.is_sso_user = false")
# a pending phone change: several users may name the same number, the oldest wins
_BY_PHONE_CHANGE = _user_sql(
    "u.id = (SELECT id FROM users WHERE phone_change = $1 AND aud = $2 AND is_sso_user = false "
    "ORDER BY created_at, id LIMIT 1)")


def _user_from(rows: list[dict[str, Any]]) -> Steps[User | None]:
    if not rows:
        return None
    first = rows[0]
    identities = tuple(
        Identity.from_row({name: row["i_" + name] for name in _IDENTITY_NAMES}) for row in rows if row["i_id"] is not None
    )
    factors: tuple[Factor, ...] = ()
    if first["has_factors"]:
        found = yield Statement(
            f"SELECT {FACTOR_COLUMNS} FROM mfa_factors WHERE user_id = $1 ORDER BY created_at", (first["id"],)
        )
        factors = tuple(Factor.from_row(f) for f in found)
    return User.from_row({name: first[name] for name in _USER_NAMES}, identities=identities, factors=factors)


async def _user_of(ex: Executor, rows: list[dict[str, Any]]) -> User | None:
    return await run(ex, _user_from(rows))


async def get(ex: Executor, user_id: str, *, lock: bool = False) -> User | None:
    return await _user_of(ex, await ex.fetch_all(_BY_ID_LOCKED if lock else _BY_ID, user_id))


def _session_of(rows: list[dict[str, Any]]) -> Session | None:
    if not rows or rows[0]["s_id"] is None:
        return None
    return Session.from_row({name: rows[0]["s_" + name] for name in SESSION_NAMES})


async def get_with_session(ex: Executor, user_id: str, session_id: str) -> tuple[User | None, Session | None]:
    """The user and, in the same statement, the session a token names (None if it is gone)."""
    rows = await ex.fetch_all(_BY_ID_WITH_SESSION, user_id, session_id)
    return await _user_of(ex, rows), _session_of(rows)


def lock_session(session_id: str) -> Steps[tuple[User | None, Session | None]]:
    """Lock a session row (inside a transaction) and read it with its user in one statement."""
    rows = yield Statement(_LOCK_SESSION, (session_id,))
    return (yield from _user_from(rows)), _session_of(rows)


async def get_bare(ex: Executor, user_id: str) -> User | None:
    """The user row alone, where its identities and factors are not needed."""
    row = await ex.fetch_one(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", user_id)
    return None if row is None else User.from_row(row)


async def find_by_email(ex: Executor, email: str, aud: str) -> User | None:
    # Emails are lower-cased on every write, so equality uses users_email_partial_key.
    return await _user_of(ex, await ex.fetch_all(_BY_EMAIL, email.lower(), aud))


async def find_by_phone(ex: Executor, phone: str, aud: str) -> User | None:
    return await _user_of(ex, await ex.fetch_all(_BY_PHONE, phone, aud))


async def find_by_phone_change(ex: Executor, phone: str, aud: str) -> User | None:
    return await _user_of(ex, await ex.fetch_all(_BY_PHONE_CHANGE, phone, aud))


async def email_taken(ex: Executor, email: str, aud: str, *, except_user: str | None = None) -> bool:
    row = await ex.fetch_one(
        "SELECT id FROM users WHERE email = $1 AND aud = $2 AND is_sso_user = false", email.lower(), aud
    )
    return row is not None and row["id"] != except_user


async def create(ex: Executor, values: dict[str, Any]) -> None:
    now = clock.now()
    row: dict[str, Any] = {
        "instance_id": NIL_UUID,
        "is_super_admin": False,
        "is_sso_user": False,
        "is_anonymous": False,
        "email_change_confirm_status": 0,
        "created_at": now,
        "updated_at": now,
        **{col: "" for col in _EMPTY_STRING_COLUMNS},
        **values,
    }
    # No email / no phone is NULL, so the unique indexes never collide on "none".
    for col in ("email", "phone"):
        if not row.get(col):
            row[col] = None
    await insert(ex, "users", row)


async def update_user(ex: Executor, user_id: str, **values: Any) -> None:
    """Partial update; like upstream, every update rewrites updated_at."""
    values.setdefault("updated_at", clock.now())
    await update(ex, "users", "id", user_id, values)


async def create_identity(ex: Executor, values: dict[str, Any]) -> None:
    now = clock.now()
    await insert(ex, "identities", {"created_at": now, "updated_at": now, "last_sign_in_at": now, **values})


async def update_identity_data(ex: Executor, identity_id: str, data: dict[str, Any]) -> None:
    await update(ex, "identities", "id", identity_id, {"identity_data": data, "updated_at": clock.now()})


async def delete_identity(ex: Executor, identity_id: str) -> None:
    await ex.execute("DELETE FROM identities WHERE id = $1", identity_id)


async def find_identity(ex: Executor, provider_id: str, provider: str) -> Identity | None:
    row = await ex.fetch_one(
        f"SELECT {IDENTITY_COLUMNS} FROM identities WHERE provider_id = $1 AND provider = $2", provider_id, provider)
    return None if row is None else Identity.from_row(row)
