"""Builds the aiohttp application: middlewares, routes, and the database for its lifetime."""

from __future__ import annotations

import logging

from aiohttp import web

from . import telemetry
from .api.captcha import captcha_after_limits, captcha_before_limits
from .api.middleware import CTX, cors, errors, request_id
from .api.observe import observe
from .api.params import MAX_BODY
from .api.ratelimit import RATE_LIMITS, rate_limit
from .api.routes import add_routes
from .auth import Context
from .auth.cleanup import Cleanup
from .auth.recent_users import RecentUsers
from .config import ConfigError
from .hooks import Hooks, check_functions
from .mail import MAILER, Mailer
from .outbound import new_client
from .providers.oidc import OIDCCache
from .ratelimit import EndpointLimits, SendBudget, SignInGuard, UsedSteps
from .sms.factory import build as build_sms
from .store import Database, open_database
from .store.migrate import apply_migrations
from .tokens import KeySet

log = logging.getLogger("gotrue_lite")

MAX_HEADER = 1024 * 1024
CLEANUP = web.AppKey("cleanup", object)  # the housekeeping task, None when switched off


def build_keys(settings) -> KeySet:
    jwt = settings.jwt
    if not jwt.secret and not jwt.keys:
        raise ConfigError("GOTRUE_JWT_SECRET: no JWT secret or GOTRUE_JWT_KEYS configured")
    return KeySet(jwt.secret, jwt.key_id, jwt.keys, jwt.valid_methods, require_exp=settings.lite.require_exp)


def create_app(settings, db: Database | None = None) -> web.Application:
    """The server for `settings`; opens (and migrates) the database at start-up unless given one."""
    keys = build_keys(settings)
    tracing = telemetry.start_tracing(settings)
    # The span and the log line wrap everything else, so they see the status the client gets.
    observing = [telemetry.trace_middleware(tracing), observe] if tracing else [observe]
    app = web.Application(
        # Upstream checks captchas on some routes before their per-IP limit, on others after it.
        middlewares=[request_id, *observing, cors, errors, captcha_before_limits, rate_limit, captcha_after_limits],
        client_max_size=MAX_BODY,
        # Access tokens carry the user's metadata; Go accepts 1 MiB of headers, so a user with a
        # few KB of metadata must not get tokens this server then refuses to read.
        handler_args={"max_field_size": MAX_HEADER, "max_line_size": MAX_HEADER},
    )
    app[RATE_LIMITS] = EndpointLimits(settings)  # per-IP buckets, process-local like upstream's
    signin_guard = SignInGuard(settings.lite.signin_failure_limit)
    mailer = Mailer(settings)
    app[MAILER] = mailer

    async def lifetime(app: web.Application):
        opened = db
        if opened is None:
            opened = await open_database(settings)
            await apply_migrations(opened)
        await check_functions(settings, opened)
        async with telemetry.metrics_running(settings, opened):
            database = telemetry.traced(opened, tracing)  # unchanged unless tracing is on
            http = new_client(settings.lite.extra_ca_file)
            mailer.db = database
            mailer.use_http(http)
            await mailer.start()
            app[CTX] = Context(settings=settings, db=database, keys=keys, mailer=mailer,
                               email_budget=SendBudget(settings.rate_limit.email_sent),
                               signin_guard=signin_guard,
                               recent_users=RecentUsers(database, settings.lite.user_cache_ttl.total_seconds()),
                               http=http, sms=build_sms(settings, http, mailer.dev_box),
                               sms_budget=SendBudget(settings.rate_limit.sms_sent),
                               used_totp_steps=UsedSteps(), hooks=Hooks(settings, http, database),
                               oidc=OIDCCache(http, settings.external.oidc_provider_cache_ttl))
            cleanup = Cleanup(settings, database) if settings.db.cleanup_enabled else None
            if cleanup is not None:
                cleanup.start()  # in the background: requests never wait for it
            app[CLEANUP] = cleanup
            yield
            if cleanup is not None:
                await cleanup.stop()  # before the database closes under it
            await mailer.close()  # finishes pending dev-mailbox writes, which need the database
            await http.close()
        if tracing is not None:
            tracing.close()  # exports the spans still batched
        await opened.close()

    app.cleanup_ctx.append(lifetime)
    add_routes(app)
    return app
