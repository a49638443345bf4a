"""Which account an external identity signs in to: upstream's account-linking decision and its effects.

One function serves every external sign-in (the OAuth callback, the id_token grant):

    async def sign_in_with_identity(
        ctx: Context, client: Client, provider: str, data: UserData, *,
        email_optional: bool = False,        # the provider's EMAIL_OPTIONAL (custom: its flag)
        require_email: bool = True,          # False for the id_token grant (no "no email" 500)
        link_to_user: str | None = None,     # manual linking: the target user's id (§5.2)
        invite_token: str = "",              # the flow's invite_token (§2.7)
        then: Callable[[Executor, User], Awaitable[T]] | None = None,
    ) -> SignIn[T]                           # .user (as stored after the decision), .decision, .result

`data` is what the provider said (providers.UserData: emails + claims); `provider` the identity's
provider type as stored (`keycloak`, `custom:acme`, an issuer URL…). Everything happens in ONE
transaction: the decision (link target → invite → automatic, EXTERNAL.md §2.4), the identity and
user writes, the audit entries, a confirmation mail, and finally `then(tx, user)` — the caller's
own step (issue a session; park a PKCE code in the flow_state row), whose value is `.result`.
Errors are APIErrors as upstream answers them; nothing is written, except where upstream commits
before failing (provider_email_needs_verification, email_not_confirmed: user, identity and mail
are kept, `then` is not run, and the error is raised after the commit).

Sources: upstream internal/api/external.go (internalExternalProviderCallback,
createAccountFromExternalIdentity, processInvite), identity.go (linkIdentityToUser),
models/linking.go (DetermineAccountLinking), models/user.go (IsDuplicatedEmail,
RemoveUnconfirmedIdentities, Confirm, UpdateUserEmailFromIdentities, UpdateAppMetaDataProviders).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Generic, TypeVar

from .. import clock
from ..errors import APIError, validation
from ..models import Identity, User
from ..providers import Email, UserData
from ..store import Executor, UniqueViolation
from ..store import linking as link_store
from ..store import one_time_tokens as ott_store
from ..store import users as user_store
from . import Client, Context, audit, emails, hook_points, webhooks
from .signup import insert_user, planned_user

T = TypeVar("T")

DUPLICATE_EMAIL = "A user with this email address has already been registered"

# What the decision was, as upstream's AccountLinkingDecision (plus the two other paths).
CREATED, LINKED, EXISTING, INVITED, LINKED_MANUALLY = "created", "linked", "existing", "invited", "linked_manually"


@dataclass(frozen=True)
class SignIn(Generic[T]):
    user: User
    decision: str
    result: T | None = None


def internal(message: str) -> APIError:
    """upstream's NewInternalServerError."""
    return APIError(500, "unexpected_failure", message)


def linking_domain(provider: str, domains: dict[str, str] | None = None) -> str:
    """GetAccountLinkingDomain: an SSO provider is its own domain; mapped providers share theirs."""
    if provider.startswith("sso:"):
        return provider
    if domains and provider in domains:
        return domains[provider]
    return "default"


def _linking_domains(ctx: Context) -> dict[str, str]:
    """GOTRUE_EXPERIMENTAL_PROVIDER_LINKING_DOMAINS, with the deprecated
    _PROVIDERS_WITH_OWN_LINKING_DOMAIN backfilled as provider=provider (explicit entries win)."""
    external = ctx.settings.external
    return {**{p: p for p in external.providers_with_own_linking_domain}, **external.provider_linking_domains}


def claims_with_email(data: UserData) -> dict[str, Any]:
    """The claims map with `email` / `email_verified` from the first primary email, else the
    last one (internalExternalProviderCallback); the email lower-cased as stored."""
    claims = dict(data.claims)
    claims["email_verified"] = False
    for email in data.emails:
        claims["email"] = email.email
        claims["email_verified"] = email.verified
        if email.primary:
            break
    claims.setdefault("phone_verified", False)
    if isinstance(claims.get("email"), str):
        claims["email"] = claims["email"].lower()
        if not claims["email"]:
            del claims["email"]
    return claims


