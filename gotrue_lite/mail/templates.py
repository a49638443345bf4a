"""Mail subjects and bodies: the shipped Jinja defaults, custom templates and their cache."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

import aiohttp
import jinja2
from jinja2.sandbox import SandboxedEnvironment

from .. import clock
from ..resources import templates_dir
from .gotemplate import ROOT, GoTemplateError, go_to_jinja
from .links import html_to_text

log = logging.getLogger("gotrue_lite.mail")

LINK_KINDS = ("invite", "confirmation", "recovery", "magic_link", "email_change")
NOTIFICATION_KINDS = (
    "password_changed_notification", "email_changed_notification", "phone_changed_notification",
    "identity_linked_notification", "identity_unlinked_notification",
    "mfa_factor_enrolled_notification", "mfa_factor_unenrolled_notification",
)
KINDS = LINK_KINDS + ("reauthentication",) + NOTIFICATION_KINDS

# SESSIONS.md §8.1; Jinja, like the shipped bodies.
DEFAULT_SUBJECTS = {
    "invite": "You've been invited",
    "confirmation": "Confirm your email address",
    "recovery": "Reset your password",
    "magic_link": "Your sign-in link",
    "email_change": "Confirm your new email address",
    "reauthentication": "{{ Token }} is your verification code",
    "password_changed_notification": "Your password was changed",
    "email_changed_notification": "Your email address was changed",
    "phone_changed_notification": "Your phone number was changed",
    "identity_linked_notification": "A new sign-in method was linked to your account",
    "identity_unlinked_notification": "A sign-in method was removed from your account",
    "mfa_factor_enrolled_notification": "A new verification method was added to your account",
    "mfa_factor_unenrolled_notification": "A verification method was removed from your account",
}

FETCH_TIMEOUT = 10.0  # seconds, as upstream
_NATIVE_SUFFIXES = (".j2", ".jinja", ".jinja2")


def _go_print(value: Any) -> Any:
    # Printed the way Go prints them: true/false, and nothing for a missing (nil) value.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _go_range(value: Any) -> Any:
    # Go ranges over a map's values in key order, and over an integer n as 0…n-1.
    if isinstance(value, dict):
        return [value[key] for key in sorted(value)]
    if isinstance(value, bool) or value is None or isinstance(value, jinja2.Undefined):
        return []
    if isinstance(value, int):
        return range(value)
    if isinstance(value, (list, tuple)):
        return value
    raise TypeError(f"cannot range over {type(value).__name__}")


class _CustomEnvironment(SandboxedEnvironment):
    """Sandboxed, since fetched templates come from elsewhere. Go's `.Key` on a map is a key
    lookup only: without this, `.Data.items` would fall back to the dict method `items`."""

    def getitem(self, obj: Any, argument: Any) -> Any:
        try:
            return obj[argument]
        except (TypeError, LookupError):
            return self.undefined(obj=obj, name=argument)


def _setup(env: jinja2.Environment) -> jinja2.Environment:
    env.filters["go_range"] = _go_range
    return env


def _custom_env(autoescape: bool) -> jinja2.Environment:
    return _setup(_CustomEnvironment(
        autoescape=autoescape, undefined=jinja2.ChainableUndefined, finalize=_go_print,
        keep_trailing_newline=True, auto_reload=False,
    ))


def _read_defaults() -> jinja2.Environment:
    """The shipped templates, read and compiled once (in a worker thread)."""
    folder = templates_dir()
    sources = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()
               if p.suffix in (".html", ".txt", ".j2") and p.is_file()}
    missing = [f"{kind}.{ext}" for kind in KINDS for ext in ("html", "txt") if f"{kind}.{ext}" not in sources]
    if missing:
        raise RuntimeError(f"mail templates missing from {folder}: {', '.join(missing)}")
    env = _setup(jinja2.Environment(
        loader=jinja2.DictLoader(sources), undefined=jinja2.ChainableUndefined, finalize=_go_print,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        auto_reload=False,
    ))
    for name in sources:
        env.get_template(name)  # compile now, so rendering never touches the loader again
    return env


def _one_line(subject: str) -> str:
    # A subject is a header: a template that renders a newline must not start a new header.
    return re.sub(r"\s*[\r\n]+\s*", " ", subject).strip()


@dataclass(frozen=True)
class _Entry:
    created_at: datetime
    checked_at: datetime
    body: jinja2.Template | None  # None: the default body serves (the custom one never loaded)


class _LoadError(Exception):
    pass


class Templates:
    """Renders (subject, text, html) for a mail kind; owns the cache of custom bodies."""

    def __init__(self, settings, session: Callable[[], aiohttp.ClientSession]) -> None:
        self._settings = settings
        self._session = session
        self._defaults: jinja2.Environment | None = None
        self._defaults_lock = asyncio.Lock()
        self._html_env = _custom_env(autoescape=True)
        self._text_env = _custom_env(autoescape=False)
        plain = _setup(jinja2.Environment(undefined=jinja2.ChainableUndefined, finalize=_go_print))
        self._default_subjects = {kind: plain.from_string(text) for kind, text in DEFAULT_SUBJECTS.items()}
        self._subjects = {kind: self._compile_subject(kind) for kind in KINDS}
        self._entries: dict[str, _Entry] = {}
        self._loading: dict[str, asyncio.Future] = {}

    # -- subjects ---------------------------------------------------------------------------

    def _compile_subject(self, kind: str) -> jinja2.Template | None:
        source = self._settings.mailer.subjects.get(kind, "")
        if not source:
            return None
        try:
            return self._text_env.from_string(go_to_jinja(source))
        except (GoTemplateError, jinja2.TemplateError) as exc:
            log.warning("GOTRUE_MAILER_SUBJECTS_%s: %s; using the default subject", kind.upper(), exc)
            return None

    def _subject(self, kind: str, variables: dict) -> str:
        custom = self._subjects[kind]
        if custom is not None:
            try:
                return _one_line(custom.render({**variables, ROOT: variables}))
            except Exception as exc:  # noqa: BLE001 - any template failure falls back
                log.warning("GOTRUE_MAILER_SUBJECTS_%s failed to render: %s; using the default subject",
                            kind.upper(), exc)
        return _one_line(self._default_subjects[kind].render(variables))

    # -- bodies -----------------------------------------------------------------------------

    async def load_defaults(self) -> jinja2.Environment:
        if self._defaults is None:
            async with self._defaults_lock:
                if self._defaults is None:
                    self._defaults = await asyncio.to_thread(_read_defaults)
        return self._defaults

    async def render(self, kind: str, variables: dict, recipient: str) -> tuple[str, str, str]:
        """(subject, text, html) for one mail."""
        if kind not in DEFAULT_SUBJECTS:
            raise ValueError(f"unknown mail kind {kind!r}")
        defaults = await self.load_defaults()
        subject = self._subject(kind, variables)
        if self._settings.mailer.templates.get(kind):
            entry = await self._entry(kind)
            if entry.body is not None:
                try:
                    html = entry.body.render({**variables, ROOT: variables})
                    return subject, html_to_text(html), html
                except Exception as exc:  # noqa: BLE001 - any template failure falls back
                    log.warning("GOTRUE_MAILER_TEMPLATES_%s failed to render: %s; using the default template",
                                kind.upper(), exc)
        context = {**variables, "_recipient": recipient}
        html = defaults.get_template(f"{kind}.html").render(context)
        text = defaults.get_template(f"{kind}.txt").render(context)
        return subject, text.strip() + "\n", html

    async def _entry(self, kind: str) -> _Entry:
        # SESSIONS.md §8.4: fresh for max_age; once stale, re-fetched at most every
        # retry_interval while the old copy keeps serving. gotrue-lite refreshes off the request
        # path: a stale copy answers at once and the fetch runs in the background; only a kind
        # never loaded before (start() prefetches them all) waits for its first fetch.
        now = clock.now()
        entry = self._entries.get(kind)
        mailer = self._settings.mailer
        if entry is not None and (now - entry.created_at < mailer.template_max_age
                                  or now - entry.checked_at < mailer.template_retry_interval):
            return entry
        pending = self._start_refresh(kind, entry)
        if entry is not None:
            return entry
        # Shielded: one impatient request being cancelled must not cancel the shared fetch.
        return await asyncio.shield(pending)

    def _start_refresh(self, kind: str, entry: _Entry | None) -> asyncio.Future:
        pending = self._loading.get(kind)
        if pending is None:
            pending = asyncio.ensure_future(self._refresh(kind, entry))
            self._loading[kind] = pending
            pending.add_done_callback(lambda done: self._loading.pop(kind, None)
                                      if self._loading.get(kind) is done else None)
        return pending

    def prefetch(self) -> None:
        """Start loading every configured custom body in the background."""
        for kind, value in self._settings.mailer.templates.items():
            if value and kind in DEFAULT_SUBJECTS and kind not in self._entries:
                self._start_refresh(kind, None)

    async def settled(self) -> None:
        """Wait for the background fetches under way."""
        while self._loading:
            await asyncio.gather(*list(self._loading.values()), return_exceptions=True)

    async def cancel(self) -> None:
        """Stop the background fetches (shutdown must not wait for a slow template host)."""
        pending = list(self._loading.values())
        for future in pending:
            future.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _refresh(self, kind: str, current: _Entry | None) -> _Entry:
        setting = f"GOTRUE_MAILER_TEMPLATES_{kind.upper()}"
        try:
            source, native, where = await self._read(self._settings.mailer.templates[kind])
            body = await asyncio.to_thread(self._compile_body, source, native)
            entry = _Entry(clock.now(), clock.now(), body)
            log.debug("%s: loaded %s", setting, where)
        except Exception as exc:  # noqa: BLE001 - a template problem must never fail a send
            now = clock.now()
            if current is not None:
                log.warning("%s: %s; keeping the copy loaded at %s", setting, exc,
                            current.created_at.isoformat(timespec="seconds"))
                entry = dataclasses.replace(current, checked_at=now)
            else:
                log.warning("%s: %s; using the default template", setting, exc)
                entry = _Entry(now, now, None)
        self._entries[kind] = entry
        return entry

    def _compile_body(self, source: str, native: bool) -> jinja2.Template:
        try:
            return self._html_env.from_string(source if native else go_to_jinja(source))
        except GoTemplateError as exc:
            raise _LoadError(f"cannot translate the Go template: {exc}") from None
        except jinja2.TemplateSyntaxError as exc:
            raise _LoadError(f"template syntax error on line {exc.lineno}: {exc.message}") from None

    async def _read(self, value: str) -> tuple[str, bool, str]:
        """(template text, is native Jinja, where it came from) for a MAILER_TEMPLATES_* value."""
        limit = max(self._settings.mailer.template_max_size, 0)
        path = _local_path(value)
        if path is not None and (value.startswith("file:") or await asyncio.to_thread(path.is_file)):
            try:
                data = await asyncio.to_thread(_read_file, path, limit)
            except OSError as exc:
                raise _LoadError(f"cannot read {path}: {exc.strerror or exc}") from None
            return data.decode("utf-8", "replace"), path.suffix in _NATIVE_SUFFIXES, str(path)
        # Upstream: a value not starting with "http" is appended to SITE_URL as text.
        url = value if value.startswith("http") else self._settings.site_url + value
        note = " (no such local file either)" if path is not None else ""
        data = await self._fetch(url, limit, note)
        return data.decode("utf-8", "replace"), False, url

    async def _fetch(self, url: str, limit: int, note: str) -> bytes:
        try:
            async with self._session().get(url, timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT)) as resp:
                if resp.status != 200:
                    raise _LoadError(f"GET {url}: status {resp.status}{note}")
                data = bytearray()
                # A longer body is cut at the limit, not refused (upstream's LimitReader).
                while len(data) < limit:
                    chunk = await resp.content.read(limit - len(data))
                    if not chunk:
                        break
                    data += chunk
                return bytes(data)
        except _LoadError:
            raise
        except asyncio.TimeoutError:
            raise _LoadError(f"GET {url}: no answer within {FETCH_TIMEOUT:g} s{note}") from None
        except (aiohttp.ClientError, ValueError, OSError) as exc:
            raise _LoadError(f"GET {url}: {exc.__class__.__name__}: {exc}{note}") from None


def _local_path(value: str) -> Path | None:
    """The file a template value names: `file:<path>`, `file:///abs`, or an absolute path."""
    if value.startswith("file:"):
        rest = value[len("file:"):]
        if rest.startswith("//"):
            rest = unquote(urlsplit(value).path)
        return Path(rest).expanduser()
    if not value.startswith("http") and os.path.isabs(value):
        return Path(value)
    return None


def _read_file(path: Path, limit: int) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(limit)
