"""Snapchat (Login Kit): the GraphQL-style /v1/me on kit.snapchat.com."""

from __future__ import annotations

from urllib.parse import urlencode

from .base import Email, OAuthProvider, TokenSet, UserData, claims
from ._fields import obj, string, sub

# Upstream stores this odd value (Snapchat's token URL) as the issuer of every Snapchat identity.
ISSUER = "https://accounts.snapchat.com/accounts/oauth2/token"
QUERY = "{me { externalId displayName bitmoji { avatar id } email } }"


class Provider(OAuthProvider):
    name = "snapchat"
    default_origin = "https://accounts.snapchat.com"
    auth_path = "/accounts/oauth2/auth"
    token_path = "/accounts/oauth2/token"
    default_scopes = ("https://auth.snapchat.com/oauth2/api/user.external_id",
                      "https://auth.snapchat.com/oauth2/api/user.display_name",
                      "https://auth.snapchat.com/oauth2/api/user.bitmoji.avatar")

    async def user_data(self, tokens: TokenSet) -> UserData:
        url = self.host("https://kit.snapchat.com") + "/v1/me?" + urlencode({"query": QUERY})
        me = sub(sub(obj(await self.get_json(url, tokens)), "data"), "me")
        data = UserData()
        if string(me, "email"):
            data.emails.append(Email(string(me, "email"), True, True))
        ident, name = string(me, "externalId"), string(me, "displayName")
        avatar = string(sub(me, "bitmoji"), "avatar")
        data.claims = claims(iss=ISSUER, sub=ident, name=name, picture=avatar, slug=name,
                             avatar_url=avatar, full_name=name, provider_id=ident)
        return data

