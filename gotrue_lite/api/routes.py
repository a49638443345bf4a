"""The one table of routes."""

from __future__ import annotations

from aiohttp import web

from . import admin, devmail, email_flows, logout, settings, signup, token, user, verify


def add_routes(app: web.Application) -> None:
    app.router.add_routes([
        web.get("/health", settings.health),
        web.get("/settings", settings.settings),
        web.get("/.well-known/jwks.json", settings.jwks),
        web.post("/signup", signup.post_signup),
        web.post("/token", token.post_token),
        web.get("/user", user.get_user),
        web.put("/user", user.put_user),
        web.post("/logout", logout.post_logout),
        web.post("/verify", verify.post_verify),
        web.get("/verify", verify.get_verify),
        web.post("/otp", email_flows.post_otp),
        web.post("/magiclink", email_flows.post_magiclink),
        web.post("/recover", email_flows.post_recover),
        web.post("/resend", email_flows.post_resend),
        web.post("/invite", email_flows.post_invite),
        web.get("/reauthenticate", user.get_reauthenticate),
        web.get("/_dev/mail", devmail.list_json),
        web.get("/_dev/mail/", devmail.page),
        web.get("/_dev/mail.html", devmail.page),
    ])
    admin.add_routes(app)
