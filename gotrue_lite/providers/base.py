"""The one interface every external provider implements, and the HTTP pieces they share.

Upstream's shape (internal/api/provider/provider.go): a provider builds the authorization URL,
exchanges the callback's code for tokens and turns the tokens into UserData (emails plus
OIDC-style claims). The rules in auth/ decide what happens to the account; a provider only talks
to its remote party, always through the app's one HTTP client.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Mapping
from urllib.parse import urlencode

import aiohttp

if TYPE_CHECKING:
    from ..config import ProviderSettings


@dataclass(frozen=True, slots=True)
class Email:
    email: str
    verified: bool
    primary: bool


@dataclass(slots=True)
class UserData:
    """What a provider says about the person: upstream's UserProvidedData.

    `claims` holds upstream's Claims as JSON (iss, sub, name, email, email_verified, picture,
    full_name, avatar_url, provider_id, user_name, custom_claims, …) with empty values left out,
    exactly what upstream stores in identities.identity_data.
    """

    emails: list[Email] = field(default_factory=list)
    claims: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TokenSet:
    access_token: str
    refresh_token: str = ""
    id_token: str = ""
    token_type: str = "Bearer"
    expires_in: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


class ProviderError(Exception):
    """The remote party refused or answered something unusable.

    `status` is the remote HTTP status when there was one (0 for timeouts and unreachable
    hosts); `body` is its answer, shortened. The rules in auth/ turn this into upstream's error
    (a redirect at the callback, a 4xx/5xx elsewhere); the message never holds a secret.
    """

    def __init__(self, message: str, *, status: int = 0, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body[:500]


class OAuthProvider:
    """A provider as upstream's OAuthProvider: AuthCodeURL, GetOAuthToken, GetUserData, RequiresPKCE.

    Subclasses set the class attributes and implement `user_data`; most need nothing else.
    `settings.url` (GOTRUE_EXTERNAL_<NAME>_URL) replaces the default origin for every endpoint,
    so tests and self-hosted installs can point the provider anywhere.
    """

    name: ClassVar[str]
    default_origin: ClassVar[str] = ""  # e.g. "https://github.com"
    auth_path: ClassVar[str] = ""  # joined to the origin unless it is a full URL
    token_path: ClassVar[str] = ""
    default_scopes: ClassVar[tuple[str, ...]] = ()
    scope_separator: ClassVar[str] = " "
    requires_pkce: ClassVar[bool] = False  # the provider itself wants PKCE (oauth_client_states)
    oidc: ClassVar[bool] = False  # the token answer carries an id_token checked as OIDC
    oauth1: ClassVar[bool] = False  # Twitter's OAuth 1.0a: request token first, no code
    # Each call's total time (GOTRUE_INTERNAL_HTTP_TIMEOUT, set by auth/external.resolve); None:
    # the shared client's own limit.
    timeout: aiohttp.ClientTimeout | None = None

    def __init__(self, settings: "ProviderSettings", http: aiohttp.ClientSession, scopes: str = ""):
        self.settings = settings
        self.http = http
        extra = [s for s in scopes.split(",") if s] if scopes else []
        self.scopes: list[str] = [*self.default_scopes, *extra]

    # --- endpoints -------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return (self.settings.url or self.default_origin).rstrip("/")

    def endpoint(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.origin + path

    @property
    def client_id(self) -> str:
        return self.settings.client_id[0] if self.settings.client_id else ""

    def check(self) -> str:
        """Why this provider cannot be used with its settings, worded as upstream's constructor
        error (shown after "Unsupported provider: "); "" when it can. E.g. keycloak without _URL."""
        return ""

    # --- the three steps -------------------------------------------------------------------

    async def authorization_url(self, state: str, params: Mapping[str, str]) -> str:
        """Where the browser goes. `params` are the extra query parameters (forwarded ones,
        code_challenge / code_challenge_method for provider-side PKCE, nonce…), in order."""
        query = {
            "client_id": self.client_id,
            "redirect_uri": self.settings.redirect_uri,
            "response_type": "code",
            "scope": self.scope_separator.join(self.scopes),
            "state": state,
            **params,
        }
        if not query["scope"]:
            del query["scope"]
        return f"{self.endpoint(self.auth_path)}?{urlencode(query)}"

    async def exchange_code(self, code: str, *, code_verifier: str = "",
                            callback: Mapping[str, str] | None = None) -> TokenSet:
        """The callback's code → tokens. `callback` is the whole callback query/form, for the
        providers that need more than the code (OAuth 1.0a's oauth_token / oauth_verifier)."""
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": self.settings.redirect_uri}
        if code_verifier:
            form["code_verifier"] = code_verifier
        answer = await self.post_form(self.endpoint(self.token_path), form, auth=self.basic_auth())
        if not isinstance(answer, dict) or not answer.get("access_token"):
            raise ProviderError("the token endpoint answered without an access_token",
                                body=str(answer))
        expires = answer.get("expires_in")
        return TokenSet(
            access_token=str(answer["access_token"]),
            refresh_token=str(answer.get("refresh_token") or ""),
            id_token=str(answer.get("id_token") or ""),
            token_type=str(answer.get("token_type") or "Bearer"),
            expires_in=int(expires) if isinstance(expires, (int, float, str)) and str(expires).isdigit() else None,
            raw=answer,
        )

    async def user_data(self, tokens: TokenSet) -> UserData:
        raise NotImplementedError

    # --- HTTP helpers (every call through the app's one client) ------------------------------

    def basic_auth(self) -> str:
        pair = f"{self.client_id}:{self.settings.secret}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    async def post_form(self, url: str, form: Mapping[str, str], *, auth: str = "",
                        headers: Mapping[str, str] | None = None) -> Any:
        sent = {"Accept": "application/json", **(headers or {})}
        if auth:
            sent["Authorization"] = auth
        return await self._call("POST", url, data=dict(form), headers=sent)

    async def get_json(self, url: str, tokens: TokenSet | None = None, *,
                       headers: Mapping[str, str] | None = None) -> Any:
        sent = {"Accept": "application/json", **(headers or {})}
        if tokens is not None:
            sent.setdefault("Authorization", f"Bearer {tokens.access_token}")
        return await self._call("GET", url, headers=sent)

    async def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            if self.timeout is not None:
                kwargs.setdefault("timeout", self.timeout)
            async with self.http.request(method, url, allow_redirects=False, **kwargs) as resp:
                text = await resp.text()
                if not 200 <= resp.status < 300:
                    raise ProviderError(f"{self.name} answered {resp.status}", status=resp.status, body=text)
                try:
                    return await resp.json(content_type=None)
                except ValueError:
                    raise ProviderError(f"{self.name} answered something that is not JSON",
                                        status=resp.status, body=text) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderError(f"{self.name} could not be reached: {type(exc).__name__}") from exc
