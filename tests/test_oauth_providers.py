"""Each built-in provider against its vendor's wire-format fake (tests/oauth_vendors.py): the
authorization URL it sends the browser to, the code exchange, and the user data it makes of the
vendor's answers — exactly what upstream's provider/<name>.go would make of them — and the
vendor's error shapes, which must come back as ProviderError (never another exception)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from typing import Any, Mapping
from urllib.parse import parse_qs, urlsplit

import pytest

from gotrue_lite.config import ProviderSettings
from gotrue_lite.outbound import new_client
from gotrue_lite.providers import Email, ProviderError, provider_class
from oauth_vendors import CLIENT_ID, CLIENT_SECRET, running

REDIRECT = "https://auth.example.com/callback"
VERIFIER = "dBjftJeZ4CVP-mJ92K9fmDkw1ZrtxSp7oSZGcLdRyNXbHnZbbBk9xoN9kDt7Hdm"
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()


def settings(url: str = "", client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> ProviderSettings:
    return ProviderSettings(enabled=True, client_id=(client_id,), secret=secret, redirect_uri=REDIRECT,
                            url=url, api_url="", email_optional=False, skip_nonce_check=False)


def run(coro_fn, *args, **kwargs):
    """Run `coro_fn(http, *args)` with a fresh client session like the app's."""
    async def main():
        async with new_client() as http:
            return await coro_fn(http, *args, **kwargs)
    return asyncio.run(main())


async def _authorize(http, name, url="", scopes="", params: Mapping[str, str] | None = None) -> str:
    provider = provider_class(name)(settings(url), http, scopes)
    return await provider.authorization_url("the-state", params or {})


async def _sign_in(http, name: str, vendor, *, scopes: str = "", pkce: bool = False, user: str = ""):
    """The browser's round trip through the fake's consent page, then exchange and user data."""
    provider = provider_class(name)(settings(vendor.env()[f"GOTRUE_EXTERNAL_{name.upper()}_URL"]), http, scopes)
    params = {"code_challenge": CHALLENGE, "code_challenge_method": "s256".upper()} if pkce else {}
    where = await provider.authorization_url("the-state", params)
    async with http.get(where, allow_redirects=False) as resp:
        assert resp.status == 302, await resp.text()
        back = {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["Location"]).query).items()}
    assert back.get("state") == "the-state"
    if user:
        back["user"] = user
    tokens = await provider.exchange_code(back.get("code", ""), code_verifier=VERIFIER if pkce else "",
                                          callback=back)
    return tokens, await provider.user_data(tokens)


def sign_in(name, vendor, **kw):
    return run(_sign_in, name, vendor, **kw)


def meta(data, email_verified: bool = False) -> dict[str, Any]:
    """The claims without the two keys structs.Map always writes, once they are checked."""
    made = dict(data.claims)
    assert made.pop("phone_verified") is False
    assert made.pop("email_verified") is email_verified
    return made


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


# --- authorization URLs against the real default hosts (no request is made) -----------------

DEFAULTS = {
    "github": ("https://github.com/login/oauth/authorize", "user:email"),
    "gitlab": ("https://gitlab.com/oauth/authorize", "read_user"),
    "bitbucket": ("https://bitbucket.org/site/oauth2/authorize", "account email"),
    "discord": ("https://discord.com/api/oauth2/authorize", "email identify"),
    "facebook": ("https://www.facebook.com/dialog/oauth", "email"),
    "figma": ("https://www.figma.com/oauth", "current_user:read"),
    "fly": ("https://api.fly.io/oauth/authorize", "read"),
    "kakao": ("https://kauth.kakao.com/oauth/authorize", "account_email profile_image profile_nickname"),
    "linkedin": ("https://api.linkedin.com/oauth/v2/authorization", "r_emailaddress r_liteprofile"),
    "linkedin_oidc": ("https://api.linkedin.com/oauth/v2/authorization", "openid email profile"),
    "notion": ("https://api.notion.com/v1/oauth/authorize", None),
    "slack": ("https://slack.com/oauth/authorize", "profile email openid"),
    "slack_oidc": ("https://slack.com/openid/connect/authorize", "profile email openid"),
    "snapchat": ("https://accounts.snapchat.com/accounts/oauth2/auth",
                 "https://auth.snapchat.com/oauth2/api/user.external_id "
                 "https://auth.snapchat.com/oauth2/api/user.display_name "
                 "https://auth.snapchat.com/oauth2/api/user.bitmoji.avatar"),
    "spotify": ("https://accounts.spotify.com/authorize", "user-read-email"),
    "twitch": ("https://id.twitch.tv/oauth2/authorize", "user:read:email"),
    "vercel_marketplace": ("https://api.vercel.com/oauth/v2/authorization", None),
    "workos": ("https://api.workos.com/sso/authorize", None),
    "x": ("https://x.com/i/oauth2/authorize", "users.email tweet.read users.read offline.access"),
    "zoom": ("https://zoom.us/oauth/authorize", None),
    "azure": ("https://login.microsoftonline.com/common/oauth2/v2.0/authorize", "openid"),
}


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_authorization_url_defaults(name):
    endpoint, scope = DEFAULTS[name]
    url = run(_authorize, name, params={"access_type": "offline"})
    assert url.split("?")[0] == endpoint
    query = query_of(url)
    assert query.pop("scope", None) == scope
    assert query == {"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code",
                     "state": "the-state", "access_type": "offline"}


