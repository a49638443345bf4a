"""LinkedIn's legacy "Sign In with LinkedIn" (r_liteprofile): /v2/me and /v2/emailAddress.

Upstream still serves it beside linkedin_oidc; LinkedIn has retired these scopes for new apps.
"""

from __future__ import annotations

from typing import Any

from .base import Email, OAuthProvider, ProviderError, TokenSet, UserData, claims
from ._fields import array, obj, string, sub


def _localized(name: dict[str, Any]) -> str:
    # The name in the member's preferred locale ("en_US"); upstream fails when it is absent.
    locale = sub(name, "preferredLocale")
    key = f"{string(locale, 'language')}_{string(locale, 'country')}"
    value = obj(name.get("localized"), "localized").get(key)
    if not isinstance(value, str):
        raise ProviderError(f"linkedin: no name for the preferred locale {key!r}", status=200)
    return value


class Provider(OAuthProvider):
    name = "linkedin"
    default_origin = "https://api.linkedin.com"
    auth_path = "/oauth/v2/authorization"
    token_path = "/oauth/v2/accessToken"
    default_scopes = ("r_emailaddress", "r_liteprofile")

    async def user_data(self, tokens: TokenSet) -> UserData:
        user = obj(await self.get_json(
            self.origin + "/v2/me?projection=(id,firstName,lastName,profilePicture(displayImage~:playableStreams))",
            tokens))
        found = obj(await self.get_json(
            self.origin + "/v2/emailAddress?q=members&projection=(elements*(handle~))", tokens))
        elements = array(found, "elements") or []
        if not elements:
            raise ProviderError("linkedin: the member has no e-mail address element", status=200)
        email = string(sub(obj(elements[0], "element"), "handle~"), "emailAddress")
        data = UserData()
        if email:
            data.emails.append(Email(email, True, True))  # the primary address, verified by LinkedIn
        avatar = ""
        images = array(sub(sub(user, "profilePicture"), "displayImage~"), "elements") or []
        if images:
            identifiers = array(obj(images[0], "element"), "identifiers") or []
            if not identifiers:
                raise ProviderError("linkedin: a display image without identifiers", status=200)
            avatar = string(obj(identifiers[0], "identifier"), "identifier")
        name = f"{_localized(sub(user, 'firstName'))} {_localized(sub(user, 'lastName'))}".strip()
        ident = string(user, "id")
        data.claims = claims(iss=self.origin, sub=ident, name=name, picture=avatar, email=email,
                             email_verified=True, avatar_url=avatar, full_name=name, provider_id=ident)
        return data
