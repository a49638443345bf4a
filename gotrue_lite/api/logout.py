"""POST /logout?scope=global|local|others."""

from __future__ import annotations

from aiohttp import web

from ..auth import sessions
from .middleware import authenticate, ctx_of


async def post_logout(request: web.Request) -> web.Response:
    # No body is read: auth-js sends a JSON content type with nothing behind it.
    user, session, _claims = await authenticate(request)
    scope = request.query.get("scope") or "global"
    await sessions.logout(ctx_of(request), user, session.id if session else None, scope)
    return web.Response(status=204)
