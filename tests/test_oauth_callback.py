"""GET /authorize and GET|POST /callback answers that need no provider round trip: unusable
providers, bad or stale state, errors delivered by redirect as upstream (EXTERNAL.md §1.1, §2.1,
§2.10), and the manual-linking switch."""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from helpers import (  # noqa: F401 - shared is a fixture
    assert_both_envelopes, assert_error, new_email, route_request as request, shared, signup_session, sql, utcnow,
)

SOME_UUID = "1c6c7e6a-7b7e-4a8e-9f52-6a1b7d0e9b3a"


@pytest.fixture(scope="module")
def user(shared):
    return signup_session(shared, new_email("oauth"))


# --- external OAuth: /authorize, /callback, identities -------------------------------------


@pytest.mark.parametrize("query, message", [
    ("provider=github", "Unsupported provider: provider is not enabled"),
    ("provider=GitHub&redirect_to=http://localhost:3000/x", "Unsupported provider: provider is not enabled"),
    ("provider=nope", "Unsupported provider: Provider nope could not be found"),
    ("", "Unsupported provider: Provider  could not be found"),
    ("provider=custom:acme", "Unsupported provider: custom provider custom:acme not found"),  # custom: tests/test_custom_providers.py
])
def test_authorize_with_a_disabled_or_unknown_provider(shared, query, message):
    assert_both_envelopes(shared, "GET", f"/authorize?{query}", 400, "validation_failed", message)


def test_authorize_reports_what_a_provider_config_lacks(make_server, backend):
    server = make_server(backend, GOTRUE_EXTERNAL_GITHUB_ENABLED="true", GOTRUE_EXTERNAL_GOOGLE_ENABLED="true",
                         GOTRUE_EXTERNAL_GOOGLE_CLIENT_ID="id", GOTRUE_EXTERNAL_GOOGLE_SECRET="s")
    assert_error(request(server, "GET", "/authorize?provider=github"), 400, "validation_failed",
                 "Unsupported provider: missing OAuth client ID")
    assert_error(request(server, "GET", "/authorize?provider=google"), 400, "validation_failed",
                 "Unsupported provider: missing redirect URI")


def _location(resp: httpx.Response, status: int) -> tuple[str, dict, str]:
    assert resp.status_code == status, resp.text
    location = resp.headers["Location"]
    parts = urlsplit(location)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qs(parts.query, keep_blank_values=True), \
        parts.fragment


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("state, code, description", [
    ("", "bad_oauth_callback", "OAuth state parameter missing"),
    ("not-a-uuid", "bad_oauth_state", "OAuth state parameter is invalid"),
    (SOME_UUID, "bad_oauth_state", "OAuth state not found or expired"),
])
def test_callback_with_a_bad_state_redirects_to_the_site(shared, method, state, code, description):
    if method == "GET":
        resp = request(shared, "GET", "/callback" + (f"?state={state}" if state else ""))
    else:
        resp = request(shared, "POST", "/callback", content=f"state={state}&code=abc".encode(),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    base, query, fragment = _location(resp, 303)
    assert base == "http://localhost:3000"
    assert query == {"error": ["invalid_request"], "error_code": [code], "error_description": [description]}
    assert fragment == ""
    assert resp.headers["Location"] == ("http://localhost:3000?error=invalid_request&error_code=" + code
                                        + "&error_description=" + description.replace(" ", "+"))


def _insert_flow(server, *, pkce: bool = False, user_id: str | None = None, age: timedelta = timedelta(0),
                 referrer: str | None = "http://localhost:3000/welcome?tab=1", provider: str = "github") -> str:
    flow_id = str(uuid.uuid4())
    created = utcnow() - age
    sql(server, "INSERT INTO flow_state (id, user_id, code_challenge, code_challenge_method, provider_type, "
                "authentication_method, created_at, updated_at, referrer, email_optional) "
                "VALUES ($1, $2, $3, $4, $5, 'oauth', $6, $6, $7, $8)",
        flow_id, user_id, "c" * 43 if pkce else None, "s256" if pkce else None, provider, created, referrer, False)
    return flow_id


def test_callback_flow_state_checks(shared, user):
    expired = _insert_flow(shared, age=timedelta(minutes=6))
    _, query, _ = _location(request(shared, "GET", f"/callback?state={expired}&code=x"), 303)
    assert query["error_code"] == ["bad_oauth_state"] and query["error_description"] == ["OAuth state has expired"]

    used = _insert_flow(shared, pkce=True, user_id=user["user"]["id"])
    _, query, _ = _location(request(shared, "GET", f"/callback?state={used}&code=x"), 303)
    assert query == {"error": ["invalid_request"], "error_code": ["flow_state_already_used"],
                     "error_description": ["State has already been used"]}


def test_callback_with_a_live_state_redirects_to_the_flow_target(shared):
    flow = _insert_flow(shared)
    resp = request(shared, "GET", f"/callback?state={flow}&code=abc")
    base, query, fragment = _location(resp, 302)
    assert base == "http://localhost:3000/welcome"
    assert query == {"tab": ["1"], "error": ["invalid_request"], "error_code": ["oauth_provider_not_supported"],
                     "error_description": ["Unsupported provider: provider is not enabled"]}
    # Go escapes the fragment a second time when it prints the URL (url.URL.EscapedFragment).
    assert fragment == ("error=invalid_request&error_code=oauth_provider_not_supported"
                        "&error_description=Unsupported+provider%253A+provider+is+not+enabled&sb=")

    # The provider's own error is passed on; a missing code is bad_oauth_callback.
    resp = request(shared, "GET", f"/callback?state={flow}&error=access_denied&error_description=User+said+no")
    _, query, fragment = _location(resp, 302)
    assert query == {"tab": ["1"], "error": ["access_denied"], "error_description": ["User said no"]}
    assert fragment == "error=access_denied&error_description=User+said+no&sb="
    resp = request(shared, "POST", "/callback", content=f"state={flow}".encode(),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    _, query, _ = _location(resp, 302)
    assert query["error_code"] == ["bad_oauth_callback"]
    assert query["error_description"] == ["OAuth callback with missing authorization code missing"]

    no_referrer = _insert_flow(shared, referrer=None)
    base, _, _ = _location(request(shared, "GET", f"/callback?state={no_referrer}&code=abc"), 302)
    assert base == "http://localhost:3000"


def test_identity_linking_route_needs_a_user_and_the_switch(shared, user):
    path = "/user/identities/authorize?provider=github&skip_http_redirect=true"
    assert_both_envelopes(shared, "GET", path, 401, "no_authorization", "This endpoint requires a valid Bearer token")
    assert_both_envelopes(shared, "GET", path, 404, "manual_linking_disabled", "Manual linking is disabled",
                          token=user["access_token"])
