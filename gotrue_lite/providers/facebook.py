"""Facebook: the Graph API's /me, each call proven with appsecret_proof."""

from __future__ import annotations

import hashlib
import hmac

from .base import Email, OAuthProvider, TokenSet, UserData, claims
from ._fields import obj, string, sub


class Provider(OAuthProvider):
    name = "facebook"
    default_origin = "https://www.facebook.com"
    auth_path = "/dialog/oauth"
    default_scopes = ("email",)

    async def token_url(self) -> str:
        return self.host("https://graph.facebook.com") + "/oauth/access_token"

    @property
    def profile_url(self) -> str:
        return self.host("https://graph.facebook.com") + "/me?fields=email,first_name,last_name,name,picture"

    async def user_data(self, tokens: TokenSet) -> UserData:
        # Graph API calls made with a user token must carry HMAC-SHA256(app secret, token) when
        # the app requires it; upstream always sends it.
        proof = hmac.new(self.settings.secret.encode(), tokens.access_token.encode(), hashlib.sha256).hexdigest()
        user = obj(await self.get_json(f"{self.profile_url}&appsecret_proof={proof}", tokens))
        data = UserData()
        if string(user, "email"):
            data.emails.append(Email(string(user, "email"), True, True))
        ident, alias = string(user, "id"), string(user, "name")
        name = f"{string(user, 'first_name')} {string(user, 'last_name')}".strip()
        picture = string(sub(sub(user, "picture"), "data"), "url")
        data.claims = claims(iss=self.profile_url, sub=ident, name=name, nickname=alias, picture=picture,
                             slug=alias, avatar_url=picture, full_name=name, provider_id=ident)
        return data

