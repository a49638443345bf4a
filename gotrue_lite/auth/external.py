"""Sign-in with an external OAuth provider: starting the round trip (GET /authorize) and finishing
it at the callback, up to the redirect that hands the app a code or a session.

Sources: upstream internal/api/external.go (GetExternalProviderRedirectURL,
internalExternalProviderCallback, Provider), external_oauth.go (oAuthCallback), identity.go
(LinkIdentity), models/flow_state.go, models/oauth_client_state.go (EXTERNAL.md §1, §2, §5.1).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import uuid
from datetime import timedelta
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl, quote_plus, urlsplit, urlunsplit

import aiohttp

from .. import clock
from ..errors import APIError, validation
from ..models import User
from ..providers import OAuthProvider, ProviderError, UserData, provider_class
from ..store import Executor
from ..store import flow_state as flow_store
from ..store import linking as link_store
from ..store import oauth_client_states as client_state_store
from . import Client, Context, custom_providers, pkce, sessions
from .external_accounts import sign_in_with_identity

log = logging.getLogger("gotrue_lite.external")

# upstream internal/api/provider_constants.go: the built-in names API.Provider knows
OAUTH_PROVIDERS = frozenset((
    "apple azure bitbucket discord facebook figma fly github gitlab google kakao keycloak linkedin "
    "linkedin_oidc notion snapchat spotify slack slack_oidc twitch twitter x vercel_marketplace workos zoom"
).split())
# Parameters the server itself controls: a client cannot override them (nonce is forwarded).
RESERVED_PARAMS = frozenset(("client_id", "client_secret", "redirect_uri", "response_type", "state",
                             "code_challenge", "code_challenge_method", "code_verifier", "nonce"))
CLIENT_STATE_LIFETIME = timedelta(minutes=5)  # models/oauth_client_state.go


class Unsupported(Exception):
    """API.Provider failed; the message is what follows "Unsupported provider: "."""


class OAuthError(Exception):
    """An OAuth-style error without an error_code (the provider's own, or a wrapped failure)."""

    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error = error
        self.description = description


async def resolve(ctx: Context, name: str, scopes: str = "") -> OAuthProvider:
    """API.Provider: the provider `name` (any case) with its settings validated as upstream's
    constructors do. Async because a `custom:` provider is a database row."""
    name = name.lower()
    if name.startswith("custom:"):
        return await _custom(ctx, name, scopes)
    return _builtin(ctx, name, scopes)


async def _custom(ctx: Context, name: str, scopes: str) -> OAuthProvider:
    """upstream external.go loadCustomProvider (its errors follow "Unsupported provider: ")."""
    if not ctx.settings.external.custom_oauth_enabled:
        raise Unsupported("custom OAuth providers are disabled")
    found = await custom_providers.find(ctx, name)
    if found is None:
        raise Unsupported(f"custom provider {name} not found")
    if not found.enabled:
        raise Unsupported(f"custom provider {name} is disabled")
    if found.provider_type == "oauth2" and not (found.authorization_url and found.token_url and found.userinfo_url):
        raise Unsupported(f"OAuth2 provider {name} missing required endpoints")
    if found.provider_type == "oidc" and not found.cached_discovery:
        raise Unsupported(f"OIDC provider {name} has no discovery document")
    provider = custom_providers.build_provider(ctx, found, scopes)
    provider.timeout = aiohttp.ClientTimeout(total=ctx.settings.internal_http_timeout.total_seconds())
    return provider


def _builtin(ctx: Context, name: str, scopes: str) -> OAuthProvider:
    if name not in OAUTH_PROVIDERS:
        raise Unsupported(f"Provider {name} could not be found")
    config = ctx.settings.external.providers.get(name)
    # conf.OAuthProviderConfiguration.ValidateOAuth, the first check of every constructor
    if config is None or not config.enabled:
        raise Unsupported("provider is not enabled")
    if not config.client_id:
        raise Unsupported("missing OAuth client ID")
    if not config.secret:
        raise Unsupported("missing OAuth secret")
    if not config.redirect_uri:
        raise Unsupported("missing redirect URI")
    cls = provider_class(name)
    if cls is None or ctx.http is None:
        raise Unsupported(f"Provider {name} could not be found")
    provider = cls(config, ctx.http, scopes)
    provider.timeout = aiohttp.ClientTimeout(total=ctx.settings.internal_http_timeout.total_seconds())
    problem = provider.check()
    if problem:
        raise Unsupported(problem)
    return provider


def forwarded_params(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The /authorize query the provider gets too: first values, minus ours and the reserved keys."""
    out: dict[str, str] = {}
    for key, value in items:
        if key in ("scopes", "provider") or key.lower() in RESERVED_PARAMS - {"nonce"}:
            continue
        name = "provider" if key == "workos_provider" else key
        out.setdefault(name, value)
    return out


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def authorization_url(ctx: Context, *, provider_name: str, scopes: str, query: Iterable[tuple[str, str]],
                            referrer: str, code_challenge: str | None, code_challenge_method: str | None,
                            invite_token: str, linking_target: User | None = None) -> str:
    """GET /authorize and GET /user/identities/authorize: the flow_state row (whose id is the
    state) and the provider URL the browser goes to."""
    try:
        provider = await resolve(ctx, provider_name, scopes)
    except Unsupported as exc:
        raise validation(f"Unsupported provider: {exc}") from None
    if invite_token and await link_store.user_id_by_confirmation_token(ctx.db, invite_token) is None:
        raise APIError(404, "user_not_found", "User identified by token not found")
    challenge = pkce.parse(code_challenge, code_challenge_method)
    params = forwarded_params(query)

    client_state_id: str | None = None
    verifier = ""
    if provider.requires_pkce:
        # the provider's own PKCE (oauth2.GenerateVerifier: 32 random bytes, base64url)
        verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        client_state_id = str(uuid.uuid4())
        params["code_challenge"] = _s256(verifier)
        params["code_challenge_method"] = "S256"

    flow_id = str(uuid.uuid4())
    try:
        url = await provider.authorization_url(flow_id, params)
    except ProviderError as exc:
        raise validation(f"Unsupported provider: {exc}") from None
    async with ctx.db.transaction() as tx:
        if client_state_id is not None:
            await client_state_store.create(tx, provider_name, verifier, state_id=client_state_id)
        await flow_store.create_oauth(
            tx, flow_id=flow_id, provider_type=provider_name,
            code_challenge=challenge.code_challenge if challenge else None,
            code_challenge_method=challenge.method if challenge else None,
            invite_token=invite_token, referrer=referrer, oauth_client_state_id=client_state_id,
            linking_target_id=linking_target.id if linking_target else None,
            email_optional=provider.settings.email_optional)
    return url


# --- the callback -----------------------------------------------------------------------------


def target_of(ctx: Context, flow: Mapping[str, Any]) -> str:
    """Where the callback sends the browser: EXTERNAL_REDIRECTURL > the flow's referrer > SITE_URL."""
    return ctx.settings.external.redirect_url or flow.get("referrer") or ctx.settings.site_url


def go_encode(values: Iterable[tuple[str, str]]) -> str:
    """url.Values.Encode: keys sorted, QueryEscape'd."""
    return "&".join(f"{quote_plus(k, safe='')}={quote_plus(v, safe='')}" for k, v in sorted(values, key=lambda kv: kv[0]))


def with_code(target: str, code: str) -> str:
    """prepPKCERedirectURL: the target's query re-encoded with code= set."""
    parts = urlsplit(target)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "code"]
    query.append(("code", code))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, go_encode(query), parts.fragment))


