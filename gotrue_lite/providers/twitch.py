"""Twitch: Helix /helix/users, which wants the app's Client-Id beside the user's token."""

from __future__ import annotations

from .base import Email, OAuthProvider, ProviderError, TokenSet, UserData, claims
from ._fields import array, integer, obj, string


class Provider(OAuthProvider):
    name = "twitch"
    default_origin = "https://id.twitch.tv"
    auth_path = "/oauth2/authorize"
    token_path = "/oauth2/token"
    default_scopes = ("user:read:email",)

    async def user_data(self, tokens: TokenSet) -> UserData:
        api = self.host("https://api.twitch.tv")
        try:
            answer = await self.get_json(api + "/helix/users", tokens, headers={"Client-Id": self.client_id})
        except ProviderError as exc:
            if exc.status:
                raise ProviderError(f"a {exc.status} error occurred with retrieving user from twitch",
                                    status=exc.status, body=exc.body) from None
            raise
        users = array(obj(answer), "data") or []
        if not users:
            raise ProviderError("unable to find user with twitch provider", status=200)
        user = obj(users[0], "user")
        data = UserData()
        if string(user, "email"):
            data.emails.append(Email(string(user, "email"), True, True))
        ident, login, display = string(user, "id"), string(user, "login"), string(user, "display_name")
        picture = string(user, "profile_image_url")
        data.claims = claims(
            iss=api, sub=ident, picture=picture, name=login, nickname=display,
            custom_claims={"broadcaster_type": string(user, "broadcaster_type"),
                           "description": string(user, "description"), "type": string(user, "type"),
                           "offline_image_url": string(user, "offline_image_url"),
                           "view_count": integer(user, "view_count")},
            slug=display, avatar_url=picture, full_name=login, provider_id=ident)
        return data
