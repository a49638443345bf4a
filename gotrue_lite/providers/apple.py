"""Sign in with Apple: endpoints from appleid.apple.com's discovery, the answer posted back
(response_mode=form_post), the user from the verified id_token, and the person's name only
from the `user` form field of the first callback."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Mapping

from ._fields import obj, string, sub
from ._oidc_provider import OIDCProvider
from .base import Email, ProviderError, TokenSet, UserData, claims

ISSUERS = ("https://appleid.apple.com", "https://account.apple.com")
_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
          "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def user_data_from_claims(payload: dict[str, Any]) -> UserData:
    """Upstream's parseAppleIDToken: the address is always taken as verified (Apple relays it)."""
    custom: dict[str, Any] = {}
    private = payload.get("is_private_email")
    if private is not None:
        # Apple sends true or "true": both spellings mean the same.
        if isinstance(private, str) and private in _BOOLS:
            private = _BOOLS[private]
        if not isinstance(private, bool):
            raise ProviderError(f"apple: is_private_email is not a boolean: {private!r}", status=200)
        custom["is_private_email"] = private
    auth_time = payload.get("auth_time")
    if auth_time is not None:
        if isinstance(auth_time, bool) or not isinstance(auth_time, (int, float)):
            raise ProviderError("apple: auth_time is not a number", status=200)
        custom["auth_time"] = auth_time
    if string(payload, "transfer_sub"):
        custom["transfer_sub"] = string(payload, "transfer_sub")
    ident = string(payload, "sub")
    return UserData(emails=[Email(string(payload, "email"), True, True)],
                    claims=claims(iss=string(payload, "iss"), sub=ident, provider_id=ident,
                                  custom_claims=custom))


def add_name(data: UserData, user_field: str) -> None:
    """Upstream's AppleProvider.ParseUser: `user` is JSON ({"name":{"firstName","lastName"},…})."""
    try:
        user = obj(json.loads(user_field), "user")
    except ValueError:
        raise ProviderError("apple: the callback's user field is not JSON", status=200) from None
    name = sub(user, "name")
    full = f"{string(name, 'firstName')} {string(name, 'lastName')}".strip()
    data.claims.pop("name", None)
    data.claims.pop("full_name", None)
    if full:
        data.claims.update(name=full, full_name=full)


class Provider(OIDCProvider):
    name = "apple"
    default_issuer = ISSUERS[0]
    discovered_endpoints = True
    # Apple's tokens name https://appleid.apple.com or https://account.apple.com: upstream
    # checks signature and audience only.
    skip_issuer_check = True
    default_scopes = ("email", "name")
    takes_extra_scopes = False

    async def authorization_url(self, state: str, params: Mapping[str, str]) -> str:
        # Apple only returns the name and e-mail scopes' data when it posts the answer back.
        # Upstream's AppleProvider.AuthCodeURL sends nothing else: forwarded parameters are dropped.
        return await super().authorization_url(state, {"response_mode": "form_post"})

    def extra_token_params(self) -> dict[str, str]:
        # Upstream adds these two to the exchange (besides Basic auth); Apple reads client_id.
        return {"client_id": self.client_id, "secret": self.settings.secret}

    async def exchange_code(self, code: str, *, code_verifier: str = "",
                            callback: Mapping[str, str] | None = None) -> TokenSet:
        tokens = await super().exchange_code(code, code_verifier=code_verifier, callback=callback)
        return replace(tokens, callback_user=(callback or {}).get("user", ""))

    def parse_claims(self, payload: dict[str, Any]) -> UserData:
        return user_data_from_claims(payload)

    async def user_data(self, tokens: TokenSet) -> UserData:
        if not tokens.access_token or not tokens.id_token:
            data = UserData()  # Apple gives the user's data only the first time
        else:
            data = self.parse_claims(await self.verified_claims(tokens))
        if tokens.callback_user:
            add_name(data, tokens.callback_user)
        return data