def test_extra_scopes_are_appended_where_upstream_takes_them():
    assert query_of(run(_authorize, "github", scopes="repo,read:org"))["scope"] == "user:email repo read:org"
    # bitbucket, notion, workos and zoom take no scopes in upstream's constructors
    assert query_of(run(_authorize, "bitbucket", scopes="repo"))["scope"] == "account email"
    assert "scope" not in query_of(run(_authorize, "zoom", scopes="meeting:read"))


def test_url_setting_moves_every_host():
    url = run(_authorize, "gitlab", url="https://git.corp.example/")
    assert url.startswith("https://git.corp.example/oauth/authorize?")
    provider = provider_class("github")(settings("https://ghe.corp.example"), None)
    assert provider.api_host == "https://ghe.corp.example/api/v3"  # Enterprise's REST prefix
    assert provider_class("github")(settings(), None).api_host == "https://api.github.com"


def test_pkce_is_required_by_x_only():
    required = [n for n in [*DEFAULTS, "apple", "google", "twitter"] if provider_class(n).requires_pkce]
    assert required == ["x"]
    url = run(_authorize, "x", params={"code_challenge": CHALLENGE, "code_challenge_method": "S256"})
    assert query_of(url)["code_challenge"] == CHALLENGE and query_of(url)["code_challenge_method"] == "S256"


# --- OAuth 2.0 vendors: exchange and user data ---------------------------------------------


def test_github_user_and_every_email():
    with running("github") as vendor:
        tokens, data = sign_in("github", vendor)
        assert tokens.access_token in vendor.tokens and tokens.refresh_token
        assert data.emails == [Email("octocat@example.com", True, True), Email("old@example.com", False, False)]
        api = vendor.url + "/api/v3"
        assert meta(data) == {"iss": api, "sub": "583231", "name": "The Octocat", "preferred_username": "octocat",
                               "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
                               "full_name": "The Octocat", "provider_id": "583231", "user_name": "octocat"}
        method, path, headers, form = [r for r in vendor.requests if r[1].startswith("/login/oauth/access_token")][0]
        assert headers["Authorization"].startswith("Basic ") and form["code"] and "client_secret" not in form


def test_github_refuses_the_code_with_200_and_an_error_document():
    with running("github") as vendor:
        vendor.fail("bad_code")
        with pytest.raises(ProviderError) as err:
            sign_in("github", vendor)
        assert "bad_verification_code" in str(err.value)


@pytest.mark.parametrize("shape,status", [("401", 401), ("html500", 502)])
def test_github_user_api_errors(shape, status):
    with running("github") as vendor:
        async def flow(http):
            provider = provider_class("github")(settings(vendor.url), http)
            code = vendor.issue_code(REDIRECT)
            tokens = await provider.exchange_code(code)
            vendor.fail(shape)
            return await provider.user_data(tokens)
        with pytest.raises(ProviderError) as err:
            run(flow)
        assert err.value.status == status


def test_timeout_is_a_provider_error(monkeypatch):
    import gotrue_lite.outbound as outbound
    monkeypatch.setattr(outbound, "TOTAL_TIMEOUT", 0.5)
    with running("discord") as vendor:
        vendor.stall(3)
        async def flow(http):
            return await provider_class("discord")(settings(vendor.url), http).exchange_code("abc")
        with pytest.raises(ProviderError) as err:
            run(flow)
        assert err.value.status == 0 and "could not be reached" in str(err.value)


