"""GitLab (gitlab.com or a self-managed instance): /api/v4/user and /api/v4/user/emails."""

from __future__ import annotations

from .base import Email, OAuthProvider, TokenSet, UserData, claims
from ._fields import array, integer, obj, string


class Provider(OAuthProvider):
    name = "gitlab"
    default_origin = "https://gitlab.com"
    auth_path = "/oauth/authorize"
    token_path = "/oauth/token"
    default_scopes = ("read_user",)

    async def user_data(self, tokens: TokenSet) -> UserData:
        user = obj(await self.get_json(self.origin + "/api/v4/user", tokens))
        data = UserData()
        listed = await self.get_json(self.origin + "/api/v4/user/emails", tokens)
        for entry in array({"emails": listed}, "emails") or []:
            entry = obj(entry, "email")
            # GitLab's extra addresses carry no confirmation state: never trusted.
            if string(entry, "email"):
                data.emails.append(Email(string(entry, "email"), False, False))
        if string(user, "email"):
            data.emails.append(Email(string(user, "email"), string(user, "confirmed_at") != "", True))
        ident = str(integer(user, "id"))
        avatar = string(user, "avatar_url")
        data.claims = claims(iss=self.origin, sub=ident, name=string(user, "name"), picture=avatar,
                             avatar_url=avatar, full_name=string(user, "name"), provider_id=ident)
        return data