def _merged(current: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """UpdateUserMetaData / UpdateAppMetaData: set each key, a null value deletes it."""
    out = dict(current)
    for key, value in updates.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def providers_of(user: User) -> list[str]:
    """FindProvidersByUser: distinct identity providers by identity creation time."""
    seen: list[str] = []
    for identity in sorted(user.identities, key=lambda i: (i.created_at or clock.now(), i.id)):
        if identity.provider not in seen:
            seen.append(identity.provider)
    return seen


async def refresh_providers(tx: Executor, user_id: str) -> User:
    """UpdateAppMetaDataProviders: `providers` recomputed and `provider` = the first of them."""
    user = await user_store.get(tx, user_id)
    providers = providers_of(user)
    updates: dict[str, Any] = {"providers": providers}
    if providers:
        updates["provider"] = providers[0]
    await user_store.update_user(tx, user_id, raw_app_meta_data=_merged(user.app_metadata, updates))
    return await user_store.get(tx, user_id)


async def _merge_user_metadata(tx: Executor, user: User, updates: dict[str, Any]) -> None:
    await user_store.update_user(tx, user.id, raw_user_meta_data=_merged(user.user_metadata, updates))


async def confirm(tx: Executor, user_id: str) -> User:
    """models.User.Confirm: email confirmed now, confirmation token and one-time tokens gone."""
    user = await user_store.get(tx, user_id)
    await user_store.update_user(tx, user_id, confirmation_token="", email_confirmed_at=clock.now(),
                                 raw_user_meta_data=_merged(user.user_metadata, {"email_verified": True}))
    await ott_store.delete_for_user(tx, user_id)
    return await user_store.get(tx, user_id)


async def _new_identity(tx: Executor, user_id: str, provider: str, claims: dict[str, Any]) -> Identity:
    """models.NewIdentity + create: the subject is `sub`; none is upstream's 500."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise internal("error missing provider id")
    identity_id = str(uuid.uuid4())
    await user_store.create_identity(tx, {"id": identity_id, "provider_id": sub, "user_id": user_id,
                                          "identity_data": claims, "provider": provider})
    user = await user_store.get(tx, user_id)
    return next(i for i in user.identities if i.id == identity_id)


async def _remove_unconfirmed_identities(tx: Executor, user_id: str, identity: Identity) -> User:
    """The pre-account-takeover guard: an unconfirmed user keeps only the identity signing in now,
    loses the password (unless it is the email/phone identity) and takes its metadata."""
    updates: dict[str, Any] = {"raw_user_meta_data": dict(identity.identity_data)}
    if identity.provider not in ("email", "phone"):
        updates["encrypted_password"] = ""
    await user_store.update_user(tx, user_id, **updates)
    await link_store.delete_other_identities(tx, user_id, identity.id)
    return await refresh_providers(tx, user_id)


async def _duplicated_email(ctx: Context, tx: Executor, email: str, aud: str) -> bool:
    """IsDuplicatedEmail: a default-domain identity of a user in `aud` holds it, or a user row does."""
    if not email:
        return False
    domains = _linking_domains(ctx)
    for row in await link_store.identity_owners_with_email(tx, email):
        if linking_domain(row["provider"], domains) == "default" and row["aud"] == aud:
            return True
    return await link_store.email_owner(tx, email, aud) is not None


async def _send_confirmation(ctx: Context, tx: Executor, user: User) -> None:
    """sendConfirmation with the implicit flow: the usual sign-up mail to the user's email."""
    await emails.send(ctx, tx, user, emails.CONFIRMATION, to=user.email or "", redirect_to=ctx.settings.site_url)


# --- the automatic decision ------------------------------------------------------------------


def _new_user(ctx: Context, client: Client, provider: str, candidate: Email, claims: dict[str, Any],
              domain: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()), "aud": client.aud, "role": ctx.settings.jwt.default_group_name,
        "email": candidate.email, "phone": "", "encrypted_password": "",
        "raw_app_meta_data": {"provider": provider, "providers": [provider]},
        "raw_user_meta_data": dict(claims), "is_sso_user": domain != "default",
    }


