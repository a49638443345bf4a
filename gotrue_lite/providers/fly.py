"""Fly.io: the token's own description (/oauth/token/info) is the user info."""

from __future__ import annotations

from .base import Email, OAuthProvider, TokenSet, UserData, claims
from ._fields import array, integer, obj, string


class Provider(OAuthProvider):
    name = "fly"
    default_origin = "https://api.fly.io"
    auth_path = "/oauth/authorize"
    token_path = "/oauth/token"
    default_scopes = ("read",)

    async def user_data(self, tokens: TokenSet) -> UserData:
        info = obj(await self.get_json(self.origin + "/oauth/token/info", tokens))
        data = UserData()
        email = string(info, "email")
        if email:
            data.emails.append(Email(email, True, True))
        organizations = array(info, "organizations")
        if organizations is not None:
            organizations = [{"id": string(obj(o, "organization"), "id"),
                              "role": string(obj(o, "organization"), "role")} for o in organizations]
        application = info.get("application")
        if application is not None:
            application = {k: string(obj(application, "application"), k) for k in obj(application)}
        scope = array(info, "scope")
        if scope is not None:
            scope = [string({"scope": s}, "scope") for s in scope]
        ident = string(info, "user_id")
        data.claims = claims(
            iss=self.origin, sub=ident, full_name=string(info, "user_name"), email=email,
            email_verified=True, provider_id=ident,
            custom_claims={"resource_owner_id": string(info, "resource_owner_id"),
                           "organizations": organizations, "application": application,
                           "scope": scope, "created_at": integer(info, "created_at")})
        return data