def with_session(target: str, session: Mapping[str, Any], provider_token: str, provider_refresh_token: str) -> str:
    """AccessTokenResponse.AsRedirectURL: `#` and the session, appended to the target as it is."""
    values = [("provider_token", provider_token), ("access_token", session["access_token"]),
              ("token_type", session["token_type"]), ("expires_in", str(session["expires_in"])),
              ("expires_at", str(session["expires_at"])), ("refresh_token", session["refresh_token"]),
              ("sb", "")]
    if provider_refresh_token:
        values.append(("provider_refresh_token", provider_refresh_token))
    return target + "#" + go_encode(values)


async def _client_state_verifier(ctx: Context, flow: Mapping[str, Any], provider: OAuthProvider,
                                 provider_type: str) -> str:
    state_id = flow.get("oauth_client_state_id")
    if not state_id:
        if provider.requires_pkce:
            raise APIError(400, "oauth_invalid_state", "OAuth PKCE code verifier missing")
        return ""
    row = await client_state_store.take(ctx.db, str(state_id))
    if row is None:
        raise APIError(422, "oauth_client_state_not_found", "OAuth state not found")
    if row["provider_type"] != provider_type:
        raise APIError(400, "oauth_invalid_state", "OAuth provider mismatch")
    if clock.now() > row["created_at"] + CLIENT_STATE_LIFETIME:
        raise APIError(422, "oauth_client_state_expired", "OAuth state expired")
    return row["code_verifier"] or ""


