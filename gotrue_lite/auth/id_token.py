"""POST /token?grant_type=id_token: sign in (or link) with an ID token the app got from an OpenID provider.

upstream api/token_oidc.go (IdTokenGrant, IdTokenGrantParams.getProvider); EXTERNAL.md §4.
The provider is resolved from `provider` / `issuer` (first match wins), the token is verified by
providers.oidc.parse_id_token against that issuer's keys, then the audience and nonce rules of
the grant apply and the account is decided by external_accounts.sign_in_with_identity, whose
last step issues the session in the same transaction.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from ..errors import APIError, validation
from ..models import User
from ..providers import oidc
from ..providers.oidc import DiscoveryError, OIDCError
from . import Client, Context, custom_providers, sessions
from .external_accounts import sign_in_with_identity
from .fields import go_quote

log = logging.getLogger("gotrue_lite.auth.id_token")

# provider name → the issuer upstream pins for it
_FIXED = {
    "google": oidc.ISSUER_GOOGLE,
    "facebook": oidc.ISSUER_FACEBOOK,
    "kakao": oidc.ISSUER_KAKAO,
    "vercel_marketplace": oidc.ISSUER_VERCEL_MARKETPLACE,
    "snapchat": oidc.ISSUER_SNAPCHAT,
}


class OAuthError(Exception):
    """upstream's OAuthError: 400 {"error", "error_description"} (API.md §3.1(c))."""

    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error = error
        self.description = description


def bad_request(description: str) -> OAuthError:
    return OAuthError("invalid request", description)  # sic, with a space, as upstream


@dataclass(frozen=True)
class Resolved:
    provider_type: str  # stored as identities.provider
    issuer: str
    audiences: tuple[str, ...]
    enabled: bool
    skip_nonce_check: bool
    email_optional: bool
    apple: bool = False  # discovery issuer mismatch tolerated; issuer and aud not checked by the verifier
    discovery_url: str = ""  # custom OIDC providers may name theirs
    fetch: Any = None  # custom providers fetch through their SSRF guard


def _detected(id_token: str, name: str) -> str:
    try:
        return oidc.unverified_issuer(id_token)
    except OIDCError:
        raise validation(f"Unable to detect issuer in ID token for {name} provider") from None


async def resolve(ctx: Context, provider: str, issuer: str, client_id: str, id_token: str) -> Resolved:
    """IdTokenGrantParams.getProvider up to the discovery fetch."""
    external = ctx.settings.external
    configs = external.providers

    def builtin(name: str, iss: str, extra: tuple[str, ...] = (), skip_nonce: bool | None = None) -> Resolved:
        cfg = configs[name]
        return Resolved(name, iss, (*cfg.client_id, *extra), cfg.enabled,
                        cfg.skip_nonce_check if skip_nonce is None else skip_nonce, cfg.email_optional,
                        apple=name == "apple")

    if provider == "apple" or oidc.is_apple_issuer(issuer):
        detected = _detected(id_token, "Apple")
        if not oidc.is_apple_issuer(detected):
            raise validation("Detected ID token issuer is not an Apple ID token issuer")
        if issuer and issuer != detected:
            raise validation("Provided issuer does not match ID token issuer")
        bundle = (external.ios_bundle_id,) if external.ios_bundle_id else ()
        resolved = builtin("apple", detected, bundle)
    elif provider == "google" or issuer == oidc.ISSUER_GOOGLE:
        resolved = builtin("google", oidc.ISSUER_GOOGLE)
    elif provider == "azure" or oidc.is_azure_issuer(issuer):
        detected = _detected(id_token, "Azure")
        if not detected.startswith(("https://login.microsoftonline.com/", "https://sts.windows.net/")):
            raise validation("Detected ID token issuer is not an Azure ID token issuer")
        if issuer and issuer != detected:
            raise validation("Provided issuer does not match ID token issuer")
        resolved = builtin("azure", detected)
    elif provider == "facebook" or issuer == oidc.ISSUER_FACEBOOK:
        # Limited Login tokens carry no usable nonce (upstream writes this into its global config;
        # here it applies to this request only).
        resolved = builtin("facebook", oidc.ISSUER_FACEBOOK, skip_nonce=True)
    elif provider == "keycloak" or (configs["keycloak"].enabled and configs["keycloak"].url
                                    and issuer == configs["keycloak"].url):
        resolved = builtin("keycloak", configs["keycloak"].url)
    elif provider in ("kakao", "vercel_marketplace", "snapchat") or issuer in (
            oidc.ISSUER_KAKAO, oidc.ISSUER_VERCEL_MARKETPLACE, oidc.ISSUER_SNAPCHAT):
        name = provider if provider in _FIXED else next(k for k, v in _FIXED.items() if v == issuer)
        resolved = builtin(name, _FIXED[name])
    elif provider.startswith("custom:"):
        if not external.custom_oauth_enabled:
            raise validation("Custom OAuth providers are disabled")
        found = await custom_providers.find(ctx, provider)
        if found is None:
            raise validation(f"Custom provider {go_quote(provider)} not found")
        if not found.enabled:
            raise APIError(400, "provider_disabled", f"Custom provider {go_quote(provider)} is disabled")
        if found.provider_type != "oidc":
            raise validation(f"Provider {go_quote(provider)} is not an OIDC provider")
        if not found.issuer:
            raise validation(f"OIDC provider {go_quote(provider)} missing issuer")
        resolved = Resolved(provider, found.issuer, (found.client_id, *found.acceptable_client_ids), True,
                            found.skip_nonce_check, found.email_optional,
                            discovery_url=found.discovery_url or "",
                            fetch=custom_providers.guarded_fetch(ctx))
    else:
        if issuer not in external.allowed_id_token_issuers:
            raise validation(f"Custom OIDC provider {go_quote(provider)} not allowed")
        # the deprecated arbitrary-issuer form: the identity's provider is the issuer URL
        resolved = Resolved(issuer, issuer, (client_id,), True, False, False)
    if not resolved.enabled:
        raise APIError(400, "provider_disabled", f"Provider (issuer {go_quote(resolved.issuer)}) is not enabled")
    return resolved


