"""GitHub (and GitHub Enterprise): /user for the profile, /user/emails for every address."""

from __future__ import annotations

from .base import Email, OAuthProvider, TokenSet, UserData, claims
from ._fields import array, integer, obj, string, boolean


class Provider(OAuthProvider):
    name = "github"
    default_origin = "https://github.com"
    auth_path = "/login/oauth/authorize"
    token_path = "/login/oauth/access_token"
    default_scopes = ("user:email",)

    @property
    def api_host(self) -> str:
        host = self.host("https://api.github.com")
        # An Enterprise server answers its REST API below /api/v3 (upstream's rule: any host
        # that is not api.github.com).
        return host if host.endswith("api.github.com") else host + "/api/v3"

    async def user_data(self, tokens: TokenSet) -> UserData:
        user = obj(await self.get_json(self.api_host + "/user", tokens))
        ident = str(integer(user, "id"))
        login = string(user, "login")
        name = string(user, "name")
        data = UserData(claims=claims(
            iss=self.api_host, sub=ident, name=name, preferred_username=login,
            avatar_url=string(user, "avatar_url"), full_name=name, provider_id=ident, user_name=login))
        listed = await self.get_json(self.api_host + "/user/emails", tokens)
        for entry in array({"emails": listed}, "emails") or []:
            entry = obj(entry, "email")
            if string(entry, "email"):
                data.emails.append(Email(string(entry, "email"), boolean(entry, "verified"),
                                         boolean(entry, "primary")))
        return data
