"""Auth hooks: the extension points of supabase/auth, over HTTP (Standard Webhooks) or a PostgreSQL function.

auth/ decides when a hook runs and what its answer means (auth/hook_points.py); this package
only delivers a payload to the configured URI and hands back the answer, or upstream's error.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from ..config import ConfigError, HookSettings
from ..errors import APIError, database_failure
from ..store import Executor
from ..store import hooks as hook_store
from ..store.base import StatementRefused
from .. import metrics
from . import http as http_hooks
from .answers import error_object

log = logging.getLogger("gotrue_lite.hooks")

# Setting names (GOTRUE_HOOK_<NAME>_*) and the names upstream puts in the payload's metadata.
NAMES = {
    "send_sms": "send-sms",
    "send_email": "send-email",
    "custom_access_token": "customize-access-token",
    "mfa_verification_attempt": "mfa-verification",
    "password_verification_attempt": "password-verification",
    "before_user_created": "before-user-created",
    "after_user_created": "after-user-created",
}

# upstream hookspgfunc: the function's statement_timeout.
PG_TIMEOUT_MS = 2000


def metadata(name: str, ip: str | None) -> dict[str, Any]:
    """The payload's `metadata` object (upstream v0hooks.Metadata)."""
    out: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "time": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "name": NAMES[name],
    }
    if ip:
        out["ip_address"] = ip
    return out


def shown(uri: str) -> str:
    """The URI as logs may show it: without user:password@ or a query (either may hold a key)."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def pg_function(uri: str) -> tuple[str, str]:
    """(schema, function) of a pg-functions://<db>/<schema>/<function> URI."""
    parts = urlsplit(uri).path.split("/")
    return parts[1], parts[2]


class Hooks:
    """The configured hooks of one server; `call` runs one and returns its raw answer."""

    def __init__(self, settings, http: aiohttp.ClientSession | None, db) -> None:
        self._hooks: dict[str, HookSettings] = settings.hooks
        self._http = http
        self._db = db

    def enabled(self, name: str) -> bool:
        hook = self._hooks.get(name)
        return bool(hook and hook.enabled and hook.uri)

    async def call(self, name: str, payload: dict[str, Any], tx: Executor | None = None) -> bytes | str | None:
        """Deliver `payload` to hook `name`. A PostgreSQL function runs inside `tx` when given
        (the request's transaction, as upstream), else in a transaction of its own."""
        hook = self._hooks[name]
        started = time.monotonic()
        try:
            answer = await self._dispatch(hook, payload, tx)
        except APIError as exc:
            metrics.count("hook_calls", hook=name, outcome="error")
            log.warning("hook %s (%s) errored out after %.0f ms: %s", name, shown(hook.uri),
                        (time.monotonic() - started) * 1000, exc.message)
            raise
        metrics.count("hook_calls", hook=name, outcome="ok")
        log.info("hook %s (%s) ran in %.0f ms", name, shown(hook.uri), (time.monotonic() - started) * 1000)
        return answer

    async def _dispatch(self, hook: HookSettings, payload: dict[str, Any], tx: Executor | None):
        scheme = urlsplit(hook.uri).scheme.lower()
        if scheme in ("http", "https"):
            if self._http is None:
                raise APIError(500, "unexpected_failure", f"Error running hook URI: {hook.uri}")
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
            return await http_hooks.call(self._http, hook.uri, hook.secrets, body)
        schema, function = pg_function(hook.uri)
        try:
            if tx is not None:
                answer = await hook_store.call_function(tx, schema, function, payload, PG_TIMEOUT_MS)
            else:
                async with self._db.transaction() as own:
                    answer = await hook_store.call_function(own, schema, function, payload, PG_TIMEOUT_MS)
        except StatementRefused as exc:
            # upstream wraps the Postgres error; its legacy envelope shows raised exceptions as is.
            log.error("hook function %s.%s failed: %s", schema, function, exc.message)
            raise database_failure(f"Error running hook URI: {hook.uri}", exc) from exc
        refused = error_object(answer)
        if refused is not None:
            raise refused
        return answer


def _function_hooks(settings) -> list[tuple[str, HookSettings]]:
    return [(name, hook) for name, hook in settings.hooks.items()
            if hook.enabled and hook.uri.lower().startswith("pg-functions:")]


async def check_functions(settings, db=None) -> None:
    """At start: every enabled pg-functions hook names a function that exists (upstream finds out
    at the first call; a typo is better caught before any user meets it). Without `db`, the
    database is opened for the check alone (serve checks before it migrates anything)."""
    hooks = _function_hooks(settings)
    if not hooks:
        return
    if db is None:
        from ..store import open_database

        own = await open_database(settings)
        try:
            return await check_functions(settings, own)
        finally:
            await own.close()
    for name, hook in hooks:
        env = f"GOTRUE_HOOK_{name.upper()}_URI"
        if db.dialect != "postgres":
            raise ConfigError(f"{env}: pg-functions:// hooks need a PostgreSQL database")
        schema, function = pg_function(hook.uri)
        if not await hook_store.function_exists(db, schema, function):
            raise ConfigError(f"{env}: no function {schema}.{function} in the database")
