"""Keycloak: a realm's OpenID Connect endpoints, user info from its userinfo endpoint.

Upstream internal/api/provider/keycloak.go: GOTRUE_EXTERNAL_KEYCLOAK_URL is the realm URL and is
required; default scopes `profile email` (no `openid`: a Keycloak that wants it for userinfo gets
it from the app's `scopes`); every userinfo claim but name, sub, email and email_verified is kept
as a custom claim.
"""

from __future__ import annotations

from typing import Any

from .base import Email, OAuthProvider, ProviderError, TokenSet, UserData

_STANDARD = frozenset(("name", "sub", "email", "email_verified"))


class Provider(OAuthProvider):
    name = "keycloak"
    auth_path = "/protocol/openid-connect/auth"
    token_path = "/protocol/openid-connect/token"
    default_scopes = ("profile", "email")

    def check(self) -> str:
        """Upstream's constructor error when the realm URL is missing ("" when usable)."""
        return "" if self.settings.url else "unable to find URL for the Keycloak provider"

    async def user_data(self, tokens: TokenSet) -> UserData:
        info = await self.get_json(self.origin + "/protocol/openid-connect/userinfo", tokens)
        if not isinstance(info, dict):
            raise ProviderError("keycloak userinfo is not a JSON object", body=str(info))

        def text(key: str) -> str:
            value = info.get(key)
            return value if isinstance(value, str) else ""

        email, sub, name = text("email"), text("sub"), text("name")
        verified = info.get("email_verified") is True
        custom: dict[str, Any] = {k: v for k, v in info.items() if k not in _STANDARD}
        claims: dict[str, Any] = {"iss": self.origin, "sub": sub, "name": name, "email": email,
                                  "email_verified": verified, "phone_verified": False,
                                  "custom_claims": custom, "full_name": name, "provider_id": sub}
        return UserData(
            emails=[Email(email, verified, True)] if email else [],
            claims={k: v for k, v in claims.items() if v not in ("", None, {}) or k in ("email_verified", "phone_verified")},
        )
