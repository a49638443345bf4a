"""Google: endpoints from accounts.google.com's discovery; the user from the verified id_token,
or from the userinfo v2 endpoint when Google answers without one."""

from __future__ import annotations

from typing import Any

from . import oidc
from ._fields import boolean, obj, string
from ._oidc_provider import OIDCProvider
from .base import Email, TokenSet, UserData, claims

USERINFO = "https://www.googleapis.com/userinfo/v2/me"


def _verified(user: dict[str, Any]) -> bool:
    # userinfo v2 says verified_email, the id_token says email_verified.
    return boolean(user, "verified_email") or boolean(user, "email_verified")


class Provider(OIDCProvider):
    name = "google"
    default_issuer = oidc.ISSUER_GOOGLE
    discovered_endpoints = True
    default_scopes = ("email", "profile")
    read_token = staticmethod(oidc._google)

    @property
    def userinfo_url(self) -> str:
        return self.settings.url.rstrip("/") + "/userinfo/v2/me" if self.settings.url else USERINFO

    async def user_data(self, tokens: TokenSet) -> UserData:
        if tokens.id_token:
            return await self.id_token_user_data(tokens)
        user = obj(await self.get_json(self.userinfo_url, tokens))
        data = UserData()
        email, verified = string(user, "email"), _verified(user)
        if email:
            data.emails.append(Email(email, verified, True))
        ident, name, picture = string(user, "id"), string(user, "name"), string(user, "picture")
        data.claims = claims(iss=self.userinfo_url, sub=ident, name=name, picture=picture, email=email,
                             email_verified=verified, avatar_url=picture, full_name=name, provider_id=ident)
        return data