async def _before_signing_in(ctx: Context, client: Client, provider: str, data: UserData,
                             claims: dict[str, Any]) -> tuple[dict[str, Any] | None, Any]:
    """What is asked of the outside before the sign-in's transaction: upstream's
    triggerBeforeUserCreatedExternal (the account decision made once beforehand, in a
    transaction of its own; only a sign-in that creates a user asks before_user_created, with
    the user as it would be saved) and netlify's webhooks for external sign-ins (validate, then
    signup when the new account is confirmed at once; login for a confirmed account). Returns
    the new user's row as the hook and webhooks left it, and the webhook's changes for an
    existing user. A refusal raises here, so nothing is written."""
    settings = ctx.settings
    hooked = hook_points.enabled(ctx, "before_user_created")
    if not hooked and not webhooks.configured(ctx):
        return None, None
    async with ctx.db.transaction() as tx:
        decision, target_id, candidate, domain, _ = await _decide(ctx, client, tx, provider, data, claims)
        target = await user_store.get(tx, target_id) if target_id else None
    confirmed_now = candidate.verified or settings.mailer.autoconfirm
    if decision != CREATED:
        if target is None:
            return None, None
        event = webhooks.LOGIN if target.email_confirmed_at else webhooks.SIGNUP if confirmed_now else None
        return None, (await webhooks.notify(ctx, event, target) if event else None)
    if settings.disable_signup:
        raise APIError(422, "signup_disabled", "Signups not allowed for this instance")
    values = _new_user(ctx, client, provider, candidate, claims, domain)
    if hooked:
        await hook_points.before_user_created(ctx, client, planned_user({**values, "is_anonymous": False}))
    events = (webhooks.VALIDATE, webhooks.SIGNUP) if confirmed_now else (webhooks.VALIDATE,)
    return await webhooks.vet_new_user(ctx, values, *events), None


async def _decide(ctx: Context, client: Client, tx: Executor, provider: str, data: UserData,
                  claims: dict[str, Any]) -> tuple[str, str | None, Email, str, Identity | None]:
    """upstream DetermineAccountLinking: (decision, target user id, candidate email, linking
    domain, the identity that exists already)."""
    autoconfirm = ctx.settings.mailer.autoconfirm
    verified = [e.email.lower() for e in data.emails if e.verified or autoconfirm]
    candidate = Email("", False, False)
    for email in data.emails:
        if email.primary:
            candidate = Email(email.email.lower(), email.verified, True)
    domains = _linking_domains(ctx)
    domain = linking_domain(provider, domains)
    sub = claims.get("sub") if isinstance(claims.get("sub"), str) else ""

    decision, target_id = CREATED, None
    identity = await link_store.find_identity(tx, sub, provider)
    if identity is not None:
        decision, target_id = EXISTING, identity.user_id
        owner = await user_store.get(tx, identity.user_id)
        candidate = Email(owner.email or "", candidate.verified, candidate.primary)
    elif not verified:
        if await _duplicated_email(ctx, tx, candidate.email, client.aud):
            candidate = Email("", candidate.verified, candidate.primary)  # the taken email is not given away
    else:
        similar = [row for row in await link_store.identities_with_emails(tx, verified)
                   if linking_domain(row["provider"], domains) == domain]
        users = await link_store.users_with_emails(tx, verified) if domain == "default" else []
        if not similar:
            if len(users) == 1:
                decision, target_id = LINKED, users[0]
            elif len(users) > 1:
                raise internal(f"Multiple accounts with the same email address in the same linking domain detected: {domain}")
        elif len({row["user_id"] for row in similar}) > 1:
            raise internal(f"Multiple accounts with the same email address in the same linking domain detected: {domain}")
        else:
            decision, target_id = LINKED, similar[0]["user_id"]
    return decision, target_id, candidate, domain, identity


