"""Bitbucket Cloud: /2.0/user and /2.0/user/emails on the API host."""

from __future__ import annotations

from .base import Email, OAuthProvider, TokenSet, UserData, claims
from ._fields import array, boolean, obj, string, sub


class Provider(OAuthProvider):
    name = "bitbucket"
    default_origin = "https://bitbucket.org"
    auth_path = "/site/oauth2/authorize"
    token_path = "/site/oauth2/access_token"
    default_scopes = ("account", "email")
    takes_extra_scopes = False

    async def user_data(self, tokens: TokenSet) -> UserData:
        api = self.host("https://api.bitbucket.org") + "/2.0"
        user = obj(await self.get_json(api + "/user", tokens))
        data = UserData()
        listed = obj(await self.get_json(api + "/user/emails", tokens))
        for entry in array(listed, "values") or []:
            entry = obj(entry, "email")
            if string(entry, "email"):
                data.emails.append(Email(string(entry, "email"), boolean(entry, "is_confirmed"),
                                         boolean(entry, "is_primary")))
        ident = string(user, "uuid")
        avatar = string(sub(user, "avatar"), "href")
        name = string(user, "display_name")
        data.claims = claims(iss=api, sub=ident, name=name, picture=avatar, avatar_url=avatar,
                             full_name=name, provider_id=ident)
        return data
