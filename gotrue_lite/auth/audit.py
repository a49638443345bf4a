"""What goes into an audit entry: the actor, the action and its log type, as upstream records them."""

from __future__ import annotations

import logging
from typing import Any

from ..models import User
from ..store import Executor
from ..store import audit as audit_store
from ..store.base import Steps, run
from . import Context

log = logging.getLogger("gotrue_lite.audit")

LOG_TYPES = {
    "login": "account",
    "logout": "account",
    "invite_accepted": "account",
    "user_signedup": "team",
    "user_invited": "team",
    "user_deleted": "team",
    "user_modified": "user",
    "user_recovery_requested": "user",
    "user_reauthenticate_requested": "user",
    "user_confirmation_requested": "user",
    "user_repeated_signup": "user",
    "user_updated_password": "user",
    "token_revoked": "token",
    "token_refreshed": "token",
    "factor_in_progress": "factor",
    "factor_unenrolled": "factor",
    "challenge_created": "factor",
    "verification_attempted": "factor",
    "factor_deleted": "factor",
    "factor_updated": "factor",
    "identity_linked": "user",
    "identity_unlinked": "user",
}


def actor_payload(user: User) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "actor_id": user.id,
        "actor_username": user.phone or user.email or "",
        "actor_via_sso": bool(user.is_sso_user),
    }
    name = user.user_metadata.get("full_name")
    if name:
        payload["actor_name"] = name
    return payload


def recording(ctx: Context, actor: User, action: str, traits: dict[str, Any] | None = None,
              ip_address: str = "", *, then: tuple[str, ...] = ()) -> Steps[None]:
    """One entry for `action`, plus one for each action in `then`, written in one statement."""
    entries = []
    for name in (action, *then):
        payload = {**actor_payload(actor), "action": name, "log_type": LOG_TYPES[name]}
        if traits:
            payload["traits"] = traits
        log.debug("audit %s by %s", name, payload["actor_id"])
        entries.append(payload)
    if not ctx.settings.audit_log_disable_postgres:
        yield from audit_store.record(entries, ip_address)


async def record(ctx: Context, tx: Executor, actor: User, action: str, traits: dict[str, Any] | None = None,
                 ip_address: str = "") -> None:
    await run(tx, recording(ctx, actor, action, traits, ip_address))


NIL_UUID = "00000000-0000-0000-0000-000000000000"


async def record_admin(ctx: Context, tx: Executor, role: str, action: str, traits: dict[str, Any] | None = None,
                       *, actor: User | None = None) -> None:
    """An admin's action: the admin user when the token names one, else the nil actor and the role."""
    if actor is not None:
        await record(ctx, tx, actor, action, traits)
        return
    payload = {"actor_id": NIL_UUID, "actor_username": role, "actor_via_sso": False,
               "action": action, "log_type": LOG_TYPES[action]}
    if traits:
        payload["traits"] = traits
    if not ctx.settings.audit_log_disable_postgres:
        await run(tx, audit_store.record([payload]))