async def _automatic(ctx: Context, client: Client, tx: Executor, provider: str, data: UserData,
                     claims: dict[str, Any], email_optional: bool, planned: dict[str, Any] | None = None,
                     changes: Any = None) -> tuple[User, str, APIError | None]:
    """The automatic decision and its effects; `planned`: the new user's row as the hooks left
    it (used when the decision is still to create), `changes`: a webhook's answer to save."""
    settings = ctx.settings
    autoconfirm = settings.mailer.autoconfirm
    decision, target_id, candidate, domain, identity = await _decide(ctx, client, tx, provider, data, claims)
    if decision == LINKED:
        user = await user_store.get(tx, target_id)
        identity = await _new_identity(tx, user.id, provider, claims)
        await _merge_user_metadata(tx, user, claims)
        user = await refresh_providers(tx, user.id)
        await audit.record(ctx, tx, user, "identity_linked", {
            "identity_id": identity.id, "provider": identity.provider, "provider_id": identity.provider_id,
        }, client.ip or "")
    elif decision == CREATED:
        if settings.disable_signup:
            raise APIError(422, "signup_disabled", "Signups not allowed for this instance")
        values = planned or _new_user(ctx, client, provider, candidate, claims, domain)
        user_id = values["id"]
        try:
            await insert_user(tx, values)
        except UniqueViolation:  # a concurrent sign-up took the email between the check and now
            raise APIError(422, "email_exists", DUPLICATE_EMAIL) from None
        identity = await _new_identity(tx, user_id, provider, claims)
        user = await user_store.get(tx, user_id)
    else:  # EXISTING
        await link_store.sign_in_identity(tx, identity.id, claims)
        user = await user_store.get(tx, identity.user_id)
        await _merge_user_metadata(tx, user, claims)
        user = await refresh_providers(tx, user.id)
        identity = next(i for i in user.identities if i.id == identity.id)

    if user.is_banned():
        raise APIError(403, "user_banned", "User is banned")

    deferred: APIError | None = None
    has_emails = provider != "web3" and not (email_optional and not candidate.email)
    if has_emails and user.email_confirmed_at is None:
        user = await _remove_unconfirmed_identities(tx, user.id, identity)
        if candidate.verified or autoconfirm:
            await audit.record(ctx, tx, user, "user_signedup", {"provider": provider})
            user = await confirm(tx, user.id)
        else:
            sent = False
            if candidate.email:
                await _send_confirmation(ctx, tx, user)
                sent = True
            if not settings.mailer.allow_unverified_email_sign_ins:
                tail = (f"A confirmation email has been sent to your {provider} email" if sent
                        else f"Verify the email with {provider} in order to sign in")
                deferred = APIError(422, "provider_email_needs_verification", f"Unverified email with {provider}. {tail}")
    else:
        await audit.record(ctx, tx, user, "login", {"provider": provider})
    if changes is not None and decision != CREATED:
        await webhooks.apply(tx, user.id, changes)
    return await user_store.get(tx, user.id), decision, deferred


# --- invites and manual linking ----------------------------------------------------------------


async def _accept_invite(ctx: Context, client: Client, tx: Executor, provider: str, data: UserData,
                         claims: dict[str, Any], invite_token: str) -> User:
    user_id = await link_store.user_id_by_confirmation_token(tx, invite_token)
    if user_id is None:
        raise APIError(404, "invite_not_found", "Invite not found")
    user = await user_store.get(tx, user_id)
    # the stored email against the provider's, exactly (upstream compares the raw strings)
    if not any((user.email or "") == e.email for e in data.emails):
        raise validation("Invited email does not match emails from external provider")
    identity = await _new_identity(tx, user.id, provider, claims)
    await user_store.update_user(tx, user.id, raw_app_meta_data=_merged(user.app_metadata, {"provider": provider}))
    user = await refresh_providers(tx, user.id)
    await _merge_user_metadata(tx, user, claims)
    user = await user_store.get(tx, user.id)
    await audit.record(ctx, tx, user, "invite_accepted", {"provider": provider})
    await _remove_unconfirmed_identities(tx, user.id, identity)
    return await confirm(tx, user.id)


async def update_user_email_from_identities(ctx: Context, tx: Executor, user_id: str) -> User:
    """UpdateUserEmailFromIdentities: keep the email if an identity holds it, else promote the best
    identity email no other user of the audience has (verified < unverified < none; then oldest).
    Raises APIError(422, "email_conflict", …) — callers map it — when every candidate is taken."""
    user = await user_store.get(tx, user_id)
    current = (user.email or "").lower()
    if any((i.email or "") == current for i in user.identities):
        return user

    def rank(identity: Identity) -> int:
        if not identity.email:
            return 2
        return 0 if identity.identity_data.get("email_verified") is True else 1

    ordered = sorted(user.identities, key=lambda i: (rank(i), i.created_at or clock.now(), i.id))
    chosen = None
    for identity in ordered:
        owner = await link_store.email_owner(tx, identity.email or "", user.aud or "") if identity.email else None
        if owner is None or owner == user.id:
            chosen = identity
            break
    if chosen is None:
        raise APIError(422, "email_conflict", DUPLICATE_EMAIL)
    await user_store.update_user(
        tx, user.id, email=chosen.email or None,
        confirmation_token="", confirmation_sent_at=None, recovery_token="", recovery_sent_at=None,
        email_change="", email_change_token_current="", email_change_token_new="", email_change_sent_at=None,
        email_change_confirm_status=0, phone_change="", phone_change_token="", phone_change_sent_at=None,
        reauthentication_token="", reauthentication_sent_at=None)
    await ott_store.delete_for_user(tx, user.id)
    if not chosen.email or (rank(chosen) == 1 and not ctx.settings.mailer.autoconfirm):
        fresh = await user_store.get(tx, user.id)
        await user_store.update_user(tx, user.id, email_confirmed_at=None,
                                     raw_user_meta_data=_merged(fresh.user_metadata, {"email_verified": False}))
    return await user_store.get(tx, user.id)


