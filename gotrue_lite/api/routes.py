"""The one table of routes."""

from __future__ import annotations

from aiohttp import web

from . import logout, settings, signup, token, user


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
    ])
