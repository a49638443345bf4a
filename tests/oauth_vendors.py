"""Local stand-ins for the OAuth vendors: one aiohttp app per vendor on 127.0.0.1, in its own
thread, speaking the vendor's wire format (paths, client authentication, token answers, user-info
documents and the vendor's own error shapes).

Every host of a provider is the fake's one origin (GOTRUE_EXTERNAL_<NAME>_URL points there), so
the paths are the vendor's paths after upstream's chooseHost. A fake:
- shows a consent page at the authorize path that answers 302 to redirect_uri with a code and
  the state (the user said yes), or hands out codes directly: `issue_code()`;
- checks at the token endpoint what the vendor checks: the client's credentials (in the place
  the vendor accepts them), the code, redirect_uri, PKCE S256 where the vendor enforces it;
- answers user info only for tokens it issued, with `profile` (the vendor's JSON, editable);
- can be told to fail with one of its SHAPES (`fail("bad_code")`) or to stall (`stall(s)`).

OIDC vendors (apple, google, azure, linkedin_oidc, vercel_marketplace) also serve a discovery
document and a JWKS (RS256 + ES256) and sign id_tokens (`id_token_claims` adds or overrides).
Twitter speaks OAuth 1.0a and checks every HMAC-SHA1 signature with oauthlib.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Any, Callable, Iterator
from urllib.parse import unquote_plus, urlencode, urlsplit

from aiohttp import web

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk, jwt
from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature as oauth1_signature

from loopback import listen

CLIENT_ID = "gotrue-lite-client"
CLIENT_SECRET = "s3cret/with+odd&chars and space"


def _basic(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    # RFC 6749 §2.3.1: both halves form-urlencoded before they are joined.
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return unquote_plus(user), unquote_plus(password)


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:] if header.startswith("Bearer ") else ""


class Vendor:
    """The common part: thread, loop, codes, tokens, failure switches."""

    name = ""
    authorize_path = ""
    token_path = ""
    # where the vendor accepts client credentials: "basic", "form" or "either"
    client_auth = "either"
    pkce = False
    SHAPES: tuple[str, ...] = ("401", "html500")

    def __init__(self) -> None:
        self.profile: dict[str, Any] = copy.deepcopy(self.default_profile())
        self.codes: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = []  # method, path+query, headers, form
        self.token_extra: dict[str, Any] = {}
        self._failure: str | None = None
        self._stall = 0.0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"fake-{self.name}", daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- control -------------------------------------------------------------------------

    def default_profile(self) -> dict[str, Any]:
        return {}

    def fail(self, shape: str | None) -> None:
        if shape is not None and shape not in self.SHAPES:
            raise ValueError(f"{self.name} has no error shape {shape!r}")
        self._failure = shape

    def stall(self, seconds: float) -> None:
        self._stall = seconds

    def env(self) -> dict[str, str]:
        prefix = f"GOTRUE_EXTERNAL_{self.name.upper()}_"
        return {prefix + "ENABLED": "true", prefix + "CLIENT_ID": CLIENT_ID,
                prefix + "SECRET": CLIENT_SECRET, prefix + "URL": self.url}

    def issue_code(self, redirect_uri: str, code_challenge: str = "") -> str:
        code = secrets.token_urlsafe(12)
        self.codes[code] = {"redirect_uri": redirect_uri, "challenge": code_challenge}
        return code

    # --- lifetime ------------------------------------------------------------------------

    def start(self) -> "Vendor":
        self._thread.start()
        app = web.Application()
        for method, path, handler in self.routes():
            app.router.add_route(method, path, self._wrap(handler))

        self._runner, port = listen(self._loop, app)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._loop.is_closed():
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        asyncio.run_coroutine_threadsafe(_cancel_the_rest(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def routes(self) -> list[tuple[str, str, Callable]]:
        routes = [("GET", self.authorize_path, self.authorize), ("POST", self.token_path, self.token)]
        return routes + self.api_routes()

    def api_routes(self) -> list[tuple[str, str, Callable]]:
        return []

    def _wrap(self, handler):
        async def handle(request: web.Request) -> web.StreamResponse:
            if self._stall:
                await asyncio.sleep(self._stall)
            form = {k: str(v) for k, v in (await request.post()).items()}
            self.requests.append((request.method, request.path_qs, dict(request.headers), form))
            # Failures are the server-to-server answers; the consent page stays up.
            if self._failure == "html500" and request.path != self.authorize_path:
                return web.Response(status=502, content_type="text/html",
                                    text="<html><body><h1>502 Bad Gateway</h1></body></html>")
            return await handler(request, form)
        return handle

    # --- the authorization-code flow -----------------------------------------------------

    async def authorize(self, request: web.Request, form: dict[str, str]) -> web.Response:
        """The consent page, already answered "yes": back to redirect_uri with code and state."""
        query = request.query
        if query.get("client_id") != CLIENT_ID:
            return web.Response(status=400, text="unknown client")
        if self.pkce and query.get("code_challenge_method") != "S256":
            return web.Response(status=400, text="code_challenge_method S256 is required")
        code = self.issue_code(query.get("redirect_uri", ""), query.get("code_challenge", ""))
        target = query.get("redirect_uri", "")
        back = urlencode({"code": code, "state": query.get("state", "")})
        return web.Response(status=302, headers={"Location": f"{target}{'&' if '?' in target else '?'}{back}"})

    def client_ok(self, request: web.Request, form: dict[str, str]) -> bool:
        basic = _basic(request)
        if basic is not None and self.client_auth in ("basic", "either"):
            return basic == (CLIENT_ID, CLIENT_SECRET)
        if self.client_auth in ("form", "either"):
            return (form.get("client_id"), form.get("client_secret")) == (CLIENT_ID, CLIENT_SECRET)
        return False

    def code_ok(self, form: dict[str, str]) -> bool:
        issued = self.codes.pop(form.get("code", ""), None)
        if issued is None or form.get("grant_type") != "authorization_code":
            return False
        if issued["redirect_uri"] and form.get("redirect_uri") != issued["redirect_uri"]:
            return False
        if self.pkce:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if not verifier or digest != issued["challenge"]:
                return False
        return True

    async def token(self, request: web.Request, form: dict[str, str]) -> web.Response:
        if self._failure == "401" or not self.client_ok(request, form):
            return self.client_refused()
        if self._failure == "bad_code" or not self.code_ok(form):
            return self.bad_code()
        access = "at-" + secrets.token_urlsafe(16)
        self.tokens[access] = {}
        answer = {"access_token": access, "token_type": "bearer", "expires_in": 3600,
                  "refresh_token": "rt-" + secrets.token_urlsafe(8), **self.token_answer_extra(access),
                  **self.token_extra}
        return web.json_response(answer)

    def token_answer_extra(self, access_token: str) -> dict[str, Any]:
        return {}

    def client_refused(self) -> web.Response:
        return web.json_response({"error": "invalid_client"}, status=401)

    def bad_code(self) -> web.Response:
        return web.json_response({"error": "invalid_grant"}, status=400)

    def authorized(self, request: web.Request) -> bool:
        return self._failure != "401" and _bearer(request) in self.tokens

    def unauthorized(self) -> web.Response:
        return web.json_response({"error": "invalid_token"}, status=401)

    def answer(self, request: web.Request, document: Any) -> web.Response:
        if not self.authorized(request):
            return self.unauthorized()
        return web.json_response(document)


async def _cancel_the_rest() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- GitHub ------------------------------------------------------------------------------------


class GitHub(Vendor):
    """github.com/login/oauth/* and the REST API (api.github.com, or <host>/api/v3 for Enterprise)."""

    name = "github"
    authorize_path = "/login/oauth/authorize"
    token_path = "/login/oauth/access_token"
    SHAPES = ("bad_code", "401", "html500")

    def default_profile(self):
        return {"user": {"login": "octocat", "id": 583231, "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
                         "name": "The Octocat", "email": None, "type": "User"},
                "emails": [{"email": "octocat@example.com", "primary": True, "verified": True, "visibility": "public"},
                           {"email": "old@example.com", "primary": False, "verified": False, "visibility": None}]}

    async def token(self, request, form):
        response = await super().token(request, form)
        if response.status == 200 and "json" not in request.headers.get("Accept", ""):
            # Without Accept: application/json GitHub answers the form encoding.
            body = json.loads(response.body)
            return web.Response(text=urlencode({k: body[k] for k in ("access_token", "scope", "token_type") if k in body}),
                                content_type="application/x-www-form-urlencoded")
        return response

    def bad_code(self):
        # GitHub refuses a code with 200 and an error document.
        return web.json_response({"error": "bad_verification_code",
                                  "error_description": "The code passed is incorrect or expired.",
                                  "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"})

    def client_refused(self):
        return web.json_response({"error": "incorrect_client_credentials",
                                  "error_description": "The client_id and/or client_secret passed are incorrect."})

    def unauthorized(self):
        return web.json_response({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest",
                                  "status": "401"}, status=401)

    def api_routes(self):
        async def user(request, form):
            return self.answer(request, self.profile["user"])

        async def emails(request, form):
            return self.answer(request, self.profile["emails"])
        return [("GET", "/api/v3/user", user), ("GET", "/api/v3/user/emails", emails)]


class GitLab(Vendor):
    name = "gitlab"
    authorize_path = "/oauth/authorize"
    token_path = "/oauth/token"

    def default_profile(self):
        return {"user": {"id": 42, "username": "jdoe", "name": "Jane Doe", "email": "jane@example.com",
                         "avatar_url": "https://gitlab.example/avatar.png", "confirmed_at": "2020-01-01T00:00:00Z"},
                "emails": [{"id": 7, "email": "jane.alt@example.com", "confirmed_at": "2021-01-01T00:00:00Z"}]}

    def unauthorized(self):
        return web.json_response({"message": "401 Unauthorized"}, status=401)

    def api_routes(self):
        async def user(request, form):
            return self.answer(request, self.profile["user"])

        async def emails(request, form):
            return self.answer(request, self.profile["emails"])
        return [("GET", "/api/v4/user", user), ("GET", "/api/v4/user/emails", emails)]


class Bitbucket(Vendor):
    name = "bitbucket"
    authorize_path = "/site/oauth2/authorize"
    token_path = "/site/oauth2/access_token"

    def default_profile(self):
        return {"user": {"uuid": "{c788b2da-b7a2-404c-9e26-d3f077557007}", "display_name": "Bit Bucket",
                         "avatar": {"href": "https://bitbucket.org/account/bb/avatar/"}},
                "emails": {"pagelen": 10, "values": [
                    {"email": "bb@example.com", "is_primary": True, "is_confirmed": True, "type": "email"},
                    {"email": "bb2@example.com", "is_primary": False, "is_confirmed": False, "type": "email"}]}}

    def api_routes(self):
        async def user(request, form):
            return self.answer(request, self.profile["user"])

        async def emails(request, form):
            return self.answer(request, self.profile["emails"])
        return [("GET", "/2.0/user", user), ("GET", "/2.0/user/emails", emails)]


class Discord(Vendor):
    name = "discord"
    authorize_path = "/api/oauth2/authorize"
    token_path = "/api/oauth2/token"
    SHAPES = ("bad_code", "401", "html500")

    def default_profile(self):
        return {"id": "80351110224678912", "username": "nelly", "discriminator": "1337",
                "global_name": "Nelly", "avatar": "8342729096ea3675442027381ff50dfe",
                "verified": True, "email": "nelly@discord.example"}

    def bad_code(self):
        return web.json_response({"error": "invalid_grant", "error_description": 'Invalid "code" in request.'}, status=400)

    def unauthorized(self):
        return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)

    def api_routes(self):
        async def me(request, form):
            return self.answer(request, self.profile)
        return [("GET", "/api/users/@me", me)]


class Facebook(Vendor):
    name = "facebook"
    authorize_path = "/dialog/oauth"
    token_path = "/oauth/access_token"
    SHAPES = ("bad_code", "401", "html500")

    def default_profile(self):
        return {"id": "10158000000000001", "email": "fb@example.com", "first_name": "Fay",
                "last_name": "Book", "name": "Fay Book",
                "picture": {"data": {"height": 50, "is_silhouette": False, "url": "https://platform-lookaside.fbsbx.com/p.jpg", "width": 50}}}

    def bad_code(self):
        return web.json_response({"error": {"message": "Invalid verification code format.", "type": "OAuthException",
                                            "code": 100, "fbtrace_id": "AbCdEf"}}, status=400)

    def unauthorized(self):
        return web.json_response({"error": {"message": "Invalid OAuth access token - Cannot parse access token",
                                            "type": "OAuthException", "code": 190, "fbtrace_id": "AbCdEf"}}, status=400)

    def api_routes(self):
        async def me(request, form):
            if not self.authorized(request):
                return self.unauthorized()
            proof = hmac.new(CLIENT_SECRET.encode(), _bearer(request).encode(), hashlib.sha256).hexdigest()
            if request.query.get("appsecret_proof") != proof:
                return web.json_response({"error": {"message": "Invalid appsecret_proof provided in the API argument",
                                                    "type": "GraphMethodException", "code": 100}}, status=400)
            fields = request.query.get("fields", "").split(",")
            return web.json_response({k: v for k, v in self.profile.items() if k in fields or k == "id"})
        return [("GET", "/me", me)]


class Twitch(Vendor):
    """id.twitch.tv takes the client's credentials in the form only; Helix wants Client-Id."""

    name = "twitch"
    authorize_path = "/oauth2/authorize"
    token_path = "/oauth2/token"
    client_auth = "form"

    def default_profile(self):
        return {"data": [{"id": "141981764", "login": "twitchdev", "display_name": "TwitchDev", "type": "",
                          "broadcaster_type": "partner", "description": "Supporting developers",
                          "profile_image_url": "https://static-cdn.jtvnw.net/p.png",
                          "offline_image_url": "https://static-cdn.jtvnw.net/o.png", "view_count": 5980557,
                          "email": "dev@twitch.example", "created_at": "2016-12-14T20:32:28Z"}]}

    def client_refused(self):
        return web.json_response({"status": 400, "message": "missing client secret"}, status=400)

    def unauthorized(self):
        return web.json_response({"error": "Unauthorized", "status": 401, "message": "Invalid OAuth token"}, status=401)

    def api_routes(self):
        async def users(request, form):
            if request.headers.get("Client-Id") != CLIENT_ID:
                return web.json_response({"error": "Unauthorized", "status": 401,
                                          "message": "Client ID and OAuth token do not match"}, status=401)
            return self.answer(request, self.profile)
        return [("GET", "/helix/users", users)]


class X(Vendor):
    """X's OAuth 2.0: confidential clients authenticate with Basic; PKCE S256 is mandatory."""

    name = "x"
    authorize_path = "/i/oauth2/authorize"
    token_path = "/2/oauth2/token"
    client_auth = "basic"
    pkce = True
    SHAPES = ("bad_code", "401", "html500")

    def default_profile(self):
        return {"data": {"id": "2244994945", "name": "X Dev", "username": "XDevelopers",
                         "confirmed_email": "dev@x.example", "profile_image_url": "https://pbs.twimg.com/p.jpg",
                         "url": "https://developer.x.com", "created_at": "2013-12-14T04:35:55.000Z"}}

    def bad_code(self):
        return web.json_response({"error": "invalid_request",
                                  "error_description": "Value passed for the authorization code was invalid."}, status=400)

    def client_refused(self):
        return web.json_response({"error": "unauthorized_client",
                                  "error_description": "Missing valid authorization header"}, status=401)

    def unauthorized(self):
        return web.json_response({"title": "Unauthorized", "type": "about:blank", "status": 401,
                                  "detail": "Unauthorized"}, status=401)

    def api_routes(self):
        async def me(request, form):
            return self.answer(request, self.profile)
        return [("GET", "/2/users/me", me)]


def _simple(name_: str, authorize: str, token: str, paths: dict[str, str], profile: dict[str, Any],
            **attrs: Any) -> type[Vendor]:
    """A vendor whose user info is one or more GET documents (profile[key] at paths[key])."""

    class Simple(Vendor):
        name = name_
        authorize_path = authorize
        token_path = token

        def default_profile(self):
            return profile

        def api_routes(self):
            def handler(key):
                async def handle(request, form):
                    return self.answer(request, self.profile[key])
                return handle
            return [("GET", path, handler(key)) for key, path in paths.items()]

    for key, value in attrs.items():
        setattr(Simple, key, value)
    Simple.__name__ = name_.title().replace("_", "")
    return Simple


class Notion(Vendor):
    name = "notion"
    authorize_path = "/v1/oauth/authorize"
    token_path = "/v1/oauth/token"

    def default_profile(self):
        return {"object": "user", "id": "bot-1", "type": "bot",
                "bot": {"owner": {"type": "user", "user": {"object": "user", "id": "e79a0b74-3aba-4149-9f74-0bb5791a6ee6",
                                                           "name": "Avocado Lovelace", "avatar_url": "https://s3.example/a.png",
                                                           "type": "person", "person": {"email": "avo@example.org"}}}}}

    def api_routes(self):
        async def me(request, form):
            if request.headers.get("Notion-Version") != "2021-08-16":
                return web.json_response({"object": "error", "status": 400, "code": "missing_version",
                                          "message": "Notion-Version header failed validation"}, status=400)
            return self.answer(request, self.profile)
        return [("GET", "/v1/users/me", me)]


class Kakao(Vendor):
    """kauth.kakao.com: client_id and client_secret in the form (no Basic)."""

    name = "kakao"
    authorize_path = "/oauth/authorize"
    token_path = "/oauth/token"
    client_auth = "form"

    def default_profile(self):
        return {"id": 123456789, "connected_at": "2022-04-11T01:45:28Z",
                "kakao_account": {"profile_nickname_needs_agreement": False,
                                  "profile": {"nickname": "홍길동", "profile_image_url": "http://k.kakaocdn.net/p.jpg"},
                                  "email": "hong@kakao.example", "is_email_valid": True, "is_email_verified": True}}

    def client_refused(self):
        return web.json_response({"error": "invalid_client", "error_description": "Bad client credentials",
                                  "error_code": "KOE010"}, status=401)

    def api_routes(self):
        async def me(request, form):
            return self.answer(request, self.profile)
        return [("GET", "/v2/user/me", me)]


class Twitter(Vendor):
    """Twitter's OAuth 1.0a: request_token, authenticate, access_token, verify_credentials,
    each request's HMAC-SHA1 signature checked (RFC 5849) as Twitter checks it."""

    name = "twitter"
    authorize_path = "/oauth/authenticate"
    token_path = "/oauth/access_token"

    def __init__(self) -> None:
        super().__init__()
        self.request_tokens: dict[str, dict[str, str]] = {}
        self.access: dict[str, str] = {}  # token -> secret

    def default_profile(self):
        return {"id": 6253282, "id_str": "6253282", "name": "Twitter API", "screen_name": "TwitterAPI",
                "profile_image_url_https": "https://pbs.twimg.com/p_normal.jpg", "email": "api@twitter.example"}

    def _check(self, request: web.Request, form: dict[str, str], token_secret: str) -> dict[str, str] | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("OAuth "):
            return None
        params = dict(oauth1_signature.collect_parameters(headers={"Authorization": header},
                                                          exclude_oauth_signature=False))
        if params.get("oauth_consumer_key") != CLIENT_ID or params.get("oauth_signature_method") != "HMAC-SHA1":
            return None
        uri = f"http://{request.host}{request.path_qs}"
        oauth_request = OAuthRequest(uri, request.method, body=form or None, headers=dict(request.headers))
        oauth_request.params = list(oauth1_signature.collect_parameters(
            uri_query=urlsplit(uri).query, body=form or None, headers={"Authorization": header}))
        oauth_request.signature = params.get("oauth_signature", "")
        if not oauth1_signature.verify_hmac_sha1(oauth_request, CLIENT_SECRET, token_secret):
            return None
        return params

    @staticmethod
    def _error(code: int, message: str, status: int = 401) -> web.Response:
        return web.json_response({"errors": [{"code": code, "message": message}]}, status=status)

    def routes(self):
        return [("POST", "/oauth/request_token", self.request_token), ("GET", "/oauth/request_token", self.request_token),
                ("GET", self.authorize_path, self.authorize), ("POST", self.token_path, self.token),
                ("GET", self.token_path, self.token),
                ("GET", "/1.1/account/verify_credentials.json", self.verify_credentials)]

    async def request_token(self, request, form):
        params = self._check(request, form, "")
        if params is None or self._failure == "401":
            return self._error(32, "Could not authenticate you.")
        token, secret = "rq-" + secrets.token_urlsafe(8), secrets.token_urlsafe(12)
        self.request_tokens[token] = {"secret": secret, "callback": params.get("oauth_callback", "")}
        # Twitter answers the form encoding with a text/html content type.
        return web.Response(text=urlencode({"oauth_token": token, "oauth_token_secret": secret,
                                            "oauth_callback_confirmed": "true"}), content_type="text/html")

    async def authorize(self, request, form):
        token = request.query.get("oauth_token", "")
        issued = self.request_tokens.get(token)
        if issued is None:
            return web.Response(status=400, text="This page is no longer valid.")
        issued["verifier"] = secrets.token_urlsafe(8)
        target = issued["callback"]
        back = urlencode({"oauth_token": token, "oauth_verifier": issued["verifier"]})
        return web.Response(status=302, headers={"Location": f"{target}{'&' if '?' in target else '?'}{back}"})

    async def token(self, request, form):
        # The access_token leg is signed with the consumer secret and the request token (no
        # token secret: Twitter accepts that, and upstream relies on it).
        params = self._check(request, form, "")
        if params is None:
            return self._error(32, "Could not authenticate you.")
        issued = self.request_tokens.pop(params.get("oauth_token", ""), None)
        if issued is None or self._failure == "bad_code" or issued.get("verifier") != params.get("oauth_verifier"):
            return web.Response(status=401, text="Error processing your OAuth request: Invalid oauth_verifier parameter",
                                content_type="text/plain")
        token, secret = f"{self.profile['id_str']}-{secrets.token_urlsafe(10)}", secrets.token_urlsafe(16)
        self.access[token] = secret
        return web.Response(text=urlencode({"oauth_token": token, "oauth_token_secret": secret,
                                            "user_id": self.profile["id_str"], "screen_name": self.profile["screen_name"]}),
                            content_type="text/html")

    async def verify_credentials(self, request, form):
        header = request.headers.get("Authorization", "")
        token = dict(oauth1_signature.collect_parameters(headers={"Authorization": header})).get("oauth_token", "")
        if token not in self.access or self._check(request, form, self.access[token]) is None or self._failure == "401":
            return self._error(89, "Invalid or expired token.")
        return web.json_response(self.profile)

    def issue_code(self, redirect_uri, code_challenge=""):
        raise NotImplementedError("OAuth 1.0a has no code")


# --- OpenID vendors ----------------------------------------------------------------------------


class OpenIDVendor(Vendor):
    """A vendor whose token answer carries an id_token signed by keys it publishes."""

    issuer_path = ""  # the issuer below the fake's origin ("" : the origin itself)
    alg = "RS256"

    def __init__(self) -> None:
        super().__init__()
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.id_token_claims: dict[str, Any] = {}
        self.send_id_token = True
        self.nonce = ""

    @property
    def issuer(self) -> str:
        return self.url + self.issuer_path

    def claims(self) -> dict[str, Any]:
        return {}

    def sign(self, payload: dict[str, Any], alg: str | None = None, kid: str | None = None) -> str:
        alg = alg or self.alg
        key = self.rsa if alg.startswith("RS") else self.ec
        from cryptography.hazmat.primitives import serialization
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        return jwt.encode(payload, pem, algorithm=alg, headers={"kid": kid or alg.lower()})

    def jwks(self) -> dict[str, Any]:
        keys = []
        for alg, key in (("RS256", self.rsa), ("ES256", self.ec)):
            public = jwk.construct(key.public_key(), alg).to_dict()
            keys.append({**{k: (v.decode() if isinstance(v, bytes) else v) for k, v in public.items()},
                         "kid": alg.lower(), "use": "sig", "alg": alg})
        return {"keys": keys}

    def id_token(self, access_token: str) -> str:
        now = int(time.time())
        digest = hashlib.sha256(access_token.encode()).digest()[:16]
        payload = {"iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 600,
                   "at_hash": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
                   **self.claims(), **self.id_token_claims}
        return self.sign({k: v for k, v in payload.items() if v is not None})

    def token_answer_extra(self, access_token):
        return {"id_token": self.id_token(access_token)} if self.send_id_token else {}

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "authorization_endpoint": self.url + self.authorize_path,
                "token_endpoint": self.url + self.token_path, "jwks_uri": self.url + "/keys",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256", "ES256"]}

    def routes(self):
        async def discovery(request, form):
            return web.json_response(self.discovery())

        async def keys(request, form):
            return web.json_response(self.jwks())
        return super().routes() + [("GET", self.issuer_path + "/.well-known/openid-configuration", discovery),
                                   ("GET", "/keys", keys)]


class Google(OpenIDVendor):
    name = "google"
    authorize_path = "/o/oauth2/v2/auth"
    token_path = "/token"

    def claims(self):
        return {"sub": "110169484474386276334", "email": "g.user@gmail.example", "email_verified": True,
                "name": "G User", "picture": "https://lh3.googleusercontent.com/a/p.jpg", "hd": "example.com"}

    def default_profile(self):
        return {"id": "110169484474386276334", "email": "g.user@gmail.example", "verified_email": True,
                "name": "G User", "picture": "https://lh3.googleusercontent.com/a/p.jpg"}

    def api_routes(self):
        async def userinfo(request, form):
            return self.answer(request, self.profile)
        return [("GET", "/userinfo/v2/me", userinfo)]


class Apple(OpenIDVendor):
    name = "apple"
    authorize_path = "/auth/authorize"
    token_path = "/auth/token"
    client_auth = "either"

    def claims(self):
        return {"sub": "001234.abcdef.1234", "email": "x7@privaterelay.appleid.example",
                "email_verified": "true", "is_private_email": "true", "auth_time": 1764900000}

    async def token(self, request, form):
        # Apple reads client_id (and client_secret) from the form; upstream also sends `secret`.
        if form.get("client_id") != CLIENT_ID:
            return web.json_response({"error": "invalid_client"}, status=400)
        return await super().token(request, form)

    async def authorize(self, request, form):
        # Apple answers with an auto-submitting form that POSTs code, state (and `user`) back.
        if request.query.get("response_mode") != "form_post":
            return web.Response(status=400, text="response_mode must be form_post for these scopes")
        return await super().authorize(request, form)


class Azure(OpenIDVendor):
    """A tenant on the fake: _URL = <fake>/<tenant>; the issuer is <fake>/<tenant>/v2.0."""

    name = "azure"
    tenant = "9188040d-6c67-4c5b-b112-36a304b66dad"
    authorize_path = f"/{tenant}/oauth2/v2.0/authorize"
    token_path = f"/{tenant}/oauth2/v2.0/token"
    issuer_path = f"/{tenant}/v2.0"

    def env(self):
        return {**super().env(), "GOTRUE_EXTERNAL_AZURE_URL": f"{self.url}/{self.tenant}"}

    def claims(self):
        return {"sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "oid": "00000000-0000-0000-66f3-3332eca7ea81",
                "tid": self.tenant, "name": "Abe Lincoln", "preferred_username": "abe@contoso.example",
                "email": "abe@contoso.example", "ver": "2.0", "nonce": None}


class LinkedInOIDC(OpenIDVendor):
    name = "linkedin_oidc"
    authorize_path = "/oauth/v2/authorization"
    token_path = "/oauth/v2/accessToken"
    issuer_path = "/oauth"

    def claims(self):
        return {"sub": "782bbtaQ", "email": "li@example.com", "email_verified": "true",
                "given_name": "Lin", "family_name": "Ked", "locale": "en_US", "picture": "https://media.licdn.com/p.jpg"}


class VercelMarketplace(OpenIDVendor):
    name = "vercel_marketplace"
    authorize_path = "/oauth/v2/authorization"
    token_path = "/oauth/v2/accessToken"

    def claims(self):
        return {"sub": "account:abc:user:def", "global_user_id": "gu_123", "user_email": "v@vercel.example",
                "user_name": "Vee", "user_avatar_url": "https://vercel.example/a.png"}


class WorkOS(Vendor):
    name = "workos"
    authorize_path = "/sso/authorize"
    token_path = "/sso/token"
    client_auth = "form"

    def default_profile(self):
        return {"object": "profile", "id": "prof_01DMC79VCBZ0NY2099737PSVF1", "connection_id": "conn_01E4ZCR3C56J083X43JQXF3JK5",
                "connection_type": "okta", "organization_id": "org_01EHWNCE74X7JSDV0X3SZ3KJNY", "email": "todd@example.com",
                "first_name": "Todd", "last_name": "Rundgren", "idp_id": "00u1a0ufowBJlzPlk357", "raw_attributes": {}}

    def token_answer_extra(self, access_token):
        return {"profile": self.profile}


VENDORS: dict[str, type[Vendor]] = {
    "github": GitHub, "gitlab": GitLab, "bitbucket": Bitbucket, "discord": Discord, "facebook": Facebook,
    "twitch": Twitch, "x": X, "notion": Notion, "kakao": Kakao, "twitter": Twitter, "google": Google,
    "apple": Apple, "azure": Azure, "linkedin_oidc": LinkedInOIDC, "vercel_marketplace": VercelMarketplace,
    "workos": WorkOS,
    "figma": _simple("figma", "/oauth", "/v1/oauth/token", {"me": "/v1/me"},
                     {"me": {"id": "12345", "email": "fig@example.com", "handle": "figgy", "img_url": "https://figma.example/i.png"}}),
    "fly": _simple("fly", "/oauth/authorize", "/oauth/token", {"info": "/oauth/token/info"},
                   {"info": {"resource_owner_id": "ro_1", "user_id": "u_1", "user_name": "Flyer", "email": "fly@example.com",
                             "organizations": [{"id": "org_1", "role": "admin", "extra": "dropped"}],
                             "scope": ["read"], "application": {"uid": "app_1"}, "expires_in": 7200, "created_at": 1700000000}}),
    "spotify": _simple("spotify", "/authorize", "/api/token", {"me": "/me"},
                       {"me": {"id": "wizzler", "display_name": "JM Wizzler", "email": "w@spotify.example",
                               "images": [{"url": "https://i.scdn.co/small.jpg", "height": 64, "width": 64},
                                          {"url": "https://i.scdn.co/large.jpg", "height": 640, "width": 640},
                                          {"url": "https://i.scdn.co/same.jpg", "height": 640, "width": 640}]}}),
    "zoom": _simple("zoom", "/oauth/authorize", "/oauth/token", {"me": "/v2/users/me"},
                    {"me": {"id": "KDcuGIm1QgePTO8WbOqwIQ", "first_name": "Zoe", "last_name": "Zoom", "email": "zoe@zoom.example",
                            "verified": 0, "login_type": "100", "pic_url": "https://zoom.example/p.jpg"}}),
    "snapchat": _simple("snapchat", "/accounts/oauth2/auth", "/accounts/oauth2/token", {"me": "/v1/me"},
                        {"me": {"data": {"me": {"externalId": "CAESIPiRBp0e", "displayName": "Snappy",
                                                "bitmoji": {"avatar": "https://sdk.bitmoji.com/a.png", "id": "b1"}}}}}),
    "slack_oidc": _simple("slack_oidc", "/openid/connect/authorize", "/api/openid.connect.token",
                          {"me": "/api/openid.connect.userInfo"},
                          {"me": {"ok": True, "sub": "U0R7JM", "https://slack.com/user_id": "U0R7JM",
                                  "https://slack.com/team_id": "T0R7GR", "email": "krane@slack.example",
                                  "email_verified": False, "name": "krane", "picture": "https://secure.gravatar.com/p.png"}}),
    "slack": _simple("slack", "/oauth/authorize", "/api/oauth.access", {"me": "/api/openid.connect.userInfo"},
                     {"me": {"ok": True, "https://slack.com/user_id": "U0R7JM", "https://slack.com/team_id": "T0R7GR",
                             "email": "krane@slack.example", "name": "krane", "picture": "https://secure.gravatar.com/p.png"}}),
    "linkedin": _simple("linkedin", "/oauth/v2/authorization", "/oauth/v2/accessToken",
                        {"me": "/v2/me", "email": "/v2/emailAddress"},
                        {"me": {"id": "yrZCpj2Z12",
                                "firstName": {"localized": {"en_US": "Bob"}, "preferredLocale": {"country": "US", "language": "en"}},
                                "lastName": {"localized": {"en_US": "Smith"}, "preferredLocale": {"country": "US", "language": "en"}},
                                "profilePicture": {"displayImage~": {"elements": [{"identifiers": [{"identifier": "https://media.licdn.com/p.jpg"}]}]}}},
                         "email": {"elements": [{"handle": "urn:li:emailAddress:1", "handle~": {"emailAddress": "bob@linkedin.example"}}]}}),
}


def start(name: str) -> Vendor:
    return VENDORS[name]().start()


@contextlib.contextmanager
def running(name: str) -> Iterator[Vendor]:
    vendor = start(name)
    try:
        yield vendor
    finally:
        vendor.stop()