async def _link_to_user(ctx: Context, client: Client, tx: Executor, provider: str, claims: dict[str, Any],
                        target_id: str) -> tuple[User, APIError | None]:
    sub = claims.get("sub") if isinstance(claims.get("sub"), str) else ""
    existing = await link_store.find_identity(tx, sub, provider)
    if existing is not None:
        message = "Identity is already linked" if existing.user_id == target_id else "Identity is already linked to another user"
        raise APIError(422, "identity_already_exists", message)
    target = await user_store.get(tx, target_id)
    if target is None:
        raise APIError(422, "user_not_found", "Linking target user not found")
    identity = await _new_identity(tx, target.id, provider, claims)
    await audit.record(ctx, tx, target, "identity_linked", {
        "identity_id": identity.id, "provider": identity.provider, "provider_id": identity.provider_id,
    }, client.ip or "")
    deferred = None
    if not target.email:
        try:
            target = await update_user_email_from_identities(ctx, tx, target.id)
        except UniqueViolation:
            raise APIError(400, "email_exists", DUPLICATE_EMAIL) from None
        except APIError as exc:
            if exc.error_code != "email_conflict":
                raise
            raise APIError(400, "email_exists", DUPLICATE_EMAIL) from None
        if claims.get("email_verified") is not True:
            await _send_confirmation(ctx, tx, target)
            deferred = APIError(422, "email_not_confirmed",
                                f"Unverified email with {provider}. A confirmation email has been sent to your {provider} email")
        else:
            target = await confirm(tx, target.id)
            if target.is_anonymous:
                await user_store.update_user(tx, target.id, is_anonymous=False)
    if deferred is None:
        target = await refresh_providers(tx, target.id)
    else:
        await refresh_providers(tx, target.id)
    return await user_store.get(tx, target.id), deferred


# --- the one entry point ------------------------------------------------------------------------


async def sign_in_with_identity(ctx: Context, client: Client, provider: str, data: UserData, *,
                                email_optional: bool = False, require_email: bool = True,
                                link_to_user: str | None = None, invite_token: str = "",
                                then: Callable[[Executor, User], Awaitable[T]] | None = None) -> SignIn[T]:
    """The account an external identity signs in to, decided and written in one transaction
    (see the module docstring)."""
    if require_email and not data.emails and not email_optional:
        raise internal("Error getting user email from external provider")
    claims = claims_with_email(data)
    deferred: APIError | None = None
    result = None
    planned = changes = None
    if not link_to_user and not invite_token:
        planned, changes = await _before_signing_in(ctx, client, provider, data, claims)
    async with ctx.db.transaction() as tx:
        if link_to_user:
            user, deferred = await _link_to_user(ctx, client, tx, provider, claims, link_to_user)
            decision = LINKED_MANUALLY
        elif invite_token:
            user, decision = await _accept_invite(ctx, client, tx, provider, data, claims, invite_token), INVITED
        else:
            user, decision, deferred = await _automatic(ctx, client, tx, provider, data, claims, email_optional,
                                                        planned, changes)
        if deferred is None and then is not None:
            result = await then(tx, user)
    if decision == CREATED:
        await hook_points.after_user_created(ctx, client, user)  # upstream: once the user is committed
    if deferred is not None:
        raise deferred  # upstream's NewCommitWithError: what was written above stays
    return SignIn(user, decision, result)
