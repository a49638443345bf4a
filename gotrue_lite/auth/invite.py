"""Invitations (POST /invite): an admin asks a new user to join by email."""

from __future__ import annotations

from typing import Any

from .. import clock
from ..errors import APIError
from ..models import User
from ..store import users as user_store
from . import Client, Context, audit, emails, fields, hook_points, webhooks
from .signup import create_user, new_user_values


async def invite(ctx: Context, client: Client, admin: User | None, *, email: str, data: dict[str, Any],
                 redirect_to: str, admin_role: str = "") -> dict[str, Any]:
    address = fields.email(email)
    user = await user_store.find_by_email(ctx.db, address, client.aud)
    if user is not None and user.email_confirmed_at is not None:
        raise APIError(422, "email_exists", "A user with this email address has already been registered")
    values = None
    if user is None:
        values = await new_user_values(ctx, client, "email", address, password_hash=None, data=data)
    async with ctx.db.transaction() as tx:
        if user is None:
            user = await create_user(ctx, tx, client.aud, "email", address, password_hash=None, data=data,
                                     values=values)
        await audit.record_admin(ctx, tx, admin_role, "user_invited", {"user_id": user.id, "user_email": address},
                                 actor=admin)
        # Invites are not subject to the per-address cooldown, only to the send budget.
        await emails.send(ctx, tx, user, emails.INVITE, to=address, redirect_to=redirect_to, cooldown=False,
                          extra={"invited_at": clock.now()})
        fresh = await user_store.get(tx, user.id)
    # upstream calls it after every invite, of a new user or again of an unconfirmed one.
    await hook_points.after_user_created(ctx, client, fresh)
    return fresh.to_json()
