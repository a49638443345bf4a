"""GET /authorize, GET|POST /callback and GET /user/identities/authorize: sign-in with external
OAuth providers and manual identity linking (upstream external.go, external_oauth.go, identity.go)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit, urlunsplit

from aiohttp import web

from .. import clock
from ..auth import external, pkce
from ..errors import APIError
from .middleware import authenticate, client, ctx_of, redirect_target

_OAUTH_ERRORS = {400: "invalid_request", 401: "unauthorized_client", 403: "access_denied",
                 500: "server_error", 503: "temporarily_unavailable"}
_ACCESS_DENIED = {"signup_disabled", "user_banned", "provider_email_needs_verification"}
_FRAGMENT_SAFE = "-_.~$&+,/:;=?@!()*"


def _redirect(location: str, status: int = 302) -> web.Response:
    # Set verbatim, as Go's http.Redirect does for an absolute URL (non-ASCII bytes %-escaped).
    escaped = "".join(c if c.isascii() else quote(c, safe="") for c in location)
    return web.Response(status=status, headers={"Location": escaped})


async def _start(request: web.Request, linking_target=None) -> str:
    query = request.query
    return await external.authorization_url(
        ctx_of(request), provider_name=query.get("provider", ""), scopes=query.get("scopes", ""),
        query=list(query.items()), referrer=redirect_target(request),
        code_challenge=query.get("code_challenge"), code_challenge_method=query.get("code_challenge_method"),
        invite_token=query.get("invite_token", ""), linking_target=linking_target)


async def get_authorize(request: web.Request) -> web.Response:
    """GET /authorize: always a 302 to the provider (errors are JSON)."""
    return _redirect(await _start(request))


async def get_link_identity(request: web.Request) -> web.Response:
    """GET /user/identities/authorize: the same round trip, linking to the signed-in user."""
    user, _, _ = await authenticate(request)
    if not ctx_of(request).settings.security.manual_linking_enabled:
        raise APIError(404, "manual_linking_disabled", "Manual linking is disabled")
    url = await _start(request, linking_target=user)
    if request.query.get("skip_http_redirect") == "true":
        return web.json_response({"url": url})
    return _redirect(url)


# --- /callback ------------------------------------------------------------------------------


def _go_query(query: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        values.setdefault(key, []).append(value)
    return values


def _go_encode(values: dict[str, list[str]]) -> str:
    """url.Values.Encode: keys sorted, QueryEscape'd."""
    return "&".join(f"{quote_plus(k, safe='')}={quote_plus(v, safe='')}"
                    for k in sorted(values) for v in values[k])


def _error_values(error: APIError | external.OAuthError, query: str) -> dict[str, list[str]]:
    """getErrorQueryString: the target's own query plus error, error_code, error_description."""
    values = _go_query(query)
    if isinstance(error, APIError):
        if error.error_code in _ACCESS_DENIED:
            kind = "access_denied"
        else:
            kind = _OAUTH_ERRORS.get(error.status, "server_error")
        values["error"] = [kind]
        values["error_description"] = [error.message]
        values["error_code"] = [error.error_code]
    else:  # an OAuth error: the provider's own, or a wrapped failure; no error_code
        values["error"] = [error.error]
        values["error_description"] = [error.description]
    return values


def _with_query(target: str, query: str, fragment: str | None = None) -> str:
    parts = urlsplit(target)
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    if fragment is not None:
        # Go escapes url.URL.Fragment again when printing it (EscapedFragment).
        url += "#" + quote(fragment, safe=_FRAGMENT_SAFE)
    return url


def _state_error_redirect(request: web.Request, error: APIError) -> web.Response:
    """loadFlowState failures: 303 to SITE_URL with the error in the query only."""
    site = ctx_of(request).settings.site_url
    values = _error_values(error, urlsplit(site).query)
    return web.Response(status=303, headers={"Location": _with_query(site, _go_encode(values))})


def _error_redirect(target: str, error: APIError | external.OAuthError) -> web.Response:
    """redirectErrors: 302 to the target, the error in its query and (non-empty parts) fragment."""
    values = _error_values(error, urlsplit(target).query)
    fragment: dict[str, list[str]] = {}
    for key in ("error", "error_description", "error_code"):
        if values.get(key, [""])[0]:
            fragment[key] = [values[key][0]]
    fragment["sb"] = [""]
    return web.Response(status=302, headers={"Location": _with_query(target, _go_encode(values), _go_encode(fragment))})


async def _callback_params(request: web.Request) -> dict[str, str]:
    """r.Form for POST (form body first, then the query), else the query."""
    values = {k: v for k, v in request.query.items()}
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        form = _go_query((await request.read()).decode("utf-8", "replace"))
        for key, found in form.items():
            values[key] = found[0]
    return values


def _canonical_uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return None


async def callback(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    params = await _callback_params(request)
    state = params.get("state", "") if request.method == "POST" else request.query.get("state", "")
    if not state:
        return _state_error_redirect(request, APIError(400, "bad_oauth_callback", "OAuth state parameter missing"))
    flow_id = _canonical_uuid(state)
    if flow_id is None:
        return _state_error_redirect(request, APIError(400, "bad_oauth_state", "OAuth state parameter is invalid"))
    flow = await pkce.callback_flow(ctx, flow_id)
    if flow is None:
        return _state_error_redirect(request, APIError(400, "bad_oauth_state", "OAuth state not found or expired"))
    started: datetime | None = flow["created_at"]
    if flow["auth_code_issued_at"] is not None and flow["authentication_method"] == "magiclink":
        started = flow["auth_code_issued_at"]
    if started is None or clock.now() > started + ctx.settings.external.flow_state_expiry_duration:
        return _state_error_redirect(request, APIError(400, "bad_oauth_state", "OAuth state has expired"))
    if flow["code_challenge"] and flow["user_id"] is not None:
        return _state_error_redirect(request, APIError(400, "flow_state_already_used", "State has already been used"))
    if flow["linking_target_missing"]:
        return _state_error_redirect(request, APIError(422, "user_not_found", "Linking target user not found"))

    # internalExternalProviderCallback, wrapped in redirectErrors: 302 to the flow's target.
    try:
        location = await external.finish(ctx, client(request), flow, params)
    except (APIError, external.OAuthError) as error:
        return _error_redirect(external.target_of(ctx, flow), error)
    return _redirect(location)


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/authorize", get_authorize),
    ("GET", "/callback", callback),
    ("POST", "/callback", callback),
    ("GET", "/user/identities/authorize", get_link_identity),
]