async def _provider_data(ctx: Context, flow: Mapping[str, Any], params: Mapping[str, str]) -> tuple[UserData, str, str]:
    """oAuthCallback: the provider's answer, the code exchange and the user's data."""
    provider_type = flow["provider_type"] or ""
    if provider_type == "twitter":
        return await _oauth1_data(ctx, provider_type, params)
    if params.get("error"):
        raise OAuthError(params["error"], params.get("error_description", ""))
    code = params.get("code", "")
    if not code:
        raise APIError(400, "bad_oauth_callback", "OAuth callback with missing authorization code missing")
    try:
        provider = await resolve(ctx, provider_type)
    except Unsupported as exc:
        raise APIError(400, "oauth_provider_not_supported", f"Unsupported provider: {exc}") from None
    verifier = await _client_state_verifier(ctx, flow, provider, provider_type)
    try:
        tokens = await provider.exchange_code(code, code_verifier=verifier, callback=params)
    except Exception as exc:  # noqa: BLE001 - any failure of the remote party is upstream's 500
        log.warning("%s: code exchange failed: %s", provider_type, exc)
        raise APIError(500, "unexpected_failure", f"Unable to exchange external code: {code[:4]}") from None
    try:
        data = await provider.user_data(tokens)
    except Exception as exc:  # noqa: BLE001
        log.warning("%s: user data failed: %s", provider_type, exc)
        raise APIError(500, "unexpected_failure", "Error getting user profile from external provider") from None
    return data, tokens.access_token, tokens.refresh_token


async def _oauth1_data(ctx: Context, provider_type: str, params: Mapping[str, str]) -> tuple[UserData, str, str]:
    """oAuth1Callback (Twitter): oauth_token + oauth_verifier instead of a code; no refresh token."""
    try:
        provider = await resolve(ctx, provider_type)
    except Unsupported as exc:
        raise APIError(400, "oauth_provider_not_supported", f"Unsupported provider: {exc}") from None
    try:
        tokens = await provider.exchange_code("", callback=params)
    except Exception as exc:  # noqa: BLE001
        log.warning("%s: access token failed: %s", provider_type, exc)
        raise APIError(500, "unexpected_failure", "Unable to retrieve access token") from None
    try:
        data = await provider.user_data(tokens)
    except Exception as exc:  # noqa: BLE001
        log.warning("%s: user data failed: %s", provider_type, exc)
        raise APIError(500, "unexpected_failure", "Error getting user email from external provider") from None
    return data, tokens.access_token, ""


async def finish(ctx: Context, client: Client, flow: Mapping[str, Any], params: Mapping[str, str]) -> str:
    """The callback after its state checks: the account decision and where the browser goes next.
    Raises APIError / OAuthError, which the caller delivers to `target_of(flow)` by redirect."""
    data, provider_token, provider_refresh_token = await _provider_data(ctx, flow, params)
    is_pkce = bool(flow.get("code_challenge"))

    async def then(tx: Executor, user: User) -> dict[str, Any] | None:
        try:
            if is_pkce:
                row = await flow_store.lock_for_callback(tx, flow["id"])
                if row is None:
                    raise OAuthError("server_error", "record not found")
                if row["user_id"] is not None:
                    raise APIError(400, "flow_state_already_used", "State has already been used")
                await flow_store.park_provider_tokens(tx, flow["id"], user.id, provider_token, provider_refresh_token)
                return None
            session = await sessions.issue(ctx, tx, user, "oauth", client)
            await flow_store.take(tx, flow["id"])
            return session
        except (APIError, OAuthError):
            raise
        except Exception as exc:  # noqa: BLE001 - upstream wraps these as OAuthError server_error
            log.exception("finishing the OAuth callback")
            raise OAuthError("server_error", str(exc)) from exc

    signed_in = await sign_in_with_identity(
        ctx, client, flow["provider_type"] or "", data, email_optional=bool(flow.get("email_optional")),
        link_to_user=str(flow["linking_target_id"]) if flow.get("linking_target_id") else None,
        invite_token=flow.get("invite_token") or "", then=then)
    target = target_of(ctx, flow)
    if is_pkce:
        return with_code(target, flow["auth_code"])
    return with_session(target, signed_in.result, provider_token, provider_refresh_token)
