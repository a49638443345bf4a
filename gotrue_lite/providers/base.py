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
from urllib.parse import parse_qsl, quote_plus, urlencode

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
    # Apple posts the person's name once, in the callback's `user` form field, beside the code;
    # exchange_code keeps it here so user_data can use it (upstream's AppleProvider.ParseUser).
    callback_user: str = ""
    # OAuth 1.0a (Twitter): the access token's secret, needed to sign the user-info call.
    token_secret: str = field(default="", repr=False)


def claims(*, email_verified: bool = False, phone_verified: bool = False, **values: Any) -> dict[str, Any]:
    """Upstream's Claims as structs.Map makes them for identity_data: every key it marks
    omitempty is left out when empty; email_verified and phone_verified are always there."""
    made = {k: v for k, v in values.items() if v not in ("", None, False, 0, {}, [])}
    made["email_verified"] = email_verified
    made["phone_verified"] = phone_verified
    return made


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
    # Each call's total time (GOTRUE_INTERNAL_HTTP_TIMEOUT, set by auth/external.resolve); None:
    # the shared client's own limit.
    timeout: aiohttp.ClientTimeout | None = None
    default_origin: ClassVar[str] = ""  # e.g. "https://github.com"
    auth_path: ClassVar[str] = ""  # joined to the origin unless it is a full URL
    token_path: ClassVar[str] = ""
    default_scopes: ClassVar[tuple[str, ...]] = ()
    scope_separator: ClassVar[str] = " "
    requires_pkce: ClassVar[bool] = False  # the provider itself wants PKCE (oauth_client_states)
    oidc: ClassVar[bool] = False  # the token answer carries an id_token checked as OIDC
    oauth1: ClassVar[bool] = False  # Twitter's OAuth 1.0a: request token first, no code
    # How the client authenticates at the token endpoint, as golang.org/x/oauth2's AuthStyle:
    # "auto" tries HTTP Basic first and, when that is refused, the credentials in the form
    # (upstream's default for every provider but Kakao); "params": only in the form.
    token_auth_style: ClassVar[str] = "auto"
    # Upstream's constructors for bitbucket, notion, workos, zoom and apple take no `scopes`:
    # the ones asked for in /authorize are not sent to them.
    takes_extra_scopes: ClassVar[bool] = True

    def __init__(self, settings: "ProviderSettings", http: aiohttp.ClientSession, scopes: str = ""):
        self.settings = settings
        self.http = http
        extra = [s for s in scopes.split(",") if s] if scopes and self.takes_extra_scopes else []
        self.scopes: list[str] = [*self.default_scopes, *extra]

    # --- endpoints -------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return (self.settings.url or self.default_origin).rstrip("/")

    def host(self, default: str) -> str:
        """Upstream's chooseHost: GOTRUE_EXTERNAL_<NAME>_URL when set, else `default` (an
        https origin, possibly with a path); providers with a second host (an API host) use it."""
        return (self.settings.url or default).rstrip("/")

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
        form.update(self.extra_token_params())
        url = await self.token_url()
        if self.token_auth_style == "params":
            answer = await self.post_form(url, {**form, **self.credentials_form()})
        else:
            try:
                answer = self._token_answer(await self.post_form(url, form, auth=self.basic_auth()))
            except ProviderError as refused:
                if not refused.status:  # unreachable or timed out: a second try would wait as long
                    raise
                answer = await self.post_form(url, {**form, **self.credentials_form()})
        answer = self._token_answer(answer)
        expires = answer.get("expires_in")
        return TokenSet(
            access_token=str(answer["access_token"]),
            refresh_token=str(answer.get("refresh_token") or ""),
            id_token=str(answer.get("id_token") or ""),
            token_type=str(answer.get("token_type") or "Bearer"),
            expires_in=int(expires) if isinstance(expires, (int, float, str)) and str(expires).isdigit() else None,
            raw=answer,
        )

    async def token_url(self) -> str:
        """The token endpoint (OIDC providers read it from their discovery document)."""
        return self.endpoint(self.token_path)

    def extra_token_params(self) -> dict[str, str]:
        """Form fields a provider adds to the code exchange (Apple: client_id and secret)."""
        return {}

    def credentials_form(self) -> dict[str, str]:
        form = {"client_id": self.client_id}
        if self.settings.secret:
            form["client_secret"] = self.settings.secret
        return form

    def _token_answer(self, answer: Any) -> dict[str, Any]:
        # golang.org/x/oauth2 treats an `error` field as a refusal even with 200 (GitHub's
        # {"error":"bad_verification_code"}), and an answer without access_token as unusable.
        if not isinstance(answer, dict):
            raise ProviderError("the token endpoint answered something that is not an object",
                                status=200, body=str(answer))
        if answer.get("error"):
            raise ProviderError(f"{self.name} refused the code: {answer['error']}", status=200,
                                body=str(answer))
        if not answer.get("access_token"):
            raise ProviderError("the token endpoint answered without an access_token",
                                status=200, body=str(answer))
        return answer

    async def user_data(self, tokens: TokenSet) -> UserData:
        raise NotImplementedError

    # --- HTTP helpers (every call through the app's one client) ------------------------------

    def basic_auth(self) -> str:
        # x/oauth2 query-escapes both halves before joining them (RFC 6749 §2.3.1).
        pair = f"{quote_plus(self.client_id)}:{quote_plus(self.settings.secret)}".encode()
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
                if resp.content_type == "application/x-www-form-urlencoded":
                    # Token endpoints that answer the classic form encoding (GitHub without an
                    # Accept header), as x/oauth2 accepts them.
                    return dict(parse_qsl(text, keep_blank_values=True))
                try:
                    return await resp.json(content_type=None)
                except ValueError:
                    if resp.content_type == "text/plain" and "=" in text:
                        return dict(parse_qsl(text, keep_blank_values=True))
                    raise ProviderError(f"{self.name} answered something that is not JSON",
                                        status=resp.status, body=text) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderError(f"{self.name} could not be reached: {type(exc).__name__}") from exc