def _email_into_claims(data) -> None:
    """The grant's own email selection (EXTERNAL.md §4.3 step 1): the primary entry, else the last."""
    email, verified = "", False
    for entry in data.emails:
        email, verified = entry.email, entry.verified
        if entry.primary:
            break
    if email:
        data.claims["email"] = email
    else:
        data.claims.pop("email", None)
    data.claims["email_verified"] = verified


async def grant(ctx: Context, client: Client, *, id_token: str, access_token: str, nonce: str,
                provider: str, client_id: str, issuer: str, link_user: User | None) -> dict[str, Any]:
    """The id_token grant after the request checks; returns the session JSON."""
    resolved = await resolve(ctx, provider, issuer, client_id, id_token)
    if ctx.oidc is None:
        raise APIError(500, "unexpected_failure", "Unexpected failure, please check server logs")
    try:
        token, data = await oidc.parse_id_token(
            ctx.oidc, resolved.issuer, id_token,
            skip_issuer_check=resolved.apple, insecure_issuer=resolved.apple,
            access_token=access_token, discovery=resolved.discovery_url, fetch=resolved.fetch)
    except DiscoveryError as exc:
        # upstream returns the discovery error as is: a 500
        log.warning("id_token grant: %s: %s", resolved.issuer, exc)
        raise APIError(500, "unexpected_failure", "Unexpected failure, please check server logs") from None
    except OIDCError as exc:
        log.info("id_token grant: bad ID token from %s: %s", resolved.issuer, exc)
        raise bad_request("Bad ID token") from None

    _email_into_claims(data)
    if not token.subject:
        raise bad_request("Missing sub claim in id_token")
    if not any(aud and aud in token.audience for aud in resolved.audiences):
        # Go prints the slice as [a b]
        raise bad_request(f"Unacceptable audience in id_token: [{' '.join(token.audience)}]")
    if not resolved.skip_nonce_check:
        if bool(token.nonce) != bool(nonce):
            raise bad_request("Passed nonce and nonce in id_token should either both exist or not.")
        if token.nonce and hashlib.sha256(nonce.encode()).hexdigest() != token.nonce:
            raise OAuthError("invalid nonce", "Nonces mismatch")

    async def issue(tx, user: User) -> dict[str, Any]:
        return await sessions.issue(ctx, tx, user, "oauth", client)

    signed = await sign_in_with_identity(
        ctx, client, resolved.provider_type, data, email_optional=resolved.email_optional,
        require_email=False, link_to_user=link_user.id if link_user is not None else None, then=issue)
    return signed.result
