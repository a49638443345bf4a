"""Sign in with Slack (OpenID Connect): the userInfo method on slack.com/api."""

from __future__ import annotations

from .base import Email, OAuthProvider, TokenSet, UserData, claims
from ._fields import boolean, obj, string

USER_ID = "https://slack.com/user_id"
TEAM_ID = "https://slack.com/team_id"


class Provider(OAuthProvider):
    name = "slack_oidc"
    default_origin = "https://slack.com"
    auth_path = "/openid/connect/authorize"
    token_path = "/api/openid.connect.token"
    default_scopes = ("profile", "email", "openid")  # what Sign in with Slack requires
    email_verified_claim = True

    async def user_data(self, tokens: TokenSet) -> UserData:
        api = self.origin + "/api"
        user = obj(await self.get_json(api + "/openid.connect.userInfo", tokens))
        data = UserData()
        if string(user, "email"):
            verified = boolean(user, "email_verified") if self.email_verified_claim else True
            data.emails.append(Email(string(user, "email"), verified, True))
        ident, name, avatar = string(user, USER_ID), string(user, "name"), string(user, "picture")
        data.claims = claims(iss=api, sub=ident, name=name, picture=avatar,
                             custom_claims={TEAM_ID: string(user, TEAM_ID)},
                             avatar_url=avatar, full_name=name, provider_id=ident)
        return data