def test_unreachable_host_is_a_provider_error():
    async def flow(http):
        return await provider_class("gitlab")(settings("http://127.0.0.1:9"), http).exchange_code("abc")
    with pytest.raises(ProviderError):
        run(flow)


def test_gitlab_extra_emails_are_never_verified():
    with running("gitlab") as vendor:
        _, data = sign_in("gitlab", vendor)
        assert data.emails == [Email("jane.alt@example.com", False, False), Email("jane@example.com", True, True)]
        assert meta(data) == {"iss": vendor.url, "sub": "42", "name": "Jane Doe",
                               "picture": "https://gitlab.example/avatar.png",
                               "avatar_url": "https://gitlab.example/avatar.png", "full_name": "Jane Doe",
                               "provider_id": "42"}
        vendor.profile["user"]["confirmed_at"] = None
        _, data = sign_in("gitlab", vendor)
        assert data.emails[-1] == Email("jane@example.com", False, True)


def test_bitbucket():
    with running("bitbucket") as vendor:
        _, data = sign_in("bitbucket", vendor)
        assert data.emails == [Email("bb@example.com", True, True), Email("bb2@example.com", False, False)]
        uuid = "{c788b2da-b7a2-404c-9e26-d3f077557007}"
        assert meta(data) == {"iss": vendor.url + "/2.0", "sub": uuid, "name": "Bit Bucket",
                               "picture": "https://bitbucket.org/account/bb/avatar/",
                               "avatar_url": "https://bitbucket.org/account/bb/avatar/", "full_name": "Bit Bucket",
                               "provider_id": uuid}


def test_discord_avatars_and_name():
    with running("discord") as vendor:
        _, data = sign_in("discord", vendor)
        assert data.emails == [Email("nelly@discord.example", True, True)]
        avatar = "https://cdn.discordapp.com/avatars/80351110224678912/8342729096ea3675442027381ff50dfe.png"
        assert meta(data) == {"iss": vendor.url + "/api", "sub": "80351110224678912", "name": "nelly#1337",
                               "picture": avatar, "custom_claims": {"global_name": "Nelly"}, "avatar_url": avatar,
                               "full_name": "nelly", "provider_id": "80351110224678912"}
        vendor.profile.update(avatar="a_123", verified=False)
        _, data = sign_in("discord", vendor)
        assert data.claims["picture"].endswith("/a_123.gif") and data.emails[0].verified is False
        vendor.profile.update(avatar=None, discriminator="0", global_name=None)
        _, data = sign_in("discord", vendor)
        assert data.claims["picture"] == "https://cdn.discordapp.com/embed/avatars/0.png"
        assert data.claims["custom_claims"] == {"global_name": ""} and data.claims["name"] == "nelly#0"
        vendor.profile["discriminator"] = "new"
        with pytest.raises(ProviderError):
            sign_in("discord", vendor)


def test_discord_bad_code():
    with running("discord") as vendor:
        vendor.fail("bad_code")
        with pytest.raises(ProviderError) as err:
            sign_in("discord", vendor)
        assert err.value.status == 400 and "invalid_grant" in err.value.body


def test_facebook_sends_appsecret_proof():
    with running("facebook") as vendor:
        tokens, data = sign_in("facebook", vendor)
        assert data.emails == [Email("fb@example.com", True, True)]
        profile = vendor.url + "/me?fields=email,first_name,last_name,name,picture"
        picture = "https://platform-lookaside.fbsbx.com/p.jpg"
        assert meta(data) == {"iss": profile, "sub": "10158000000000001", "name": "Fay Book", "nickname": "Fay Book",
                               "picture": picture, "slug": "Fay Book", "avatar_url": picture, "full_name": "Fay Book",
                               "provider_id": "10158000000000001"}
        proof = hmac_hex(CLIENT_SECRET, tokens.access_token)
        assert any(f"appsecret_proof={proof}" in r[1] for r in vendor.requests)


