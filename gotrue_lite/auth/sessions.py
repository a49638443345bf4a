"""Sessions: issuing them at sign-in, refresh-token rotation with reuse detection, logout."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import datetime, timedelta
from typing import Any

from .. import clock, crypto, metrics
from ..errors import APIError, validation
from ..models import AMREntry, Session, User
from ..store import Executor
from ..store import sessions as session_store
from ..store import users as user_store
from ..store.base import Steps, run
from . import Client, Context, audit, hook_points

_LEGACY_TOKEN = re.compile(r"^[a-z0-9]{12}$")
MFA_METHODS = {"totp", "mfa/phone", "mfa/webauthn"}


def _below_highest_aal(aal: str | None, user: User) -> bool:
    """Whether a session could still step up: the user has a verified factor, the session is not aal2."""
    return aal != "aal2" and any(f.status == "verified" for f in user.factors)


def _expiry(ctx: Context, user: User, aal: str, now: int, session_created_at: datetime | None) -> int:
    """JWT exp; with GOTRUE_SESSIONS_ALLOW_LOW_AAL a session below the user's highest level
    expires at created_at + that duration at the latest (upstream GenerateAccessToken)."""
    exp = now + ctx.settings.jwt.exp
    allow = ctx.settings.sessions.allow_low_aal
    if allow and session_created_at is not None and _below_highest_aal(aal, user):
        exp = min(exp, clock.unix(session_created_at + allow))
    return exp


def access_claims(ctx: Context, user: User, session_id: str, amr: list[AMREntry],
                  session_created_at: datetime | None = None) -> dict[str, Any]:
    settings = ctx.settings
    now = clock.unix()
    aal = "aal2" if any(e.method in MFA_METHODS for e in amr) else "aal1"
    claims: dict[str, Any] = {}
    if settings.jwt.issuer:
        claims["iss"] = settings.jwt.issuer
    claims.update(
        sub=user.id,
        aud=user.aud or settings.jwt.aud,
        exp=_expiry(ctx, user, aal, now, session_created_at),
        iat=now,
        email=user.email or "",
        phone=user.phone or "",
        app_metadata=user.app_metadata,
        user_metadata=user.user_metadata,
        role=user.role or "",
        aal=aal,
        amr=[e.to_json() for e in amr],
        session_id=session_id,
        is_anonymous=bool(user.is_anonymous),
    )
    return claims


async def token_response(ctx: Context, user: User, session_id: str, amr: list[AMREntry], refresh_token: str,
                         session_created_at: datetime | None = None, *, method: str, client: Client | None,
                         tx: Executor | None = None) -> dict[str, Any]:
    """The token answer; `method` and `client` are what the custom_access_token hook is told,
    `tx` the transaction a PostgreSQL function hook runs in."""
    claims = access_claims(ctx, user, session_id, amr, session_created_at)
    signed = claims
    if hook_points.enabled(ctx, "custom_access_token"):
        signed = await hook_points.custom_access_token(ctx, tx, user, claims, method, client)
    # expires_in / expires_at are the server's own, whatever exp the hook put in the token (upstream).
    return {
        "access_token": ctx.keys.sign(signed),
        "token_type": "bearer",
        "expires_in": claims["exp"] - claims["iat"],
        "expires_at": claims["exp"],
        "refresh_token": refresh_token,
        "user": user.to_json(),
    }


async def issue(ctx: Context, tx: Executor, user: User, method: str, client: Client) -> dict[str, Any]:
    """A new session for `user` inside the caller's transaction; returns the token response."""
    session = await session_store.create(tx, user.id, user_agent=client.user_agent, ip=client.ip)
    token = crypto.new_refresh_token()
    await run(tx, session_store.add_refresh_token(token, user.id, session.id, None))
    # A new session has this one method only.
    amr = [await session_store.record_method(tx, session.id, method)]
    await user_store.update_user(tx, user.id, last_sign_in_at=clock.now())
    fresh = await user_store.get(tx, user.id)
    metrics.count("signins", method=method)
    return await token_response(ctx, fresh, session.id, amr, token, session.created_at, method=method,
                                client=client, tx=tx)


