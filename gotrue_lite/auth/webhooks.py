"""Where the Netlify-style webhooks go out in the flows (validate, signup, login) and what their answers change."""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import clock
from ..hooks import webhooks
from ..hooks.webhooks import LOGIN, SIGNUP, VALIDATE, Changes
from ..models import User
from ..store import Executor
from ..store import users as user_store
from . import Context

__all__ = ["LOGIN", "SIGNUP", "VALIDATE", "apply", "notify", "vet_new_user"]

_USER_FIELDS = frozenset(f.name for f in dataclasses.fields(User))


def _user_to_be(values: dict[str, Any]) -> User:
    now = clock.now()
    known = {key: value for key, value in values.items() if key in _USER_FIELDS}
    return User(**{"created_at": now, "updated_at": now, **known})


def configured(ctx: Context) -> bool:
    """Whether any Netlify-style webhook event goes out at all."""
    return bool(ctx.settings.webhook.url and ctx.settings.webhook.events)


async def vet_new_user(ctx: Context, values: dict[str, Any], *events: str) -> dict[str, Any]:
    """Send `events` for a user about to be created; the row's values with the answers applied.

    netlify sends them inside the sign-up's transaction; here they go out before it, so no
    database lock is held while a remote party thinks, and a refusal leaves nothing written.
    """
    for event in events:
        if not webhooks.wanted(ctx.settings, event):
            continue
        changes = await webhooks.trigger(ctx.http, ctx.settings, event, _user_to_be(values).to_json())
        if changes is not None:
            app, user = changes.apply(values.get("raw_app_meta_data") or {}, values.get("raw_user_meta_data") or {})
            values = {**values, "raw_app_meta_data": app, "raw_user_meta_data": user}
    return values


async def notify(ctx: Context, event: str, user: User) -> Changes | None:
    """Send `event` for an existing user (before the flow's transaction); what to apply in it."""
    if not webhooks.wanted(ctx.settings, event):
        return None
    return await webhooks.trigger(ctx.http, ctx.settings, event, user.to_json())


async def apply(tx: Executor, user_id: str, changes: Changes | None) -> None:
    """Save a webhook's answer on the user, inside the flow's transaction."""
    if changes is None:
        return
    user = await user_store.get(tx, user_id)
    if user is None:
        return
    app, meta = changes.apply(user.app_metadata, user.user_metadata)
    await user_store.update_user(tx, user_id, raw_app_meta_data=app, raw_user_meta_data=meta)