def hmac_hex(key: str, message: str) -> str:
    import hmac
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def test_facebook_wrong_secret_is_refused_by_the_graph_api():
    with running("facebook") as vendor:
        async def flow(http):
            provider = provider_class("facebook")(settings(vendor.url, secret="not-the-secret"), http)
            tokens = await provider.exchange_code("x") if False else None
            vendor.tokens["at-known"] = {}
            from gotrue_lite.providers import TokenSet
            return await provider.user_data(TokenSet(access_token="at-known"))
        with pytest.raises(ProviderError) as err:
            run(flow)
        assert err.value.status == 400 and "appsecret_proof" in err.value.body


def test_twitch_credentials_in_the_form_after_basic_is_refused_and_client_id_header():
    with running("twitch") as vendor:
        _, data = sign_in("twitch", vendor)
        token_calls = [r for r in vendor.requests if r[1] == "/oauth2/token"]
        assert len(token_calls) == 2  # Basic first (refused), then the form, as x/oauth2 auto-detects
        assert "Authorization" in token_calls[0][2] and token_calls[1][3]["client_secret"] == CLIENT_SECRET
        assert data.emails == [Email("dev@twitch.example", True, True)]
        assert meta(data) == {
            "iss": vendor.url, "sub": "141981764", "picture": "https://static-cdn.jtvnw.net/p.png",
            "name": "twitchdev", "nickname": "TwitchDev",
            "custom_claims": {"broadcaster_type": "partner", "description": "Supporting developers", "type": "",
                              "offline_image_url": "https://static-cdn.jtvnw.net/o.png", "view_count": 5980557},
            "slug": "TwitchDev", "avatar_url": "https://static-cdn.jtvnw.net/p.png", "full_name": "twitchdev",
            "provider_id": "141981764"}
        vendor.profile["data"] = []
        with pytest.raises(ProviderError, match="unable to find user with twitch provider"):
            sign_in("twitch", vendor)


def test_x_with_pkce():
    with running("x") as vendor:
        tokens, data = sign_in("x", vendor, pkce=True)
        assert data.emails == [Email("dev@x.example", True, True)]
        assert meta(data) == {
            "iss": vendor.url, "sub": "2244994945", "name": "X Dev", "preferred_username": "XDevelopers",
            "picture": "https://pbs.twimg.com/p.jpg", "profile": "https://x.com/XDevelopers",
            "website": "https://developer.x.com", "custom_claims": {"created_at": "2013-12-14T04:35:55.000Z"},
            "avatar_url": "https://pbs.twimg.com/p.jpg", "full_name": "X Dev", "provider_id": "2244994945",
            "user_name": "XDevelopers"}


def test_x_refuses_a_wrong_verifier():
    with running("x") as vendor:
        async def flow(http):
            provider = provider_class("x")(settings(vendor.url), http)
            code = vendor.issue_code(REDIRECT, CHALLENGE)
            return await provider.exchange_code(code, code_verifier="not-the-verifier-" + "a" * 30)
        with pytest.raises(ProviderError) as err:
            run(flow)
        # x/oauth2's auto-detection then retries with the credentials in the form, which X
        # refuses too (it wants Basic): no token was issued either way.
        assert err.value.status in (400, 401) and not vendor.tokens
        assert [r[3].get("code_verifier") for r in vendor.requests][0].startswith("not-the-verifier")


