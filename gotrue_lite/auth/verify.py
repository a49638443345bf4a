"""Verifying email links and OTP codes (/verify), and the PKCE code exchange that may follow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .. import clock, crypto
from ..errors import APIError, validation
from ..models import User
from ..store import Executor
from ..store import flow_state as flow_store
from ..store import one_time_tokens as ott_store
from ..store import users as user_store
from . import Client, Context, audit, fields, sessions, webhooks
from .external_accounts import refresh_providers
from .signup import confirm_email, ensure_identity

# verification type → the token columns it may consume
TOKEN_COLUMNS = {
    "signup": ("confirmation_token",),
    "invite": ("confirmation_token",),
    "recovery": ("recovery_token",),
    "magiclink": ("recovery_token",),
    "email": ("confirmation_token", "recovery_token"),
    "email_change": ("email_change_token_new", "email_change_token_current"),
}
SENT_AT = {
    "confirmation_token": "confirmation_sent_at",
    "recovery_token": "recovery_sent_at",
    "email_change_token_new": "email_change_sent_at",
    "email_change_token_current": "email_change_sent_at",
}
# verification type → flow_state.authentication_method of a PKCE flow
FLOW_METHOD = {"signup": "email/signup", "magiclink": "magiclink", "recovery": "recovery", "email_change": "email_change",
               "invite": "invite"}
SECURE_CHANGE_PENDING = "Confirmation link accepted. Please proceed to confirm link sent to the other email"


def _link_invalid() -> APIError:
    return APIError(403, "otp_expired", "Email link is invalid or has expired")


def _otp_invalid() -> APIError:
    return APIError(403, "otp_expired", "Token has expired or is invalid")


@dataclass(frozen=True)
class Match:
    user: User
    column: str  # the users column whose token matched
    stored: str  # the stored value (pkce_-prefixed for PKCE flows)

    @property
    def resolved_type(self) -> str:
        return {"confirmation_token": "signup", "recovery_token": "magiclink"}.get(self.column, "email_change")


async def _find(ctx: Context, ex: Executor, vtype: str, hashes: tuple[str, ...], invalid, *,
                address: str | None = None, aud: str | None = None) -> Match:
    rows = await ott_store.find(ex, hashes, TOKEN_COLUMNS[vtype])
    # `email` type: a confirmation token wins over a recovery token, as upstream tries it first.
    rows.sort(key=lambda r: TOKEN_COLUMNS[vtype].index(r["token_type"]))
    for row in rows:
        if address is not None and row["relates_to"] != address:
            continue
        user = await user_store.get(ex, row["user_id"])
        if user is None or (aud is not None and user.aud != aud):
            continue
        column = row["token_type"]
        stored = getattr(user, column) or ""
        if not stored or not crypto.equal(stored, row["token_hash"]):
            continue
        sent_at = getattr(user, SENT_AT[column])
        if sent_at is None or clock.now() > sent_at + timedelta(seconds=ctx.settings.mailer.otp_exp):
            raise invalid()
        if user.is_banned():
            raise APIError(403, "user_banned", "User is banned")
        return Match(user, column, stored)
    raise invalid()


async def find_by_hash(ctx: Context, ex: Executor, vtype: str, token_hash: str) -> Match:
    return await _find(ctx, ex, vtype, (token_hash,), _link_invalid)


async def find_by_code(ctx: Context, ex: Executor, vtype: str, email: str, code: str, aud: str) -> Match:
    hashed = crypto.token_hash(email, code)
    return await _find(ctx, ex, vtype, (hashed, f"pkce_{hashed}"), _otp_invalid, address=email, aud=aud)


async def _apply_email_change(ctx: Context, tx: Executor, user: User) -> None:
    new_email = user.email_change or ""
    await user_store.update_user(tx, user.id, email=new_email, email_change="", email_change_token_new="",
                                 email_change_token_current="", email_change_confirm_status=0, is_anonymous=False)
    await ott_store.delete_for_user(tx, user.id)
    moved = await user_store.get(tx, user.id)
    identity = next((i for i in moved.identities if i.provider == "email"), None)
    if identity is None:
        await ensure_identity(tx, moved, "email", {})
        moved = await user_store.get(tx, user.id)
        identity = next(i for i in moved.identities if i.provider == "email")
    await user_store.update_identity_data(tx, identity.id, {**identity.identity_data, "email": new_email,
                                                            "email_verified": True})
    if moved.email_confirmed_at is None:
        # Upstream confirms only a still-unconfirmed account; a confirmed one keeps its time.
        await confirm_email(tx, await user_store.get(tx, user.id))
    await audit.record(ctx, tx, moved, "user_modified")


async def _consume(ctx: Context, tx: Executor, match: Match, vtype: str, password_hash: str | None) -> str | None:
    """Apply what the verified token stands for; returns a message when no session follows."""
    user = match.user
    if vtype == "email":
        vtype = match.resolved_type
    if vtype in ("signup", "invite"):
        updates: dict[str, Any] = {"confirmation_token": ""}
        if password_hash is not None:
            updates["encrypted_password"] = password_hash
        await user_store.update_user(tx, user.id, **updates)
        if user.email_confirmed_at is None:
            await confirm_email(tx, await user_store.get(tx, user.id))
        await audit.record(ctx, tx, user, "user_signedup", {"provider": "email"})
    elif vtype in ("recovery", "magiclink"):
        await user_store.update_user(tx, user.id, recovery_token="")
        if user.email_confirmed_at is None:
            await confirm_email(tx, await user_store.get(tx, user.id))
            await audit.record(ctx, tx, user, "user_signedup", {"provider": "email"})
        else:
            await audit.record(ctx, tx, user, "login", {"provider": "email"})
    elif vtype == "email_change":
        two_links = (ctx.settings.mailer.secure_email_change_enabled and bool(user.email)
                     and bool(user.email_change_token_current) and bool(user.email_change_token_new)
                     and not ctx.settings.mailer.autoconfirm)
        if two_links and user.email_change_confirm_status == 0:
            await user_store.update_user(tx, user.id, **{match.column: ""}, email_change_confirm_status=1)
            await ott_store.delete_for_user(tx, user.id, match.column)
            return SECURE_CHANGE_PENDING
        await _apply_email_change(ctx, tx, user)
    await ott_store.delete_for_user(tx, user.id)
    confirmed = await user_store.get(tx, user.id)
    if confirmed.is_anonymous and confirmed.email_confirmed_at is not None:
        await user_store.update_user(tx, user.id, is_anonymous=False)
    return None


def _signs_up(match: Match, vtype: str) -> bool:
    """Whether consuming the token completes a sign-up (netlify's signup webhook event)."""
    resolved = match.resolved_type if vtype == "email" else vtype
    if resolved in ("signup", "invite"):
        return True
    return resolved in ("recovery", "magiclink") and match.user.email_confirmed_at is None


@dataclass(frozen=True)
class Outcome:
    """What a verification leads to: a session, an auth code (PKCE via GET), or only a message."""

    vtype: str
    session: dict[str, Any] | None = None
    code: str | None = None
    message: str | None = None


async def _invite_password(ctx: Context, match: Match, vtype: str, password: str | None) -> str | None:
    """An invited user without a password gets the one netlify's acceptInvite sends, or a random one."""
    user = match.user
    if vtype not in ("signup", "invite") or user.has_password:
        return None
    if password:
        fields.check_new_password(ctx.settings, password)
    if user.invited_at is None and not password:
        return None
    return await crypto.hash_password(password or crypto.random_password())


async def verify(ctx: Context, client: Client, *, vtype: str, token_hash: str | None = None,
                 email: str | None = None, code: str | None = None, password: str | None = None,
                 issue_code: bool = False) -> Outcome:
    """Check and consume a token; `issue_code` (GET /verify) turns a pkce_ token into an auth code."""
    if vtype not in TOKEN_COLUMNS:
        raise validation("Unsupported verification type")

    async def locate(ex: Executor) -> Match:
        if token_hash is not None:
            return await find_by_hash(ctx, ex, vtype, token_hash)
        return await find_by_code(ctx, ex, vtype, email or "", code or "", client.aud)

    # bcrypt for an accepted invite runs before the write lock is taken.
    first = await locate(ctx.db)
    password_hash = await _invite_password(ctx, first, vtype, password)
    changes = await webhooks.notify(ctx, webhooks.SIGNUP, first.user) if _signs_up(first, vtype) else None
    async with ctx.db.transaction() as tx:
        match = await locate(tx)  # again under the lock: a racing verification may have won
        resolved = match.resolved_type if vtype == "email" else vtype
        if match.user.id == first.user.id:
            await webhooks.apply(tx, match.user.id, changes)
        message = await _consume(ctx, tx, match, vtype, password_hash if match.user.id == first.user.id else None)
        user = await refresh_providers(tx, match.user.id)
        if message is not None:
            return Outcome(resolved, message=message)
        if issue_code and match.stored.startswith("pkce_"):
            flow = await flow_store.latest_for_user(tx, user.id, FLOW_METHOD.get(resolved, resolved))
            if flow is None or not flow["auth_code"]:
                raise APIError(400, "flow_state_not_found", "No associated flow state found.")
            await flow_store.stamp_code_issued(tx, flow["id"])
            return Outcome(resolved, code=flow["auth_code"])
        session = await sessions.issue(ctx, tx, user, "otp", client)
        return Outcome(resolved, session=session)


async def exchange_code(ctx: Context, client: Client, auth_code: str, verifier: str) -> dict[str, Any]:
    """grant_type=pkce: trade the auth code and the code verifier for a session."""
    if not auth_code or not verifier:
        raise validation("invalid request: both auth code and code verifier should be non-empty")
    flow = await flow_store.find_by_code(ctx.db, auth_code)
    if flow is None or not flow["user_id"]:
        raise APIError(404, "flow_state_not_found", "invalid flow state, no valid flow state found")
    # gotrue-lite measures the lifetime from when /verify issued the code (upstream: from the
    # flow's creation for all but magic links), and email flows must have had a code issued.
    anchor = flow["auth_code_issued_at"]
    if anchor is None and flow["authentication_method"] != "oauth":
        raise APIError(404, "flow_state_not_found", "invalid flow state, no valid flow state found")
    if clock.now() > (anchor or flow["created_at"]) + ctx.settings.external.flow_state_expiry_duration:
        raise APIError(422, "flow_state_expired", "invalid flow state, flow state has expired")
    if not crypto.pkce_matches(flow["code_challenge_method"] or "", flow["code_challenge"] or "", verifier):
        raise APIError(400, "bad_code_verifier", "code challenge does not match previously saved code verifier")
    async with ctx.db.transaction() as tx:
        if not await flow_store.take(tx, flow["id"]):
            raise APIError(404, "flow_state_not_found", "invalid flow state, no valid flow state found")
        user = await user_store.get(tx, flow["user_id"])
        if user is None:
            raise APIError(404, "flow_state_not_found", "invalid flow state, no valid flow state found")
        if user.is_banned():
            raise APIError(400, "user_banned", "User is banned")
        await audit.record(ctx, tx, user, "login", {"provider_type": flow["provider_type"]})
        response = await sessions.issue(ctx, tx, user, flow["authentication_method"], client)
    if flow["provider_access_token"]:
        response["provider_token"] = flow["provider_access_token"]
    if flow["provider_refresh_token"]:
        response["provider_refresh_token"] = flow["provider_refresh_token"]
    return response
