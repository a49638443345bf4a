"""Notion: /v1/users/me answers the integration's bot, whose owner is the person."""

from __future__ import annotations

from .base import Email, OAuthProvider, ProviderError, TokenSet, UserData, claims
from ._fields import obj, string, sub

API_VERSION = "2021-08-16"  # the version upstream pins; the answer's shape depends on it


class Provider(OAuthProvider):
    name = "notion"
    default_origin = "https://api.notion.com"
    auth_path = "/v1/oauth/authorize"
    token_path = "/v1/oauth/token"
    takes_extra_scopes = False

    async def user_data(self, tokens: TokenSet) -> UserData:
        try:
            answer = await self.get_json(self.origin + "/v1/users/me", tokens,
                                         headers={"Notion-Version": API_VERSION})
        except ProviderError as exc:
            if exc.status:
                raise ProviderError(f"a {exc.status} error occurred with retrieving user from notion",
                                    status=exc.status, body=exc.body) from None
            raise
        user = sub(sub(sub(obj(answer), "bot"), "owner"), "user")
        data = UserData()
        email = string(sub(user, "person"), "email")
        if email:
            data.emails.append(Email(email, True, True))  # Notion says nothing about verification
        ident, name, avatar = string(user, "id"), string(user, "name"), string(user, "avatar_url")
        data.claims = claims(iss=self.origin, sub=ident, name=name, picture=avatar, avatar_url=avatar,
                             full_name=name, provider_id=ident)
        return data