def test_notion_kakao_figma_fly_spotify_zoom_snapchat_workos():
    with running("notion") as vendor:
        _, data = sign_in("notion", vendor)
        ident = "e79a0b74-3aba-4149-9f74-0bb5791a6ee6"
        assert data.emails == [Email("avo@example.org", True, True)]
        assert meta(data) == {"iss": vendor.url, "sub": ident, "name": "Avocado Lovelace",
                               "picture": "https://s3.example/a.png", "avatar_url": "https://s3.example/a.png",
                               "full_name": "Avocado Lovelace", "provider_id": ident}
    with running("kakao") as vendor:
        _, data = sign_in("kakao", vendor)
        assert [r for r in vendor.requests if r[1] == "/oauth/token"][0][3]["client_secret"] == CLIENT_SECRET
        assert data.emails == [Email("hong@kakao.example", True, True)]
        assert meta(data) == {"iss": vendor.url, "sub": "123456789", "name": "홍길동", "preferred_username": "홍길동",
                               "avatar_url": "http://k.kakaocdn.net/p.jpg", "full_name": "홍길동",
                               "provider_id": "123456789", "user_name": "홍길동"}
        vendor.profile["kakao_account"]["is_email_valid"] = False
        assert sign_in("kakao", vendor)[1].emails == [Email("hong@kakao.example", False, True)]
    with running("figma") as vendor:
        _, data = sign_in("figma", vendor)
        assert data.emails == [Email("fig@example.com", True, True)]
        assert meta(data, True) == {"iss": vendor.url, "sub": "12345", "name": "figgy", "email": "fig@example.com",
                               "avatar_url": "https://figma.example/i.png",
                               "full_name": "figgy", "provider_id": "12345"}
    with running("fly") as vendor:
        _, data = sign_in("fly", vendor)
        assert meta(data, True) == {"iss": vendor.url, "sub": "u_1", "full_name": "Flyer", "email": "fly@example.com",
                               "provider_id": "u_1",
                               "custom_claims": {"resource_owner_id": "ro_1",
                                                 "organizations": [{"id": "org_1", "role": "admin"}],
                                                 "application": {"uid": "app_1"}, "scope": ["read"],
                                                 "created_at": 1700000000}}
    with running("spotify") as vendor:
        _, data = sign_in("spotify", vendor)
        assert data.emails == [Email("w@spotify.example", False, True)]  # never verified
        assert data.claims["picture"] == "https://i.scdn.co/large.jpg" and data.claims["iss"] == vendor.url
    with running("zoom") as vendor:
        _, data = sign_in("zoom", vendor)
        assert data.emails == [Email("zoe@zoom.example", False, True)]
        assert meta(data) == {"iss": vendor.url + "/v2", "sub": "KDcuGIm1QgePTO8WbOqwIQ", "name": "Zoe Zoom",
                               "picture": "https://zoom.example/p.jpg", "avatar_url": "https://zoom.example/p.jpg",
                               "full_name": "Zoe Zoom", "provider_id": "KDcuGIm1QgePTO8WbOqwIQ"}
        vendor.profile["me"]["login_type"] = "1"
        assert sign_in("zoom", vendor)[1].emails[0].verified is True
    with running("snapchat") as vendor:
        _, data = sign_in("snapchat", vendor)
        assert data.emails == []
        assert meta(data) == {"iss": "https://accounts.snapchat.com/accounts/oauth2/token", "sub": "CAESIPiRBp0e",
                               "name": "Snappy", "picture": "https://sdk.bitmoji.com/a.png", "slug": "Snappy",
                               "avatar_url": "https://sdk.bitmoji.com/a.png", "full_name": "Snappy",
                               "provider_id": "CAESIPiRBp0e"}
        me = [r for r in vendor.requests if r[1].startswith("/v1/me")][0][1]
        assert parse_qs(urlsplit(me).query)["query"] == ["{me { externalId displayName bitmoji { avatar id } email } }"]
    with running("workos") as vendor:
        _, data = sign_in("workos", vendor)
        assert data.emails == [Email("todd@example.com", True, True)]
        assert meta(data) == {"iss": vendor.url, "sub": "prof_01DMC79VCBZ0NY2099737PSVF1", "name": "Todd Rundgren",
                               "custom_claims": {"connection_id": "conn_01E4ZCR3C56J083X43JQXF3JK5",
                                                 "organization_id": "org_01EHWNCE74X7JSDV0X3SZ3KJNY"},
                               "full_name": "Todd Rundgren", "provider_id": "prof_01DMC79VCBZ0NY2099737PSVF1"}


def test_slack_oidc_and_legacy_slack():
    with running("slack_oidc") as vendor:
        _, data = sign_in("slack_oidc", vendor)
        assert data.emails == [Email("krane@slack.example", False, True)]  # email_verified: false
        assert meta(data) == {"iss": vendor.url + "/api", "sub": "U0R7JM", "name": "krane",
                               "picture": "https://secure.gravatar.com/p.png",
                               "custom_claims": {"https://slack.com/team_id": "T0R7GR"},
                               "avatar_url": "https://secure.gravatar.com/p.png", "full_name": "krane",
                               "provider_id": "U0R7JM"}
    with running("slack") as vendor:
        _, data = sign_in("slack", vendor)
        assert data.emails == [Email("krane@slack.example", True, True)]


