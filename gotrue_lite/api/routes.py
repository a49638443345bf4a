"""The one table of routes, served at the root and under /auth/v1 (where supabase-js looks)."""

from __future__ import annotations

import re

from aiohttp import web

from . import (admin, custom_providers, devmail, devwelcome, email_flows, external, logout, mfa, settings, signup, token,
               unavailable, user, verify)

ROUTES = [
    ("GET", "/health", settings.health),
    ("GET", "/settings", settings.settings),
    ("GET", "/.well-known/jwks.json", settings.jwks),
    ("POST", "/signup", signup.post_signup),
    ("POST", "/token", token.post_token),
    ("GET", "/user", user.get_user),
    ("PUT", "/user", user.put_user),
    ("POST", "/logout", logout.post_logout),
    ("POST", "/verify", verify.post_verify),
    ("GET", "/verify", verify.get_verify),
    ("POST", "/otp", email_flows.post_otp),
    ("POST", "/magiclink", email_flows.post_magiclink),
    ("POST", "/recover", email_flows.post_recover),
    ("POST", "/resend", email_flows.post_resend),
    ("POST", "/invite", email_flows.post_invite),
    ("GET", "/reauthenticate", user.get_reauthenticate),
    ("DELETE", "/user/identities/{identity_id}", user.delete_identity),
    *mfa.ROUTES,
    *admin.ROUTES,
    *custom_providers.ROUTES,
    *external.ROUTES,
    *unavailable.ROUTES,
]

# The dev mailbox is a local page, not part of the GoTrue API (served under both prefixes too,
# so that a URL built from supabase-js's base finds it).
DEV_ROUTES = [
    ("GET", "/_dev/mail", devmail.list_json),
    ("GET", "/_dev/mail/", devmail.page),
    ("GET", "/_dev/mail.html", devmail.page),
    ("GET", "/_dev/welcome", devwelcome.page),  # SITE_URL's development default
]

# supabase-js's createClient(url) calls url/auth/v1/…, which a Supabase gateway strips.
PREFIXES = ("", "/auth/v1")


def add_routes(app: web.Application) -> None:
    for prefix in PREFIXES:
        for method, path, handler in (*ROUTES, *DEV_ROUTES):
            app.router.add_route(method, prefix + path, handler)


_PARAMETER = re.compile(r"\{[^}]*\}")
_PREFIXES = tuple(prefix for prefix in PREFIXES if prefix)


def route_key(request: web.Request) -> tuple[str, str] | None:
    """(method, route pattern without the /auth/v1 prefix, path parameters written {}), by which
    per-route middlewares (rate limits, captcha) look a request up; None when no route matched."""
    resource = request.match_info.route.resource
    if resource is None:  # no route matched: 404 / 405
        return None
    pattern = resource.canonical
    for prefix in _PREFIXES:
        if pattern.startswith(prefix + "/"):
            pattern = pattern[len(prefix):]
            break
    return request.method, _PARAMETER.sub("{}", pattern)


def route_template(request: web.Request) -> str:
    """The matched route as upstream's router names it (e.g. /admin/users/{user_id}), without the
    /auth/v1 prefix; "noroute" when none matched. Labels metrics and traces: never a raw path,
    which would put ids (and one label per user) into them."""
    resource = request.match_info.route.resource
    if resource is None:
        return "noroute"
    pattern = resource.canonical
    for prefix in _PREFIXES:
        if pattern.startswith(prefix + "/"):
            return pattern[len(prefix):]
    return pattern
