"""The one table of routes, served at the root and under /auth/v1 (where supabase-js looks)."""

from __future__ import annotations

from aiohttp import web

from . import admin, devmail, email_flows, logout, mfa, settings, signup, token, unavailable, user, verify

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
    *mfa.ROUTES,
    *admin.ROUTES,
    *unavailable.ROUTES,
]

# The dev mailbox is a local page, not part of the GoTrue API (served under both prefixes too,
# so that a URL built from supabase-js's base finds it).
DEV_ROUTES = [
    ("GET", "/_dev/mail", devmail.list_json),
    ("GET", "/_dev/mail/", devmail.page),
    ("GET", "/_dev/mail.html", devmail.page),
]

# supabase-js's createClient(url) calls url/auth/v1/…, which a Supabase gateway strips.
PREFIXES = ("", "/auth/v1")


def add_routes(app: web.Application) -> None:
    for prefix in PREFIXES:
        for method, path, handler in (*ROUTES, *DEV_ROUTES):
            app.router.add_route(method, prefix + path, handler)
