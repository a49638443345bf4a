"""Discord: /api/users/@me; the avatar is a CDN URL built from the user's avatar hash."""

from __future__ import annotations

import re

from .base import Email, OAuthProvider, ProviderError, TokenSet, UserData, claims
from ._fields import boolean, obj, string

_INTEGER = re.compile(r"[+-]?[0-9]+")


class Provider(OAuthProvider):
    name = "discord"
    default_origin = "https://discord.com"
    auth_path = "/api/oauth2/authorize"
    token_path = "/api/oauth2/token"
    default_scopes = ("email", "identify")

    async def user_data(self, tokens: TokenSet) -> UserData:
        api = self.origin + "/api"
        user = obj(await self.get_json(api + "/users/@me", tokens))
        data = UserData()
        if string(user, "email"):
            data.emails.append(Email(string(user, "email"), boolean(user, "verified"), True))
        ident, avatar, discriminator = string(user, "id"), string(user, "avatar"), string(user, "discriminator")
        if not avatar:
            # The default avatar is numbered by the discriminator modulo 5 (Go's `%`: the sign
            # follows the dividend); a discriminator that is not a number is upstream's error.
            if not _INTEGER.fullmatch(discriminator):
                raise ProviderError(f'strconv.Atoi: parsing "{discriminator}": invalid syntax', status=200)
            number = int(discriminator)
            rest = abs(number) % 5
            picture = f"https://cdn.discordapp.com/embed/avatars/{-rest if number < 0 else rest}.png"
        else:
            extension = "gif" if avatar.startswith("a_") else "png"  # "a_": animated
            picture = f"https://cdn.discordapp.com/avatars/{ident}/{avatar}.{extension}"
        username = string(user, "username")
        data.claims = claims(
            iss=api, sub=ident, name=f"{username}#{discriminator}", picture=picture,
            custom_claims={"global_name": string(user, "global_name")},
            avatar_url=picture, full_name=username, provider_id=ident)
        return data
