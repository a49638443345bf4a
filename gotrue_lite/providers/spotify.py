"""Spotify: /v1/me; its addresses are never treated as verified, as upstream decides."""

from __future__ import annotations

from .base import Email, OAuthProvider, TokenSet, UserData, claims
from ._fields import array, integer, obj, string


class Provider(OAuthProvider):
    name = "spotify"
    default_origin = "https://accounts.spotify.com"
    auth_path = "/authorize"
    token_path = "/api/token"
    default_scopes = ("user-read-email",)

    async def user_data(self, tokens: TokenSet) -> UserData:
        api = self.host("https://api.spotify.com/v1")
        user = obj(await self.get_json(api + "/me", tokens))
        data = UserData()
        if string(user, "email"):
            data.emails.append(Email(string(user, "email"), False, True))
        images = [obj(i, "image") for i in array(user, "images") or []]
        avatar = ""
        if images:
            largest = images[0]
            for image in images:  # the first of the largest, as upstream picks it
                if integer(image, "height") * integer(image, "width") > \
                        integer(largest, "height") * integer(largest, "width"):
                    largest = image
            avatar = string(largest, "url")
        ident, name = string(user, "id"), string(user, "display_name")
        data.claims = claims(iss=api, sub=ident, name=name, picture=avatar, avatar_url=avatar,
                             full_name=name, provider_id=ident)
        return data