def test_legacy_linkedin():
    with running("linkedin") as vendor:
        _, data = sign_in("linkedin", vendor)
        assert data.emails == [Email("bob@linkedin.example", True, True)]
        assert meta(data, True) == {"iss": vendor.url, "sub": "yrZCpj2Z12", "name": "Bob Smith",
                               "picture": "https://media.licdn.com/p.jpg", "email": "bob@linkedin.example",
                               "avatar_url": "https://media.licdn.com/p.jpg",
                               "full_name": "Bob Smith", "provider_id": "yrZCpj2Z12"}
        vendor.profile["email"] = {"elements": []}
        with pytest.raises(ProviderError):
            sign_in("linkedin", vendor)


def test_wrong_types_in_a_vendor_answer_are_provider_errors():
    with running("github") as vendor:
        vendor.profile["user"]["id"] = "not-a-number"
        with pytest.raises(ProviderError):
            sign_in("github", vendor)
        vendor.profile["user"]["id"] = 1
        vendor.profile["emails"] = {"not": "a list"}
        with pytest.raises(ProviderError):
            sign_in("github", vendor)


def test_form_encoded_token_answer():
    with running("github") as vendor:
        async def flow(http):
            provider = provider_class("github")(settings(vendor.url), http)
            code = vendor.issue_code(REDIRECT)
            # what GitHub answers without Accept: application/json
            provider_headers = {"Accept": "*/*"}
            answer = await provider.post_form(vendor.url + "/login/oauth/access_token",
                                              {"grant_type": "authorization_code", "code": code,
                                               "redirect_uri": REDIRECT}, auth=provider.basic_auth(),
                                              headers=provider_headers)
            return answer
        answer = run(flow)
        assert answer["access_token"] in vendor.tokens and answer["token_type"] == "bearer"


# --- OAuth 1.0a ------------------------------------------------------------------------------


def test_twitter_oauth1_three_legs_signed():
    with running("twitter") as vendor:
        async def flow(http):
            provider = provider_class("twitter")(settings(vendor.url), http)
            assert provider.oauth1
            where = await provider.authorization_url("st-1", {})
            assert where.startswith(vendor.url + "/oauth/authenticate?oauth_token=rq-")
            issued = list(vendor.request_tokens.values())[0]
            assert issued["callback"] == REDIRECT + "?state=st-1"
            async with http.get(where, allow_redirects=False) as resp:
                back = {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["Location"]).query).items()}
            assert back["state"] == "st-1"
            tokens = await provider.exchange_code("", callback=back)
            return tokens, await provider.user_data(tokens)
        tokens, data = run(flow)
        assert tokens.access_token in vendor.access and tokens.token_secret == vendor.access[tokens.access_token]
        assert data.emails == [Email("api@twitter.example", True, True)]
        profile = vendor.url + "/1.1/account/verify_credentials.json"
        assert meta(data) == {"iss": profile, "sub": "6253282", "name": "Twitter API",
                               "picture": "https://pbs.twimg.com/p_normal.jpg", "preferred_username": "TwitterAPI",
                               "user_name": "TwitterAPI", "full_name": "Twitter API",
                               "avatar_url": "https://pbs.twimg.com/p_normal.jpg", "provider_id": "6253282"}
        calls = [r[1] for r in vendor.requests if r[1].startswith("/1.1/")]
        assert query_of(calls[0]) == {"include_email": "true", "include_entities": "false", "skip_status": "true"}


def test_twitter_wrong_secret_and_wrong_verifier():
    with running("twitter") as vendor:
        async def wrong_secret(http):
            return await provider_class("twitter")(settings(vendor.url, secret="nope"), http).authorization_url("s", {})
        with pytest.raises(ProviderError) as err:
            run(wrong_secret)
        assert err.value.status == 401 and "Could not authenticate you" in err.value.body

        async def wrong_verifier(http):
            provider = provider_class("twitter")(settings(vendor.url), http)
            where = await provider.authorization_url("s", {})
            token = query_of(where)["oauth_token"]
            return await provider.exchange_code("", callback={"oauth_token": token, "oauth_verifier": "guess"})
        with pytest.raises(ProviderError) as err:
            run(wrong_verifier)
        assert err.value.status == 401

        async def no_token(http):
            return await provider_class("twitter")(settings(vendor.url), http).exchange_code("code", callback={})
        with pytest.raises(ProviderError):
            run(no_token)


# --- ID-token providers ------------------------------------------------------------------------


