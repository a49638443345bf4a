"""Sending the mails of the email flows: cooldown, send budget, token, link, then the mail itself."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from ..errors import APIError
from ..models import User
from ..store import Executor
from . import Context, hook_points, otp

log = logging.getLogger("gotrue_lite.emails")


@dataclass(frozen=True)
class Kind:
    template: str  # mail template / MAILER_SUBJECTS_* name
    column: str  # users column holding the token hash
    verify_type: str  # the link's type=
    failure: str  # upstream's message when sending fails


CONFIRMATION = Kind("confirmation", "confirmation_token", "signup", "Error sending confirmation email")
INVITE = Kind("invite", "confirmation_token", "invite", "Error sending invite email")
RECOVERY = Kind("recovery", "recovery_token", "recovery", "Error sending recovery email")
MAGIC_LINK = Kind("magic_link", "recovery_token", "magiclink", "Error sending magic link email")
EMAIL_CHANGE_NEW = Kind("email_change", "email_change_token_new", "email_change", "Error sending email change email")
EMAIL_CHANGE_CURRENT = Kind("email_change", "email_change_token_current", "email_change",
                            "Error sending email change email")
REAUTHENTICATION = Kind("reauthentication", "reauthentication_token", "", "Error sending reauthentication email")

SENT_AT = otp.SENT_AT


_LABEL = re.compile(r"[+][^@]+@")


def check_authorized(settings, address: str) -> None:
    """GOTRUE_EXTERNAL_EMAIL_AUTHORIZED_ADDRESSES: mail only those (a +label is ignored)."""
    allowed = settings.external.email.authorized_addresses
    if not allowed:
        return
    normalised = _LABEL.sub("@", address).lower()
    if not any(normalised == entry.lower() for entry in allowed):
        raise APIError(400, "email_address_not_authorized",
                       f'Email address "{address}" cannot be used as it is not authorized')


def take_budget(ctx: Context) -> None:
    """The process-wide email budget; autoconfirm switches it off, except that 0 stops all mail."""
    settings = ctx.settings
    budget = ctx.email_budget
    if budget is None:
        return
    if settings.mailer.autoconfirm and settings.rate_limit.email_sent.events != 0:
        return
    if not budget.take():
        raise APIError(429, "over_email_send_rate_limit", "email rate limit exceeded")


# upstream's email_action_type for each kind, as the send_email hook is told it.
ACTIONS = {"confirmation": "signup", "invite": "invite", "recovery": "recovery", "magic_link": "magiclink",
           "email_change": "email_change", "reauthentication": "reauthentication"}


async def send(ctx: Context, tx: Executor, user: User, kind: Kind, *, to: str, redirect_to: str,
               pkce: bool = False, cooldown: bool = True, budget: bool = True, extra: dict[str, Any] | None = None,
               variables: dict[str, Any] | None = None, deliver: bool = True) -> otp.IssuedToken:
    """Issue a token of `kind` for `user`, inside the caller's transaction, and mail it to `to`
    (or hand it to the send_email hook; `deliver=False`: the caller hands it over itself).

    A failed send raises, so the transaction rolls back: no token is left that was never sent.
    """
    settings = ctx.settings
    if cooldown:
        otp.cooldown(getattr(user, SENT_AT[kind.column]), settings.smtp.max_frequency)
    check_authorized(settings, to)
    if budget:
        take_budget(ctx)
    issued = await otp.issue(tx, user.id, kind.column, to, settings.mailer.otp_length, pkce=pkce, extra=extra)
    if hook_points.enabled(ctx, "send_email"):
        if deliver:
            # The hook's own error (an `error` object, a timeout) is the client's answer (upstream).
            await hook_points.send_email(ctx, tx, None, user, hook_points.email_data(
                token=issued.code, token_hash=issued.stored, redirect_to=redirect_to,
                action=ACTIONS[kind.template], site_url=settings.api.external_url))
        return issued
    if ctx.mailer is None:
        return issued
    from ..mail import MailError, action_link

    link = action_link(settings, kind.template, issued.stored, kind.verify_type, redirect_to) if kind.verify_type else ""
    mail_vars = {
        "ConfirmationURL": link,
        "Token": issued.code,
        "TokenHash": issued.stored,
        "SiteURL": settings.site_url,
        "Email": user.email or to,
        "NewEmail": user.email_change or "",
        "RedirectTo": redirect_to,
        "Data": user.user_metadata,
        "SendingTo": to,
        **(variables or {}),
    }
    try:
        await ctx.mailer.send(kind.template, to, mail_vars)
    except MailError as exc:
        log.error("%s to %s: %s", kind.failure, to, exc)
        raise APIError(500, "unexpected_failure", kind.failure) from exc
    return issued
