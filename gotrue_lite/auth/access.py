"""Whom a verified access token speaks for: its user and session, loaded as upstream's
requireAuthentication does (SESSIONS.md §1.4), without aiohttp."""

from __future__ import annotations

import uuid
from typing import Any

from ..errors import APIError
from ..models import Session, User
from ..store import sessions as session_store
from ..store import users as user_store
from . import Context

NIL_UUID = "00000000-0000-0000-0000-000000000000"


def session_id_of(claims: dict[str, Any]) -> str | None:
    """The token's session, None when it names none (absent, empty or the nil UUID)."""
    value = claims.get("session_id")
    if value is None or value == "" or value == NIL_UUID:
        return None
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise APIError(403, "bad_jwt", "invalid claim: session_id claim must be a UUID") from None


def subject_of(claims: dict[str, Any]) -> tuple[str, str | None, APIError | None]:
    """The token's user id and session id; an unusable session id is reported after the user."""
    sub = claims.get("sub")
    if not sub or not isinstance(sub, str):
        raise APIError(403, "bad_jwt", "invalid claim: missing sub claim")
    try:
        user_id = str(uuid.UUID(sub))
    except ValueError:
        raise APIError(400, "bad_jwt", "invalid claim: sub claim must be a UUID") from None
    try:
        return user_id, session_id_of(claims), None
    except APIError as exc:  # upstream reports a missing user first
        return user_id, None, exc


def _no_user() -> APIError:
    return APIError(403, "user_not_found", "User from sub claim in JWT does not exist")


def _no_session() -> APIError:
    return APIError(403, "session_not_found", "Session from session_id claim in JWT does not exist")


async def load_subject(ctx: Context, user_id: str, session_id: str | None,
                       bad_session_id: APIError | None) -> tuple[User, Session | None]:
    """The user and session subject_of named, each read in one statement, or upstream's 403."""
    if session_id is None:
        user, session = await user_store.get(ctx.db, user_id), None
    else:
        user, session = await user_store.get_with_session(ctx.db, user_id, session_id)
    if user is None:
        raise _no_user()
    if bad_session_id is not None:
        raise bad_session_id
    if session_id is not None and session is None:
        raise _no_session()
    return user, session


def refuse_banned(user: User) -> None:
    if user.is_banned():
        raise APIError(403, "user_banned", "User is banned")


async def admin_of(ctx: Context, claims: dict[str, Any]) -> User | None:
    """The user behind an admin token's session (None for a key that names no session, such as
    service_role); a vanished session or user is upstream's 403."""
    session_id = session_id_of(claims)
    if session_id is None:
        return None
    session = await session_store.get(ctx.db, session_id)
    if session is None:
        raise _no_session()
    admin = await user_store.get(ctx.db, session.user_id)
    if admin is None:
        raise _no_user()
    return admin