def _last_refreshed(session: Session, token_updated_at: datetime | None) -> datetime:
    """When the session was last refreshed; a session never refreshed counts from its presented
    token's last change, if later than its creation (upstream Session.LastRefreshedAt)."""
    if session.refreshed_at is not None:
        return session.refreshed_at
    if token_updated_at is not None and token_updated_at > session.created_at:
        return token_updated_at
    return session.created_at


def _expiry_reason(ctx: Context, session: Session, token_updated_at: datetime | None) -> str | None:
    """Why a session may no longer be refreshed (SESSIONS.md §2.7), or None."""
    now = clock.now()
    limits = ctx.settings.sessions
    if session.not_after is not None and now > session.not_after:
        return ""
    if limits.timebox is not None and now > session.created_at + limits.timebox:
        return ""
    if limits.inactivity_timeout is not None:
        if now > _last_refreshed(session, token_updated_at) + limits.inactivity_timeout:
            return " (Inactivity)"
    return None


def _tag(session: Session, tags: tuple[str, ...]) -> str:
    """The session's tag for GOTRUE_SESSIONS_TAGS: its own if listed, else the first listed."""
    if not tags:
        return ""
    return session.tag if session.tag in tags else tags[0]


def _superseded(ctx: Context, session: Session, token_updated_at: datetime, sessions: list[Session]) -> bool:
    """GOTRUE_SESSIONS_SINGLE_PER_USER (SESSIONS.md §2.8): another still valid session of the user,
    with the same tag, was refreshed (or created) later than this one."""
    tags = ctx.settings.sessions.tags
    mine, last = _tag(session, tags), _last_refreshed(session, token_updated_at)
    return any(
        other.id != session.id and _expiry_reason(ctx, other, None) is None
        and _tag(other, tags) == mine and _last_refreshed(other, None) > last
        for other in sessions
    )


def _parses_as_signed_token(value: str) -> bool:
    """The newer signed format (version byte, session id, counter, HMAC, checksum): checksum only."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, binascii.Error):
        return False
    if not 38 <= len(raw) <= 46 or raw[0] != 0:
        return False
    return hashlib.sha256(raw[:-4]).digest()[:4] == raw[-4:]


def check_refresh_token_format(value: str) -> str:
    """Upstream's up-front rules: shorter than 12 is invalid, 12 is legacy, longer must be signed."""
    if len(value) < 12 or (len(value) == 12 and not _LEGACY_TOKEN.match(value)) or (
        len(value) > 12 and not _parses_as_signed_token(value)
    ):
        raise validation("Refresh token is not valid")
    return value


def _token_not_found() -> APIError:
    return APIError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")


def _no_session() -> APIError:
    return APIError(400, "session_not_found", "Invalid Refresh Token: No Valid Session Found")


