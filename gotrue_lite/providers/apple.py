"""Sign in with Apple: endpoints from appleid.apple.com's discovery, the answer posted back
(response_mode=form_post), the user from the verified id_token, and the person's name only
from the `user` form field of the first callback."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Mapping

from . import oidc
from ._fields import obj, string, sub
from ._oidc_provider import OIDCProvider
from .base import ProviderError, TokenSet, UserData


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
    default_issuer = oidc.ISSUER_APPLE
    discovered_endpoints = True
    # Apple's tokens name https://appleid.apple.com or https://account.apple.com: upstream
    # checks signature and audience only.
    skip_issuer_check = True
    default_scopes = ("email", "name")
    takes_extra_scopes = False
    read_token = staticmethod(oidc._apple)

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

    async def user_data(self, tokens: TokenSet) -> UserData:
        if not tokens.access_token or not tokens.id_token:
            data = UserData()  # Apple gives the user's data only the first time
        else:
            data = await self.id_token_user_data(tokens)
        if tokens.callback_user:
            add_name(data, tokens.callback_user)
        return data