def test_google_id_token_and_userinfo_fallback():
    with running("google") as vendor:
        url = run(_authorize, "google", url=vendor.url)
        assert url.startswith(vendor.url + "/o/oauth2/v2/auth?")
        assert query_of(url)["scope"] == "email profile"
        _, data = sign_in("google", vendor)
        assert data.emails == [Email("g.user@gmail.example", True, True)]
        assert meta(data) == {"iss": vendor.url, "sub": "110169484474386276334", "name": "G User",
                               "picture": "https://lh3.googleusercontent.com/a/p.jpg",
                               "custom_claims": {"hd": "example.com"},
                               "avatar_url": "https://lh3.googleusercontent.com/a/p.jpg", "full_name": "G User",
                               "provider_id": "110169484474386276334"}
        vendor.send_id_token = False
        _, data = sign_in("google", vendor)
        userinfo = vendor.url + "/userinfo/v2/me"
        assert meta(data, True) == {"iss": userinfo, "sub": "110169484474386276334", "name": "G User",
                               "picture": "https://lh3.googleusercontent.com/a/p.jpg",
                               "email": "g.user@gmail.example", "avatar_url": "https://lh3.googleusercontent.com/a/p.jpg", "full_name": "G User",
                               "provider_id": "110169484474386276334"}


