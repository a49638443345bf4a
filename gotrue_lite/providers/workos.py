"""WorkOS SSO: the profile comes inside the token answer; there is no user-info call."""

from __future__ import annotations

from .base import Email, OAuthProvider, TokenSet, UserData, claims
from ._fields import obj, string


class Provider(OAuthProvider):
    name = "workos"
    default_origin = "https://api.workos.com"
    auth_path = "/sso/authorize"
    token_path = "/sso/token"
    takes_extra_scopes = False

    async def user_data(self, tokens: TokenSet) -> UserData:
        if not tokens.access_token:
            return UserData()
        profile = obj(tokens.raw.get("profile"), "profile")
        data = UserData()
        if string(profile, "email"):
            data.emails.append(Email(string(profile, "email"), True, True))
        ident = string(profile, "id")
        name = f"{string(profile, 'first_name')} {string(profile, 'last_name')}".strip()
        data.claims = claims(
            iss=self.origin, sub=ident, name=name,
            custom_claims={"connection_id": string(profile, "connection_id"),
                           "organization_id": string(profile, "organization_id")},
            full_name=name, provider_id=ident)
        return data