async def refresh(ctx: Context, presented: str, client: Client) -> dict[str, Any]:
    """grant_type=refresh_token with upstream's legacy-token algorithm (SESSIONS.md §2.3)."""
    presented = check_refresh_token_format(presented)
    db = ctx.db

    # Phase A: one plain read, so hopeless requests never take the write lock.
    token, session, owner, amr = await session_store.find_refresh_token_with_session(db, presented)
    if token is None:
        raise _token_not_found()
    if session is None:
        # No session (a token from before sessions, or one just deleted): upstream checks the
        # user first.
        owner = await user_store.get_bare(db, token.user_id)
    if owner is None:
        raise _token_not_found()
    if owner.is_banned():
        raise APIError(400, "user_banned", "Invalid Refresh Token: User Banned")
    if token.session_id is None:
        await session_store.delete_refresh_token(db, token.id)
        raise _no_session()
    if session is None:
        raise _no_session()
    reason = _expiry_reason(ctx, session, token.updated_at)
    if reason is not None:
        raise APIError(400, "session_expired", f"Invalid Refresh Token: Session Expired{reason}")
    # amr, read with the token: methods are added only when a session is created (or stepped
    # up), so there is no need to read them under the lock.
    try:
        if hook_points.enabled(ctx, "custom_access_token"):
            # The hook runs inside the rotation's transaction, as upstream: a failing hook
            # leaves the presented token unspent.
            async with db.transaction() as tx:
                user, session, issued = await run(tx, _rotate(ctx, presented, session, client))
                response = await token_response(ctx, user, session.id, amr, issued, session.created_at,
                                                method="token_refresh", client=client, tx=tx)
        else:
            user, session, issued = await db.run_transaction(_rotate(ctx, presented, session, client))
            response = await token_response(ctx, user, session.id, amr, issued, session.created_at,
                                            method="token_refresh", client=client)
    except APIError as exc:
        if exc.error_code == "refresh_token_already_used":
            metrics.count("refresh_token_reuses")
        raise
    metrics.count("refreshes")
    return response


def _rotate(ctx: Context, presented: str, seen: Session, client: Client) -> Steps[tuple[User, Session, str]]:
    """Phase B: decide on locked rows. Every refresh of a session locks the session row first,
    so racing refreshes of one token queue up and the later ones see the first one's child."""
    single = ctx.settings.sessions.single_per_user
    # The user row before the session row, the order every other writer of a user's rows keeps.
    sessions = (yield from session_store.lock_user_sessions(seen.user_id)) if single else []
    user, session = yield from user_store.lock_session(seen.id)
    if session is None:
        raise _no_session()
    allow_low_aal = ctx.settings.sessions.allow_low_aal
    if allow_low_aal and user is not None and _below_highest_aal(session.aal, user) \
            and clock.now() > session.created_at + allow_low_aal:
        # Read here, where the user comes with its factors (upstream Session.CheckValidity).
        raise APIError(400, "session_expired",
                       "Invalid Refresh Token: Session Expired (Low AAL: User Needs MFA Verification)")
    # Read after the lock: a racing rotation may have revoked it meanwhile.
    token = yield from session_store.find_refresh_token(presented)
    if token is None or user is None:
        raise _token_not_found()
    if single and _superseded(ctx, session, token.updated_at, sessions):
        raise APIError(400, "session_expired", "Invalid Refresh Token: Session Expired (Revoked by Newer Login)")
    issued: str | None = None
    if token.revoked:
        active = yield from session_store.active_refresh_token(session.id)
        if active is not None and active.parent == token.token:
            # The client lost the answer to its last refresh: hand back the same child.
            issued = active.token
        elif clock.now() > token.updated_at + timedelta(seconds=ctx.settings.security.refresh_token_reuse_interval):
            rotation = ctx.settings.security.refresh_token_rotation_enabled
            if rotation:
                yield from session_store.revoke_session_tokens(session.id)
            raise APIError(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used",
                           commit=rotation)
    yield from audit.recording(ctx, user, "token_refreshed", then=() if issued else ("token_revoked",))
    if issued is None:
        yield from session_store.revoke_refresh_token(token.id)
        issued = crypto.new_refresh_token()
        yield from session_store.add_refresh_token(issued, user.id, session.id, token.token)
    yield from session_store.touch(session.id, user_agent=client.user_agent, ip=client.ip)
    return user, session, issued


LOGOUT_SCOPES = ("global", "local", "others")


async def logout(ctx: Context, user: User, session_id: str | None, scope: str) -> None:
    if scope not in LOGOUT_SCOPES:
        raise validation(f'Unsupported logout scope "{scope}"')
    async with ctx.db.transaction() as tx:
        if session_id is None or scope == "global":
            await session_store.delete_for_user(tx, user.id)
        elif scope == "local":
            await session_store.delete(tx, session_id)
        else:
            await session_store.delete_for_user(tx, user.id, keep=session_id)
        await audit.record(ctx, tx, user, "logout")