@pytest.mark.parametrize("bad", ["aud", "iss", "exp", "at_hash", "signature", "alg_none", "es256_ok"])
def test_google_id_token_checks(bad):
    with running("google") as vendor:
        if bad == "aud":
            vendor.id_token_claims["aud"] = ["someone-else"]
        elif bad == "iss":
            vendor.id_token_claims["iss"] = "https://accounts.evil.example"
        elif bad == "exp":
            vendor.id_token_claims["exp"] = 1000
        elif bad == "at_hash":
            vendor.id_token_claims["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA"
        elif bad == "signature":
            other = type(vendor)()
            vendor.sign = lambda payload, alg=None, kid=None: other.sign(payload, alg, kid)  # type: ignore[method-assign]
        elif bad == "alg_none":
            def unsigned(payload, alg=None, kid=None):
                part = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
                return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."
            vendor.sign = unsigned  # type: ignore[method-assign]
        elif bad == "es256_ok":
            vendor.alg = "ES256"
            _, data = sign_in("google", vendor)
            assert data.claims["sub"] == "110169484474386276334"
            return
        with pytest.raises(ProviderError):
            sign_in("google", vendor)


def test_apple_form_post_name_from_the_first_callback():
    with running("apple") as vendor:
        url = run(_authorize, "apple", url=vendor.url, scopes="extra",
                  params={"code_challenge": "dropped", "nonce": "dropped"})
        query = query_of(url)
        assert url.startswith(vendor.url + "/auth/authorize?")
        assert query == {"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code",
                         "scope": "email name", "state": "the-state", "response_mode": "form_post"}
        user = json.dumps({"name": {"firstName": "Ada", "lastName": "Lovelace"}, "email": "x7@privaterelay.appleid.example"})
        _, data = sign_in("apple", vendor, user=user)
        token_call = [r for r in vendor.requests if r[1] == "/auth/token"][0]
        assert token_call[3]["client_id"] == CLIENT_ID and token_call[3]["secret"] == CLIENT_SECRET
        assert data.emails == [Email("x7@privaterelay.appleid.example", True, True)]
        assert meta(data) == {"iss": vendor.url, "sub": "001234.abcdef.1234", "provider_id": "001234.abcdef.1234",
                               "custom_claims": {"is_private_email": True, "auth_time": 1764900000},
                               "name": "Ada Lovelace", "full_name": "Ada Lovelace"}
        # later sign-ins: no `user` field, no name
        _, data = sign_in("apple", vendor)
        assert "name" not in data.claims
        # Apple's tokens may name either Apple issuer: upstream skips the issuer check
        vendor.id_token_claims["iss"] = "https://account.apple.com"
        assert sign_in("apple", vendor)[1].claims["iss"] == "https://account.apple.com"
        with pytest.raises(ProviderError):
            sign_in("apple", vendor, user="{not json")


def test_azure_tenant_issuer_and_xms_edov():
    with running("azure") as vendor:
        _, data = sign_in("azure", vendor)
        assert data.emails == [Email("abe@contoso.example", True, True)]  # no xms_edov: trusted
        sub = "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ"
        custom = data.claims.pop("custom_claims")
        assert meta(data) == {"iss": vendor.issuer, "sub": sub, "provider_id": sub,
                               "preferred_username": "abe@contoso.example", "full_name": "Abe Lincoln"}
        assert custom == {"oid": "00000000-0000-0000-66f3-3332eca7ea81", "tid": vendor.tenant,
                          "email": "abe@contoso.example"}
        for edov, verified in (("1", True), (True, True), ("true", True), (False, False), ("0", False), (1, False)):
            vendor.id_token_claims["xms_edov"] = edov
            assert sign_in("azure", vendor)[1].emails == [Email("abe@contoso.example", verified, True)]
        vendor.id_token_claims["iss"] = "https://login.evil.example/tenant/v2.0"
        with pytest.raises(ProviderError, match="issuer not valid"):
            sign_in("azure", vendor)
        vendor.id_token_claims.pop("iss")
        vendor.send_id_token = False
        with pytest.raises(ProviderError, match="no OIDC ID token"):
            sign_in("azure", vendor)


def test_azure_expected_issuer_rules():
    azure = provider_class("azure")
    assert azure(settings("https://login.microsoftonline.com/contoso-tenant"), None).expected_issuer == \
        "https://login.microsoftonline.com/contoso-tenant/v2.0"
    assert azure(settings("https://login.microsoftonline.com/common"), None).expected_issuer == ""
    assert azure(settings(), None).expected_issuer == ""
    assert azure(settings("https://contoso.ciamlogin.com/tid"), None).expected_issuer == \
        "https://contoso.ciamlogin.com/tid/v2.0"


def test_linkedin_oidc_email_verified_is_a_string():
    with running("linkedin_oidc") as vendor:
        _, data = sign_in("linkedin_oidc", vendor)
        assert data.emails == [Email("li@example.com", True, True)]
        assert meta(data) == {"iss": vendor.issuer, "sub": "782bbtaQ", "name": "Lin Ked", "given_name": "Lin",
                               "family_name": "Ked", "locale": "en_US", "picture": "https://media.licdn.com/p.jpg",
                               "provider_id": "782bbtaQ"}
        vendor.id_token_claims["email_verified"] = "False"
        assert sign_in("linkedin_oidc", vendor)[1].emails == [Email("li@example.com", False, True)]
        vendor.id_token_claims["email_verified"] = True  # a JSON boolean: upstream's decoding fails
        with pytest.raises(ProviderError):
            sign_in("linkedin_oidc", vendor)


def test_vercel_marketplace_global_user_id_is_the_subject():
    with running("vercel_marketplace") as vendor:
        _, data = sign_in("vercel_marketplace", vendor)
        assert data.emails == [Email("v@vercel.example", True, True)]
        assert meta(data) == {"iss": vendor.url, "sub": "global_user_id:gu_123", "provider_id": "global_user_id:gu_123",
                               "name": "Vee", "picture": "https://vercel.example/a.png"}
        vendor.id_token_claims["global_user_id"] = None
        assert sign_in("vercel_marketplace", vendor)[1].claims["sub"] == "account:abc:user:def"
        vendor.send_id_token = False
        with pytest.raises(ProviderError, match="no OIDC ID token"):
            sign_in("vercel_marketplace", vendor)


def test_keycloak_and_unknown_names_are_not_here():
    assert provider_class("nope") is None and provider_class("_fields") is None
    assert provider_class("_oidc_provider") is None and provider_class("Github") is None



ALL_VENDORS = sorted(__import__("oauth_vendors").VENDORS)


@pytest.mark.parametrize("shape", ["401", "html500"])
@pytest.mark.parametrize("name", ALL_VENDORS)
def test_every_vendor_error_is_a_provider_error_without_secrets(name, shape):
    """A refused client (the vendor's 401 document) or a gateway's HTML page, at whichever step
    the vendor is first asked (request token, discovery, code exchange): ProviderError, whose
    message and body never carry the client secret."""
    with running(name) as vendor:
        vendor.fail(shape)
        with pytest.raises(ProviderError) as err:
            sign_in(name, vendor, pkce=name == "x")
        if shape == "401":
            # GitHub refuses client credentials with 200 and an error document
            assert err.value.status in ((200,) if name == "github" else (400, 401))
        else:  # a discovery document that cannot be had is reported by oidc.py without a status
            assert err.value.status == 502 or "openid-configuration: HTTP 502" in str(err.value)
        assert CLIENT_SECRET not in str(err.value) and CLIENT_SECRET not in err.value.body
