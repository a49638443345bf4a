"""What the providers whose user data is an ID token share: discovery of their endpoints,
verification of the token (one call, into the generic OIDC machinery) and upstream's
per-issuer reading of the token's claims (provider/oidc.go parse…IDToken)."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

from . import _idtoken
from .base import Email, OAuthProvider, ProviderError, TokenSet, UserData, claims


class OIDCProvider(OAuthProvider):
    """A provider that reads the user from a verified id_token.

    `issuer` is the OpenID issuer (GOTRUE_EXTERNAL_<NAME>_URL replaces its default, so a local
    IdP can stand in); when `discovered_endpoints` is set the authorization and token endpoints
    come from the issuer's discovery document, as upstream takes them from go-oidc's Endpoint().
    """

    oidc = True
    default_issuer: ClassVar[str] = ""
    discovered_endpoints: ClassVar[bool] = False
    skip_issuer_check: ClassVar[bool] = False

    @property
    def issuer(self) -> str:
        return self.host(self.default_issuer)

    async def discovery(self) -> dict[str, Any]:
        return await _idtoken.discover(self, self.issuer)

    async def authorization_url(self, state: str, params: Mapping[str, str]) -> str:
        url = await super().authorization_url(state, params)
        if not self.discovered_endpoints:
            return url
        document = await self.discovery()
        return str(document.get("authorization_endpoint", "")) + url[url.index("?"):]

    async def token_url(self) -> str:
        if not self.discovered_endpoints:
            return await super().token_url()
        return str((await self.discovery()).get("token_endpoint", ""))

    async def verified_claims(self, tokens: TokenSet, issuer: str | None = None) -> dict[str, Any]:
        """The id_token's claims once its signature, issuer, audience, expiry and at_hash hold."""
        return await _idtoken.verify(self, tokens.id_token, issuer=issuer or self.issuer,
                                     client_id=self.client_id, skip_issuer_check=self.skip_issuer_check,
                                     access_token=tokens.access_token)

    def parse_claims(self, payload: dict[str, Any]) -> UserData:
        """Upstream's per-issuer claim reader for this provider's tokens."""
        raise NotImplementedError


# The keys of upstream's Claims (provider.go) that an ID token's standard claims decode into;
# anything else in the token is dropped by upstream's parseGenericIDToken.
_STRINGS = ("iss", "sub", "name", "family_name", "given_name", "middle_name", "nickname",
            "preferred_username", "profile", "picture", "website", "gender", "birthdate", "zoneinfo",
            "locale", "email", "phone", "full_name", "avatar_url", "slug", "provider_id", "user_name")
_NUMBERS = ("iat", "exp")
_BOOLS = ("email_verified", "phone_verified")


def generic_user_data(payload: dict[str, Any]) -> UserData:
    """Upstream's parseGenericIDToken: the token's claims read as Claims (a claim of the wrong
    JSON type — email_verified as the string "true" — fails, as Go's decoding does)."""
    from ._fields import boolean, string

    values: dict[str, Any] = {key: string(payload, key) for key in _STRINGS}
    for key in _NUMBERS:
        value = payload.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ProviderError(f"json: cannot unmarshal {value!r} into the number field {key!r}", status=200)
        values[key] = value
    audience = payload.get("aud")
    if audience is not None and not isinstance(audience, (str, list)):
        raise ProviderError("json: cannot unmarshal aud", status=200)
    values["aud"] = [audience] if isinstance(audience, str) else audience
    if payload.get("updated_at") is not None:
        values["updated_at"] = payload["updated_at"]
    custom = payload.get("custom_claims")
    if custom is not None and not isinstance(custom, dict):
        raise ProviderError("json: cannot unmarshal custom_claims", status=200)
    values["custom_claims"] = custom
    flags = {key: boolean(payload, key) for key in _BOOLS}
    data = UserData(claims=claims(**values, **flags))
    if values["email"]:
        data.emails.append(Email(values["email"], flags["email_verified"], True))
    return data
