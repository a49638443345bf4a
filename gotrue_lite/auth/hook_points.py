"""Where the rules call the auth hooks, what they send (upstream's v0hooks payloads) and what the answers mean."""

from __future__ import annotations

from typing import Any

from ..errors import APIError
from ..hooks import answers, metadata
from ..models import User
from ..store import Executor
from ..store import sessions as session_store
from . import Client, Context

DEFAULT_MFA_REJECTION = "Further MFA verification attempts will be rejected."
DEFAULT_PASSWORD_REJECTION = "Further password verification attempts will be rejected."
REJECT = "reject"


def enabled(ctx: Context, name: str) -> bool:
    return ctx.hooks is not None and ctx.hooks.enabled(name)


async def custom_access_token(ctx: Context, tx: Executor | None, user: User, claims: dict[str, Any],
                              method: str, client: Client | None) -> dict[str, Any]:
    """The claims to sign: the hook's, once they pass upstream's minimum schema."""
    payload = {
        "metadata": metadata("custom_access_token", client.ip if client else None),
        "user_id": user.id,
        "claims": claims,
        "authentication_method": method,
    }
    answer = await ctx.hooks.call("custom_access_token", payload, tx)
    return answers.access_token_claims(answer)


async def password_attempt(ctx: Context, client: Client, user: User, valid: bool) -> None:
    """password_verification_attempt: a `reject` decision refuses the sign-in with the hook's
    message, and with should_logout_user ends every session of the user first."""
    payload = {"metadata": metadata("password_verification_attempt", client.ip), "user_id": user.id,
               "valid": valid}
    answer = answers.parse(await ctx.hooks.call("password_verification_attempt", payload),
                           {"decision": str, "message": str, "should_logout_user": bool})
    if answer.get("decision") != REJECT:
        return
    if answer.get("should_logout_user"):
        async with ctx.db.transaction() as tx:
            await session_store.delete_for_user(tx, user.id)
    raise APIError(400, "invalid_credentials", answer.get("message") or DEFAULT_PASSWORD_REJECTION)


async def mfa_attempt(ctx: Context, client: Client, user: User, factor_id: str, factor_type: str,
                      valid: bool) -> None:
    """mfa_verification_attempt: a `reject` decision ends every session of the user and refuses
    the verification (403 mfa_verification_rejected)."""
    payload = {"metadata": metadata("mfa_verification_attempt", client.ip), "user_id": user.id,
               "factor_id": factor_id, "factor_type": factor_type, "valid": valid}
    answer = answers.parse(await ctx.hooks.call("mfa_verification_attempt", payload),
                           {"decision": str, "message": str})
    if answer.get("decision") == REJECT:
        async with ctx.db.transaction() as tx:
            await session_store.delete_for_user(tx, user.id)
        raise APIError(403, "mfa_verification_rejected", answer.get("message") or DEFAULT_MFA_REJECTION)


async def before_user_created(ctx: Context, client: Client, user: User) -> None:
    """Called before the user's transaction, with the user as it will be saved: an error object
    refuses the sign-up and nothing is written."""
    if not enabled(ctx, "before_user_created"):
        return
    payload = {"metadata": metadata("before_user_created", client.ip), "user": user.to_json()}
    answers.parse(await ctx.hooks.call("before_user_created", payload), {})


async def after_user_created(ctx: Context, client: Client, user: User) -> None:
    """Called once the new user is committed; its failure is the client's error, the user stays."""
    if not enabled(ctx, "after_user_created"):
        return
    payload = {"metadata": metadata("after_user_created", client.ip), "user": user.to_json()}
    answers.parse(await ctx.hooks.call("after_user_created", payload), {})


def email_data(*, token: str = "", token_hash: str = "", redirect_to: str = "", action: str, site_url: str,
               token_new: str = "", token_hash_new: str = "", **notification: str) -> dict[str, Any]:
    """upstream mailer.EmailData, every field present."""
    data = {
        "token": token, "token_hash": token_hash, "redirect_to": redirect_to, "email_action_type": action,
        "site_url": site_url, "token_new": token_new, "token_hash_new": token_hash_new,
        "old_email": "", "old_phone": "", "provider": "", "factor_type": "",
    }
    data.update(notification)
    return data


async def send_email(ctx: Context, tx: Executor | None, client: Client | None, user: User,
                     data: dict[str, Any]) -> None:
    """send_email replaces the mailer: the hook gets the OTP and the token hash and delivers them."""
    payload = {"metadata": metadata("send_email", client.ip if client else None), "user": user.to_json(),
               "email_data": data}
    answers.parse(await ctx.hooks.call("send_email", payload, tx), {})


async def send_sms(ctx: Context, tx: Executor | None, client: Client | None, user: User | None,
                   phone: str, otp: str, sms_type: str) -> None:
    """send_sms replaces the SMS vendor: the hook gets the code and the number."""
    sms = {k: v for k, v in (("otp", otp), ("sms_type", sms_type), ("phone", phone)) if v}
    payload: dict[str, Any] = {"metadata": metadata("send_sms", client.ip if client else None)}
    if user is not None:
        payload["user"] = user.to_json()
    payload["sms"] = sms
    answers.parse(await ctx.hooks.call("send_sms", payload, tx), {})
