"""Google: endpoints from accounts.google.com's discovery; the user from the verified id_token,
or from the userinfo v2 endpoint when Google answers without one."""

from __future__ import annotations

from typing import Any

from ._fields import boolean, obj, string
from ._oidc_provider import OIDCProvider
from .base import Email, TokenSet, UserData, claims

ISSUER = "https://accounts.google.com"
USERINFO = "https://www.googleapis.com/userinfo/v2/me"


def _verified(user: dict[str, Any]) -> bool:
    # userinfo v2 says verified_email, the id_token says email_verified.
    return boolean(user, "verified_email") or boolean(user, "email_verified")


def user_data_from_claims(payload: dict[str, Any]) -> UserData:
    """Upstream's parseGoogleIDToken."""
    data = UserData()
    if string(payload, "email"):
        data.emails.append(Email(string(payload, "email"), _verified(payload), True))
    ident, name, picture = string(payload, "sub"), string(payload, "name"), string(payload, "picture")
    hosted_domain = string(payload, "hd")
    data.claims = claims(iss=string(payload, "iss"), sub=ident, name=name, picture=picture,
                         custom_claims={"hd": hosted_domain} if hosted_domain else None,
                         avatar_url=picture, full_name=name, provider_id=ident)
    return data


class Provider(OIDCProvider):
    name = "google"
    default_issuer = ISSUER
    discovered_endpoints = True
    default_scopes = ("email", "profile")

    @property
    def userinfo_url(self) -> str:
        return self.settings.url.rstrip("/") + "/userinfo/v2/me" if self.settings.url else USERINFO

    def parse_claims(self, payload: dict[str, Any]) -> UserData:
        return user_data_from_claims(payload)

    async def user_data(self, tokens: TokenSet) -> UserData:
        if tokens.id_token:
            return self.parse_claims(await self.verified_claims(tokens))
        user = obj(await self.get_json(self.userinfo_url, tokens))
        data = UserData()
        email, verified = string(user, "email"), _verified(user)
        if email:
            data.emails.append(Email(email, verified, True))
        ident, name, picture = string(user, "id"), string(user, "name"), string(user, "picture")
        data.claims = claims(iss=self.userinfo_url, sub=ident, name=name, picture=picture, email=email,
                             email_verified=verified, avatar_url=picture, full_name=name, provider_id=ident)
        return data
