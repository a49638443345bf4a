"""Twitter's OAuth 1.0a (three-legged): a request token first, then the user's authorization,
then an access token; every call signed with HMAC-SHA1 (RFC 5849) by oauthlib."""

from __future__ import annotations

import json
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlencode

import aiohttp
from oauthlib.oauth1 import Client

from .base import Email, OAuthProvider, ProviderError, TokenSet, UserData, claims
from ._fields import obj, string

PROFILE_PATH = "/1.1/account/verify_credentials.json"
PROFILE_QUERY = {"include_email": "true", "include_entities": "false", "skip_status": "true"}


class Provider(OAuthProvider):
    name = "twitter"
    default_origin = "https://api.twitter.com"
    auth_path = "/oauth/authenticate"
    oauth1 = True

    @property
    def profile_url(self) -> str:
        return self.origin + PROFILE_PATH

    def _client(self, **kwargs: Any) -> Client:
        return Client(self.client_id, client_secret=self.settings.secret, **kwargs)

    async def _signed(self, method: str, url: str, client: Client) -> str:
        uri, headers, _ = client.sign(url, http_method=method)
        try:
            async with self.http.request(method, uri, headers=headers, allow_redirects=False) as resp:
                text = await resp.text()
                if not 200 <= resp.status < 300:
                    raise ProviderError(f"twitter answered {resp.status}", status=resp.status, body=text)
                return text
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderError(f"twitter could not be reached: {type(exc).__name__}") from exc

    async def authorization_url(self, state: str, params: Mapping[str, str]) -> str:
        """Asks Twitter for a request token whose callback carries `state`, and answers the
        page where the user authorizes it (upstream's Consumer.GetRequestTokenAndUrl)."""
        callback = f"{self.settings.redirect_uri}?state={state}"
        # GET, as upstream's OAuth library (mrjones/oauth) sends both token requests; Twitter
        # documents POST and accepts either.
        text = await self._signed("GET", self.origin + "/oauth/request_token",
                                  self._client(callback_uri=callback))
        answer = dict(parse_qsl(text))
        if not answer.get("oauth_token"):
            raise ProviderError("twitter answered no request token", status=200, body=text)
        return f"{self.endpoint(self.auth_path)}?{urlencode({'oauth_token': answer['oauth_token']})}"

    async def exchange_code(self, code: str, *, code_verifier: str = "",
                            callback: Mapping[str, str] | None = None) -> TokenSet:
        """The callback's oauth_token and oauth_verifier → an access token and its secret.

        Upstream keeps no request-token secret between the two legs, so this call is signed
        with the consumer secret alone, as upstream's does."""
        callback = callback or {}
        token, verifier = callback.get("oauth_token", ""), callback.get("oauth_verifier", "")
        if not token or not verifier:
            raise ProviderError("the callback has no oauth_token / oauth_verifier")
        text = await self._signed("GET", self.origin + "/oauth/access_token",
                                  self._client(resource_owner_key=token, verifier=verifier))
        answer = dict(parse_qsl(text))
        if not answer.get("oauth_token"):
            raise ProviderError("twitter answered no access token", status=200, body=text)
        return TokenSet(access_token=answer["oauth_token"], token_type="OAuth",
                        token_secret=answer.get("oauth_token_secret", ""), raw={})

    async def user_data(self, tokens: TokenSet) -> UserData:
        client = self._client(resource_owner_key=tokens.access_token,
                              resource_owner_secret=tokens.token_secret)
        try:
            text = await self._signed("GET", f"{self.profile_url}?{urlencode(PROFILE_QUERY)}", client)
        except ProviderError as exc:
            if exc.status:
                raise ProviderError(f"a {exc.status} error occurred with retrieving user from twitter",
                                    status=exc.status, body=exc.body) from None
            raise
        try:
            user = obj(json.loads(text))
        except (ValueError, ProviderError):
            user = {}  # upstream ignores a body it cannot decode and goes on with nothing
        data = UserData()
        email = string(user, "email")
        if email:
            data.emails.append(Email(email, True, True))
        ident, name, username = string(user, "id_str"), string(user, "name"), string(user, "screen_name")
        avatar = string(user, "profile_image_url_https")
        data.claims = claims(iss=self.profile_url, sub=ident, name=name, picture=avatar,
                             preferred_username=username, user_name=username, full_name=name,
                             avatar_url=avatar, provider_id=ident)
        return data
