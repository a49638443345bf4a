"""Tests for gotrue_lite.mail: links, templates, custom templates, SMTP delivery and the dev mailbox."""

from __future__ import annotations

import asyncio
import datetime
import email
import ipaddress
import logging
import socket
import sqlite3
import ssl
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from gotrue_lite import clock
from gotrue_lite.config import load_settings
from gotrue_lite.mail import MAILER, KINDS, Mailer, MailError, action_link, extract_links
from gotrue_lite.mail import smtp as mail_smtp
from gotrue_lite.mail.gotemplate import GoTemplateError, go_to_jinja
from gotrue_lite.mail.links import html_to_text
from gotrue_lite.store import dev_mail, open_database
from gotrue_lite.store.migrate import apply_migrations

SMTP_USER, SMTP_PASS = "mailer", "s3cret-Pa55word"
TO = "ann@example.com"


def run(coro):
    return asyncio.run(coro)


def make_settings(tmp_path: Path, **env: str):
    base = {
        "GOTRUE_SITE_URL": "http://localhost:3000",
        "API_EXTERNAL_URL": "http://localhost:9999",
        "GOTRUE_JWT_SECRET": "test-secret-0123456789abcdefghijklmnopqr",
    }
    return load_settings(environ={**base, **env}, dotenv=False, cwd=tmp_path)


@pytest.fixture(autouse=True)
def _restore_clock(monkeypatch):
    monkeypatch.setattr(clock, "offset", timedelta(0))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def link_variables(url: str = "http://localhost:9999/verify?token=pkce_abc&type=signup&redirect_to=http://localhost:3000",
                   **extra: Any) -> dict:
    return {"ConfirmationURL": url, "Token": "123456", "TokenHash": "pkce_abc", "Email": TO,
            "RedirectTo": "http://localhost:3000", "Data": {}, **extra}


# --- action_link (SESSIONS.md §8.3) -------------------------------------------------------


def test_action_link_default_path_and_query(tmp_path):
    s = make_settings(tmp_path)
    assert action_link(s, "confirmation", "pkce_3f1ce9", "signup", "http://localhost:3000") == (
        "http://localhost:9999/verify?token=pkce_3f1ce9&type=signup&redirect_to=http://localhost:3000")


def test_action_link_absolute_path_replaces_the_base_path(tmp_path):
    s = make_settings(tmp_path, API_EXTERNAL_URL="https://x.example/auth/v1")
    assert action_link(s, "recovery", "t", "recovery", "https://app.example").startswith("https://x.example/verify?")
    s = make_settings(tmp_path, API_EXTERNAL_URL="https://x.example/auth/v1",
                      GOTRUE_MAILER_URLPATHS_RECOVERY="/auth/v1/verify")
    assert action_link(s, "recovery", "t", "recovery", "r").startswith("https://x.example/auth/v1/verify?token=t&")


def test_action_link_relative_and_full_url_paths(tmp_path):
    s = make_settings(tmp_path, API_EXTERNAL_URL="https://x.example/auth/v1",
                      GOTRUE_MAILER_URLPATHS_INVITE="verify",
                      GOTRUE_MAILER_URLPATHS_EMAIL_CHANGE="https://other.example/confirm?old=1#frag")
    assert action_link(s, "invite", "t", "invite", "r") == "https://x.example/auth/verify?token=t&type=invite&redirect_to=r"
    # A full URL replaces everything; its own query gives way to ours, its fragment stays.
    assert action_link(s, "email_change", "t", "email_change", "r") == (
        "https://other.example/confirm?token=t&type=email_change&redirect_to=r#frag")


def test_action_link_kinds_use_their_urlpaths(tmp_path):
    s = make_settings(tmp_path, GOTRUE_MAILER_URLPATHS_INVITE="/i", GOTRUE_MAILER_URLPATHS_CONFIRMATION="/c",
                      GOTRUE_MAILER_URLPATHS_RECOVERY="/r", GOTRUE_MAILER_URLPATHS_EMAIL_CHANGE="/e",
                      GOTRUE_MAILER_URLPATHS_MAGIC_LINK="/never-used")
    paths = {kind: action_link(s, kind, "t", "x", "r").split("?")[0]
             for kind in ("invite", "confirmation", "recovery", "magic_link", "email_change")}
    assert paths == {"invite": "http://localhost:9999/i", "confirmation": "http://localhost:9999/c",
                     "recovery": "http://localhost:9999/r", "magic_link": "http://localhost:9999/r",
                     "email_change": "http://localhost:9999/e"}
    assert "type=magiclink" in action_link(s, "magic_link", "t", "magiclink", "r")
    with pytest.raises(ValueError):
        action_link(s, "reauthentication", "t", "x", "r")


@pytest.mark.parametrize("redirect_to, expected", [
    ("http://localhost:3000/welcome", "http://localhost:3000/welcome"),
    ("http://localhost:3000/cb?next=/home", "http%3A%2F%2Flocalhost%3A3000%2Fcb%3Fnext%3D%2Fhome"),
    ("http://localhost:3000/a?x&y", "http%3A%2F%2Flocalhost%3A3000%2Fa%3Fx%26y"),
    ("http://localhost:3000/#/route", "http%3A%2F%2Flocalhost%3A3000%2F%23%2Froute"),
    ("http%3A%2F%2Falready.escaped", "http%3A%2F%2Falready.escaped"),
    ("http://localhost:3000/with space?", "http://localhost:3000/with space?"),
    ("", ""),
])
def test_action_link_escapes_redirect_to_only_with_ampersand_equals_or_hash(tmp_path, redirect_to, expected):
    link = action_link(make_settings(tmp_path), "confirmation", "t", "signup", redirect_to)
    assert link.endswith("&redirect_to=" + expected)


def test_action_link_query_escapes_token_and_type_and_takes_a_base_url(tmp_path):
    s = make_settings(tmp_path)
    link = action_link(s, "recovery", "a+b/c d", "recovery", "r", base_url="https://mail.example:8443/auth/")
    assert link == "https://mail.example:8443/verify?token=a%2Bb%2Fc+d&type=recovery&redirect_to=r"


# --- default templates ---------------------------------------------------------------------

NOTIFICATION_VALUES = {
    "password_changed_notification": {},
    "email_changed_notification": {"OldEmail": "old@example.com"},
    "phone_changed_notification": {"Phone": "+15550001111", "OldPhone": "+15559998888"},
    "identity_linked_notification": {"Provider": "github"},
    "identity_unlinked_notification": {"Provider": "gitlab"},
    "mfa_factor_enrolled_notification": {"FactorType": "totp"},
    "mfa_factor_unenrolled_notification": {"FactorType": "phone"},
}
DEFAULT_SUBJECTS = {
    "invite": "You've been invited",
    "confirmation": "Confirm your email address",
    "recovery": "Reset your password",
    "magic_link": "Your sign-in link",
    "email_change": "Confirm your new email address",
    "reauthentication": "123456 is your verification code",
    "password_changed_notification": "Your password was changed",
    "email_changed_notification": "Your email address was changed",
    "phone_changed_notification": "Your phone number was changed",
    "identity_linked_notification": "A new sign-in method was linked to your account",
    "identity_unlinked_notification": "A sign-in method was removed from your account",
    "mfa_factor_enrolled_notification": "A new verification method was added to your account",
    "mfa_factor_unenrolled_notification": "A verification method was removed from your account",
}


@pytest.mark.parametrize("kind", ["invite", "confirmation", "recovery", "magic_link", "email_change"])
def test_link_mails_carry_the_confirmation_url(tmp_path, kind):
    url = "http://localhost:9999/verify?token=pkce_9f&type=x&redirect_to=http%3A%2F%2Fapp%2F%3Fa%3Db"
    variables = link_variables(url, NewEmail="new@example.com", SendingTo="new@example.com")
    message = run(Mailer(make_settings(tmp_path)).render(kind, TO, variables))
    assert message.kind == kind and message.to == TO
    assert message.subject == DEFAULT_SUBJECTS[kind]
    assert url in message.text
    assert url.replace("&", "&amp;") in message.html and url not in message.html
    assert extract_links(message.html, message.text) == [url]
    # one mail carries both the link and the code, for users who type the code instead
    assert "123456" in message.html and "123456" in message.text
    if kind == "email_change":
        assert "new@example.com" in message.html and "new@example.com" in message.text


def test_reauthentication_mail_shows_the_code_without_links(tmp_path):
    message = run(Mailer(make_settings(tmp_path)).render("reauthentication", TO, {"Token": "123456", "Email": TO}))
    assert message.subject == "123456 is your verification code"
    assert "123456" in message.text and "123456" in message.html
    assert extract_links(message.html, message.text) == []


@pytest.mark.parametrize("kind", sorted(NOTIFICATION_VALUES))
def test_notification_mails_say_what_changed(tmp_path, kind):
    values = {"Email": TO, "Data": {}, **NOTIFICATION_VALUES[kind]}
    message = run(Mailer(make_settings(tmp_path)).render(kind, TO, values))
    assert message.subject == DEFAULT_SUBJECTS[kind]
    for value in values.values():
        if isinstance(value, str):
            assert value in message.html and value in message.text
    assert "support" in message.text


def test_every_kind_has_both_parts(tmp_path):
    mailer = Mailer(make_settings(tmp_path))
    for kind in KINDS:
        message = run(mailer.render(kind, TO, link_variables(NewEmail="n@example.com", **NOTIFICATION_VALUES.get(kind, {}))))
        assert message.subject == DEFAULT_SUBJECTS[kind], kind
        assert message.text.strip() and "<" not in message.text.split("\n")[0], kind
        assert message.html.lstrip().startswith("<!DOCTYPE html>"), kind
        assert "{{" not in message.html + message.text + message.subject, kind


def test_html_is_escaped_but_text_and_subject_are_not(tmp_path):
    s = make_settings(tmp_path, GOTRUE_MAILER_SUBJECTS_EMAIL_CHANGE="Tom & Jerry: {{ .NewEmail }}")
    variables = link_variables(NewEmail="<b>x</b>@example.com")
    message = run(Mailer(s).render("email_change", TO, variables))
    assert "&lt;b&gt;x&lt;/b&gt;@example.com" in message.html and "<b>x</b>" not in message.html
    assert "<b>x</b>@example.com" in message.text
    assert message.subject == "Tom & Jerry: <b>x</b>@example.com"


def test_custom_subject_is_a_go_template_and_site_url_is_filled_in(tmp_path):
    s = make_settings(tmp_path, GOTRUE_MAILER_SUBJECTS_MAGIC_LINK="Sign in to {{ .SiteURL }}{{ if .Data.name }}, {{ .Data.name }}{{ end }}",
                      GOTRUE_MAILER_SUBJECTS_RECOVERY="line one\nline two")
    mailer = Mailer(s)
    assert run(mailer.render("magic_link", TO, link_variables(Data={"name": "Ann"}))).subject == (
        "Sign in to http://localhost:3000, Ann")
    # A subject is one header line, whatever the template renders.
    assert run(mailer.render("recovery", TO, link_variables())).subject == "line one line two"


def test_broken_custom_subject_falls_back_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="gotrue_lite.mail"):
        s = make_settings(tmp_path, GOTRUE_MAILER_SUBJECTS_CONFIRMATION="{{ printf \"%s\" .Email }}")
        message = run(Mailer(s).render("confirmation", TO, link_variables()))
    assert message.subject == "Confirm your email address"
    assert "GOTRUE_MAILER_SUBJECTS_CONFIRMATION" in caplog.text and "printf" in caplog.text


# --- Go template translation -------------------------------------------------------------

GO_TEMPLATE = """<h2>Hello {{ if .Data.name }}{{ .Data.name }}{{ else }}there{{ end }}</h2>
{{/* a comment */}}
<p><a href="{{ .ConfirmationURL }}">Confirm {{ .Email }}</a> {% not a tag %} {# nor a comment #}</p>
<p>Code: {{ .Token }} ({{ len .Token }} digits)</p>
<ul>
{{- range .Data.tags }}
  <li>{{ . }} for {{ $.Email }}</li>
{{- else }}
  <li>no tags</li>
{{- end }}
</ul>
{{ with .Data.team }}<p>Team {{ .name }}</p>{{ end }}
{{ if and .Data.vip (eq .Data.lang "de" "at") }}<p>Willkommen</p>{{ else if eq .Data.lang "fr" }}<p>Bienvenue</p>{{ else }}<p>Welcome</p>{{ end }}
{{- /* trimmed */ -}}
<p>{{ .SiteURL }} | {{ .RedirectTo }} | {{ .TokenHash }} | {{ index .Data "odd key" }} | {{ .Data.items }} | {{ .Data.flag }} | {{ .Data.missing }}</p>
"""

JINJA_TEMPLATE = """<h2>Hello {% if Data.name %}{{ Data.name }}{% else %}there{% endif %}</h2>
{# a comment #}
<p><a href="{{ ConfirmationURL }}">Confirm {{ Email }}</a> {{ "{%" }} not a tag %} {{ "{#" }} nor a comment #}</p>
<p>Code: {{ Token }} ({{ Token|length }} digits)</p>
<ul>
{%- for tag in Data.tags %}
  <li>{{ tag }} for {{ Email }}</li>
{%- else %}
  <li>no tags</li>
{%- endfor %}
</ul>
{% if Data.team %}<p>Team {{ Data.team.name }}</p>{% endif %}
{% if Data.vip and Data.lang in ("de", "at") %}<p>Willkommen</p>{% elif Data.lang == "fr" %}<p>Bienvenue</p>{% else %}<p>Welcome</p>{% endif %}
{#- trimmed -#}
<p>{{ SiteURL }} | {{ RedirectTo }} | {{ TokenHash }} | {{ Data["odd key"] }} | {{ Data["items"] }} | {{ Data.flag }} | {{ Data.missing }}</p>
"""

DATA_SETS = [
    {"name": "<b>Ann</b>", "tags": ["a", "b&c"], "team": {"name": "Blue"}, "vip": True, "lang": "at",
     "odd key": "odd", "items": "its", "flag": True},
    {"tags": [], "lang": "fr", "flag": False, "items": 3},
    {},
]


def write_templates(tmp_path: Path) -> tuple[Path, Path]:
    go_file, jinja_file = tmp_path / "confirm.html", tmp_path / "confirm.j2"
    go_file.write_text(GO_TEMPLATE, encoding="utf-8")
    jinja_file.write_text(JINJA_TEMPLATE, encoding="utf-8")
    return go_file, jinja_file


def test_go_template_from_a_local_file_renders_like_its_jinja_equivalent(tmp_path):
    go_file, jinja_file = write_templates(tmp_path)
    go = Mailer(make_settings(tmp_path, GOTRUE_MAILER_TEMPLATES_CONFIRMATION=str(go_file)))
    native = Mailer(make_settings(tmp_path, GOTRUE_MAILER_TEMPLATES_CONFIRMATION=f"file:{jinja_file}"))
    rendered = []
    for data in DATA_SETS:
        variables = link_variables("http://localhost:9999/verify?token=t&type=signup&redirect_to=r", Data=data)
        a, b = run(go.render("confirmation", TO, variables)), run(native.render("confirmation", TO, variables))
        assert a.html == b.html
        assert a.text == b.text == html_to_text(a.html)
        rendered.append(a.html)
    first, second, third = rendered
    assert "Hello &lt;b&gt;Ann&lt;/b&gt;" in first and "<li>b&amp;c for ann@example.com</li>" in first
    assert "Team Blue" in first and "Willkommen" in first
    assert "| odd | its | true | </p>" in first
    assert '<a href="http://localhost:9999/verify?token=t&amp;type=signup&amp;redirect_to=r">' in first
    assert "{% not a tag %} {# nor a comment #}" in first
    assert "Hello there" in second and "no tags" in second and "Bienvenue" in second and "| 3 | false |" in second
    assert "Team" not in third and "Welcome" in third
    assert "http://localhost:3000 | http://localhost:3000 | pkce_abc" in third  # SiteURL added by the Mailer
    assert "</ul>\n\n<p>Welcome</p><p>" in third  # {{- /* */ -}} trimmed both sides


def test_go_template_from_a_url_renders_like_the_file(tmp_path):
    go_file, _ = write_templates(tmp_path)

    async def scenario():
        async def serve(request: web.Request) -> web.Response:
            return web.Response(text=GO_TEMPLATE, content_type="text/html")

        app = web.Application()
        app.router.add_get("/mail/confirm.html", serve)
        async with TestServer(app, host="127.0.0.1") as server:
            url = str(server.make_url("/mail/confirm.html"))
            site = str(server.make_url(""))
            by_url = Mailer(make_settings(tmp_path, GOTRUE_MAILER_TEMPLATES_CONFIRMATION=url))
            # A value not starting with http is appended to SITE_URL.
            by_site = Mailer(make_settings(tmp_path, GOTRUE_SITE_URL=site.rstrip("/"),
                                           GOTRUE_MAILER_TEMPLATES_CONFIRMATION="/mail/confirm.html"))
            by_file = Mailer(make_settings(tmp_path, GOTRUE_MAILER_TEMPLATES_CONFIRMATION=f"file://{go_file}"))
            try:
                variables = link_variables(Data=DATA_SETS[0], SiteURL="http://localhost:3000")
                results = [await m.render("confirmation", TO, variables) for m in (by_url, by_site, by_file)]
            finally:
                for m in (by_url, by_site, by_file):
                    await m.close()
        return results

    a, b, c = run(scenario())
    assert a.html == b.html == c.html
    assert "Willkommen" in a.html


@pytest.mark.parametrize("source, reason", [
    ('{{ printf "%s" .Email }}', "printf"),
    ("{{ .Email | html }}", "pipelines"),
    ("{{ $name := .Email }}", "variables"),
    ("{{ if .Email }}never closed", "without {{ end }}"),
    ("{{ end }}", "without an opening"),
    ('{{ template "other" }}', "template"),
    ("{{ .Method 1 }}", "methods"),
    ("{{ .Email", "unclosed"),
])
def test_untranslatable_go_templates_are_refused(source, reason):
    with pytest.raises(GoTemplateError, match=reason):
        go_to_jinja(source)


@pytest.mark.parametrize("name, source", [
    ("broken.html", '{{ printf "%s" .Email }}'),  # untranslatable
    ("broken.html", "{{ if .Email }}no end"),  # Go syntax error
    ("broken.html", "{% if %}"),  # Go text: rendered literally, never a Jinja error
    ("broken.j2", "{% if %}"),  # native Jinja: a syntax error
    ("broken.html", "{{ if lt .Data.age 18 }}minor{{ end }}"),  # fails while rendering (no age)
])
def test_a_broken_custom_template_falls_back_to_the_default_with_a_log_line(tmp_path, caplog, name, source):
    template = tmp_path / name
    template.write_text(source, encoding="utf-8")
    s = make_settings(tmp_path, GOTRUE_MAILER_TEMPLATES_CONFIRMATION=str(template))
    default = run(Mailer(make_settings(tmp_path)).render("confirmation", TO, link_variables()))
    with caplog.at_level(logging.WARNING, logger="gotrue_lite.mail"):
        message = run(Mailer(s).render("confirmation", TO, link_variables()))
    if name == "broken.html" and source == "{% if %}":
        assert message.html == "{% if %}" and not caplog.records
        return
    assert message.html == default.html and message.text == default.text
    assert "GOTRUE_MAILER_TEMPLATES_CONFIRMATION" in caplog.text and "default template" in caplog.text


@pytest.mark.parametrize("value", ["file:/nonexistent/confirm.html", "http://127.0.0.1:{port}/nothing-here"])
def test_an_unloadable_custom_template_falls_back_with_a_log_line(tmp_path, caplog, value):
    s = make_settings(tmp_path, GOTRUE_MAILER_TEMPLATES_RECOVERY=value.format(port=free_port()))
    with caplog.at_level(logging.WARNING, logger="gotrue_lite.mail"):
        mailer = Mailer(s)
        message = run(mailer.render("recovery", TO, link_variables()))
    assert message.subject == "Reset your password" and "Reset your password" in message.html
    assert "GOTRUE_MAILER_TEMPLATES_RECOVERY" in caplog.text and "using the default template" in caplog.text


class TemplateSite:
    """Serves one template from an aiohttp server, counting requests, slow on purpose."""

    def __init__(self) -> None:
        self.body = "v1 {{ .Email }}"
        self.status = 200
        self.hits = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        await asyncio.sleep(0.05)  # long enough for concurrent sends to overlap
        return web.Response(text=self.body, status=self.status, content_type="text/html")


def test_url_templates_are_cached_shared_and_kept_when_the_host_fails(tmp_path, caplog):
    site = TemplateSite()

    async def scenario():
        app = web.Application()
        app.router.add_get("/t", site.handle)
        async with TestServer(app, host="127.0.0.1") as server:
            s = make_settings(tmp_path, GOTRUE_MAILER_TEMPLATES_MAGIC_LINK=str(server.make_url("/t")),
                              GOTRUE_MAILER_TEMPLATE_MAX_AGE="10m", GOTRUE_MAILER_TEMPLATE_RETRY_INTERVAL="10s")
            mailer = Mailer(s)

            async def body() -> str:
                return (await mailer.render("magic_link", TO, link_variables())).html

            try:
                first = await asyncio.gather(*(body() for _ in range(5)))
                assert first == ["v1 ann@example.com"] * 5 and site.hits == 1  # one shared fetch
                assert await body() == "v1 ann@example.com" and site.hits == 1  # cached

                site.body = "v2 {{ .Email }}"
                clock.offset += timedelta(minutes=10, seconds=1)
                # Expired: the stale copy answers at once, the re-fetch runs off the request path.
                assert await body() == "v1 ann@example.com"
                await mailer.templates_settled()
                assert await body() == "v2 ann@example.com" and site.hits == 2

                site.status = 500
                clock.offset += timedelta(minutes=10, seconds=1)
                assert await body() == "v2 ann@example.com"
                await mailer.templates_settled()
                assert site.hits == 3  # failed: the stale copy keeps serving
                assert await body() == "v2 ann@example.com" and site.hits == 3  # within the retry interval
                clock.offset += timedelta(seconds=11)
                assert await body() == "v2 ann@example.com"
                await mailer.templates_settled()
                assert site.hits == 4  # retried, still failing

                site.status, site.body = 200, "{{ broken"
                clock.offset += timedelta(seconds=11)
                await body()
                await mailer.templates_settled()
                assert await body() == "v2 ann@example.com" and site.hits == 5  # parse errors count as failures

                site.body = "v3 {{ .Email }}"
                clock.offset += timedelta(seconds=11)
                await body()
                await mailer.templates_settled()
                assert await body() == "v3 ann@example.com" and site.hits == 6
            finally:
                await mailer.close()

    with caplog.at_level(logging.WARNING, logger="gotrue_lite.mail"):
        run(scenario())
    assert "status 500" in caplog.text and "keeping the copy" in caplog.text


def test_a_template_host_down_from_the_start_serves_the_default_until_max_age(tmp_path):
    site = TemplateSite()
    site.status = 503

    async def scenario():
        app = web.Application()
        app.router.add_get("/t", site.handle)
        async with TestServer(app, host="127.0.0.1") as server:
            s = make_settings(tmp_path, GOTRUE_MAILER_TEMPLATES_INVITE=str(server.make_url("/t")))
            mailer = Mailer(s)
            try:
                assert "You've been invited" in (await mailer.render("invite", TO, link_variables())).html
                clock.offset += timedelta(minutes=5)
                site.status = 200
                assert "You've been invited" in (await mailer.render("invite", TO, link_variables())).html
                assert site.hits == 1  # the default is cached like a fetched copy
                clock.offset += timedelta(minutes=6)
                await mailer.render("invite", TO, link_variables())  # stale: refreshed in the background
                await mailer.templates_settled()
                assert (await mailer.render("invite", TO, link_variables())).html == "v1 ann@example.com"
            finally:
                await mailer.close()

    run(scenario())


def test_start_prefetches_custom_templates(tmp_path):
    site = TemplateSite()

    async def scenario():
        app = web.Application()
        app.router.add_get("/t", site.handle)
        async with TestServer(app, host="127.0.0.1") as server:
            mailer = Mailer(make_settings(tmp_path, GOTRUE_MAILER_TEMPLATES_RECOVERY=str(server.make_url("/t"))))
            try:
                await mailer.start()
                await mailer.templates_settled()
                assert site.hits == 1  # fetched at start, before any mail needs it
                assert (await mailer.render("recovery", TO, link_variables())).html == "v1 ann@example.com"
                assert site.hits == 1
            finally:
                await mailer.close()

    run(scenario())


def test_templates_are_cut_at_template_max_size(tmp_path):
    template = tmp_path / "long.html"
    template.write_text("A" * 100 + "{{ .Email }}", encoding="utf-8")
    s = make_settings(tmp_path, GOTRUE_MAILER_TEMPLATES_INVITE=str(template), GOTRUE_MAILER_TEMPLATE_MAX_SIZE="40")
    assert run(Mailer(s).render("invite", TO, link_variables())).html == "A" * 40


def test_html_to_text_keeps_links_readable():
    text = html_to_text('<html><head><style>p{}</style></head><body><h1>Hi</h1><p>Go <a href="https://x.test/a?b=1&amp;c=2">here</a>'
                        '</p><ul><li>one</li><li>two</li></ul><p><a href="https://y.test">https://y.test</a></p></body></html>')
    assert text == "Hi\n\nGo here (https://x.test/a?b=1&c=2)\n\n- one\n- two\n\nhttps://y.test\n"


# --- SMTP ----------------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    helo: str
    tls: bool
    raw: bytes


class Inbox:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.logins: list[tuple[str, str]] = []  # (mechanism, user)

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=policy.default)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message,
                                      session.host_name, server.transport.get_extra_info("ssl_object") is not None,
                                      raw))
        return "250 OK"

    def authenticator(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        self.logins.append((mechanism, auth_data.login.decode()))
        ok = auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASS.encode()
        return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="session")
def tls_context(tmp_path_factory) -> ssl.SSLContext:
    """A server context with a freshly made self-signed certificate for 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


@contextmanager
def smtp_server(**options):
    inbox = Inbox()
    if options.pop("with_auth", False):
        options.update(authenticator=inbox.authenticator, auth_exclude_mechanism=["PLAIN"])
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def smtp_settings(tmp_path, port: int, **env: str):
    return make_settings(tmp_path, GOTRUE_SMTP_HOST="127.0.0.1", GOTRUE_SMTP_PORT=str(port),
                         GOTRUE_SMTP_ADMIN_EMAIL="noreply@acme.test", API_EXTERNAL_URL="https://auth.acme.test/auth/v1",
                         **env)


def test_plain_smtp_sends_a_multipart_message_with_from_and_extra_headers(tmp_path):
    with smtp_server() as (inbox, port):
        s = smtp_settings(tmp_path, port, GOTRUE_SMTP_SENDER_NAME="Acme Auth",
                          GOTRUE_SMTP_HEADERS='{"X-Mail-Type": ["$messageType"], "X-Tags": ["a", "b"], "Content-Type": ["x"]}')
        mailer = Mailer(s)
        assert not mailer.dev_mailbox
        url = "https://auth.acme.test/verify?token=pkce_1&type=signup&redirect_to=http://localhost:3000"
        sent = run(mailer.send("confirmation", TO, link_variables(url)))
        run(mailer.send("reauthentication", TO, {"Token": "654321", "Email": TO}))
    first, second = inbox.received
    assert first.mail_from == "noreply@acme.test" and first.rcpt_tos == [TO]
    assert first.helo == "auth.acme.test" and not first.tls
    message = first.message
    assert b'\r\nFrom: "Acme Auth" <noreply@acme.test>\r\n' in b"\r\n" + first.raw
    assert message["To"] == TO and message["Subject"] == "Confirm your email address"
    assert message["X-Mail-Type"] == "confirmation" and message["X-Tags"] == "a, b"
    assert message["Date"] and message["Message-ID"].endswith("@auth.acme.test>")
    assert message.get_content_type() == "multipart/alternative"
    text, html = list(message.iter_parts())
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert url in text.get_content() and url.replace("&", "&amp;") in html.get_content()
    def content(part) -> str:
        return part.get_content().replace("\r\n", "\n")

    assert content(text) == sent.text and content(html).rstrip("\n") == sent.html.rstrip("\n")
    assert sent.headers == {"From": '"Acme Auth" <noreply@acme.test>', "To": TO,
                            "Subject": "Confirm your email address", "X-Mail-Type": "confirmation", "X-Tags": "a, b"}
    assert second.message["X-Mail-Type"] == "reauthenticate"  # upstream's name for this mail
    assert second.message["Subject"] == "654321 is your verification code"


def test_from_is_the_bare_address_without_a_sender_name(tmp_path):
    with smtp_server() as (inbox, port):
        run(Mailer(smtp_settings(tmp_path, port)).send("magic_link", TO, link_variables()))
    assert b"\r\nFrom: noreply@acme.test\r\n" in b"\r\n" + inbox.received[0].raw


def test_non_ascii_subject_and_body_survive(tmp_path):
    with smtp_server() as (inbox, port):
        s = smtp_settings(tmp_path, port, GOTRUE_SMTP_SENDER_NAME="Jörg's Äpp",
                          GOTRUE_MAILER_SUBJECTS_CONFIRMATION="Grüße, {{ .Data.name }}")
        run(Mailer(s).send("confirmation", TO, link_variables(Data={"name": "Zoë"})))
    message = inbox.received[0].message
    assert message["Subject"] == "Grüße, Zoë"
    sender = message["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ("Jörg's Äpp", "noreply@acme.test")
    assert "Thanks for signing up" in message.get_body(("plain",)).get_content()


def test_starttls_and_auth_login(tmp_path, tls_context):
    with smtp_server(tls_context=tls_context, require_starttls=True, with_auth=True) as (inbox, port):
        s = smtp_settings(tmp_path, port, GOTRUE_SMTP_USER=SMTP_USER, GOTRUE_SMTP_PASS=SMTP_PASS,
                          GOTRUE_LITE_SMTP_TLS_VERIFY="false")
        run(Mailer(s).send("recovery", TO, link_variables()))
    assert inbox.logins == [("LOGIN", SMTP_USER)]
    assert len(inbox.received) == 1 and inbox.received[0].tls
    assert inbox.received[0].helo == "auth.acme.test"


def test_implicit_tls(tmp_path, tls_context):
    # aiosmtpd only counts STARTTLS as TLS for AUTH, so it must be told AUTH is fine here.
    with smtp_server(ssl_context=tls_context, with_auth=True, auth_require_tls=False) as (inbox, port):
        s = smtp_settings(tmp_path, port, GOTRUE_SMTP_USER=SMTP_USER, GOTRUE_SMTP_PASS=SMTP_PASS,
                          GOTRUE_LITE_SMTP_IMPLICIT_TLS="true", GOTRUE_LITE_SMTP_TLS_VERIFY="false")
        run(Mailer(s).send("invite", TO, link_variables()))
    assert inbox.logins == [("LOGIN", SMTP_USER)] and inbox.received[0].tls


def test_smtp_user_set_but_no_auth_offered_sends_without_login(tmp_path, caplog):
    # As upstream's gomail Dialer: credentials are used only when EHLO lists AUTH.
    with smtp_server() as (inbox, port):
        s = smtp_settings(tmp_path, port, GOTRUE_SMTP_USER=SMTP_USER, GOTRUE_SMTP_PASS=SMTP_PASS)
        assert run(mail_smtp.probe(s)) == (None, True)
        with caplog.at_level(logging.INFO, logger="gotrue_lite.mail"):
            mailer = Mailer(s)
            run(mailer.start())
            run(mailer.send("recovery", TO, link_variables()))
            run(mailer.close())
    assert inbox.logins == [] and len(inbox.received) == 1 and inbox.received[0].rcpt_tos == [TO]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"GOTRUE_SMTP_USER is set but the SMTP server 127.0.0.1:{port} offers no AUTH: "
                        "mail is sent without logging in"]
    assert SMTP_PASS not in caplog.text


def test_auth_offered_only_after_starttls_is_used_after_starttls(tmp_path, tls_context):
    # aiosmtpd lists AUTH only once the connection is encrypted: the login follows STARTTLS.
    with smtp_server(tls_context=tls_context, with_auth=True) as (inbox, port):
        s = smtp_settings(tmp_path, port, GOTRUE_SMTP_USER=SMTP_USER, GOTRUE_SMTP_PASS=SMTP_PASS,
                          GOTRUE_LITE_SMTP_TLS_VERIFY="false")
        assert run(mail_smtp.probe(s)) == (None, False)
        run(Mailer(s).send("recovery", TO, link_variables()))
    assert inbox.logins == [("LOGIN", SMTP_USER)] * 2 and inbox.received[0].tls


def test_no_smtp_user_never_logs_in_even_when_auth_is_offered(tmp_path):
    with smtp_server(with_auth=True, auth_require_tls=False) as (inbox, port):
        s = smtp_settings(tmp_path, port)
        assert run(mail_smtp.probe(s)) == (None, False)
        run(Mailer(s).send("recovery", TO, link_variables()))
    assert inbox.logins == [] and len(inbox.received) == 1


def test_implicit_tls_follows_port_465_unless_set(tmp_path):
    def options(**env):
        return mail_smtp.connection_options(make_settings(tmp_path, GOTRUE_SMTP_HOST="smtp.test", **env), 10)

    assert (options(GOTRUE_SMTP_PORT="465")["use_tls"], options(GOTRUE_SMTP_PORT="465")["start_tls"]) == (True, False)
    assert (options(GOTRUE_SMTP_PORT="587")["use_tls"], options(GOTRUE_SMTP_PORT="587")["start_tls"]) == (False, None)
    assert options(GOTRUE_SMTP_PORT="465", GOTRUE_LITE_SMTP_IMPLICIT_TLS="false")["use_tls"] is False
    assert options(GOTRUE_SMTP_PORT="2465", GOTRUE_LITE_SMTP_IMPLICIT_TLS="true")["use_tls"] is True
    assert options()["validate_certs"] is True and options()["local_hostname"] == "localhost"


def test_an_untrusted_certificate_is_refused_by_default(tmp_path, tls_context):
    with smtp_server(ssl_context=tls_context) as (inbox, port):
        s = smtp_settings(tmp_path, port, GOTRUE_LITE_SMTP_IMPLICIT_TLS="true")
        with pytest.raises(MailError, match="cannot connect"):
            run(Mailer(s).send("invite", TO, link_variables()))
    assert inbox.received == []


def test_wrong_credentials_raise_mail_error_without_the_password(tmp_path, tls_context):
    with smtp_server(tls_context=tls_context, with_auth=True) as (inbox, port):
        s = smtp_settings(tmp_path, port, GOTRUE_SMTP_USER=SMTP_USER, GOTRUE_SMTP_PASS="wrong-password-xyz",
                          GOTRUE_LITE_SMTP_TLS_VERIFY="false")
        with pytest.raises(MailError) as failure:
            run(Mailer(s).send("confirmation", TO, link_variables()))
    assert "refused the login" in str(failure.value) and SMTP_USER in str(failure.value)
    assert "wrong-password-xyz" not in str(failure.value)
    assert inbox.received == []


def test_server_down_raises_mail_error(tmp_path):
    s = smtp_settings(tmp_path, free_port())
    with pytest.raises(MailError, match=r"cannot connect to the SMTP server 127\.0\.0\.1:\d+"):
        run(Mailer(s).send("confirmation", TO, link_variables()))


def test_start_warns_when_smtp_is_unusable_and_never_raises(tmp_path, caplog, tls_context):
    with caplog.at_level(logging.INFO, logger="gotrue_lite.mail"):
        mailer = Mailer(smtp_settings(tmp_path, free_port()))
        run(mailer.start())
        run(mailer.close())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "SMTP check failed" in warnings[0].getMessage()
    assert "cannot connect" in warnings[0].getMessage()

    caplog.clear()
    with smtp_server(tls_context=tls_context, with_auth=True) as (inbox, port):
        with caplog.at_level(logging.INFO, logger="gotrue_lite.mail"):
            bad = Mailer(smtp_settings(tmp_path, port, GOTRUE_SMTP_USER=SMTP_USER, GOTRUE_SMTP_PASS="nope",
                                       GOTRUE_LITE_SMTP_TLS_VERIFY="false"))
            run(bad.start())
            good = Mailer(smtp_settings(tmp_path, port, GOTRUE_SMTP_USER=SMTP_USER, GOTRUE_SMTP_PASS=SMTP_PASS,
                                        GOTRUE_LITE_SMTP_TLS_VERIFY="false"))
            run(good.start())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "gotrue_lite.mail"]
    assert len(warnings) == 1 and "refused the login" in warnings[0] and "nope" not in caplog.text
    assert "reachable" in caplog.text
    assert inbox.received == []


# --- dev mailbox ---------------------------------------------------------------------------


@pytest.mark.parametrize("env, expected", [
    ({}, True),  # automatic: no SMTP host, loopback API
    ({"GOTRUE_API_HOST": "::1"}, True),
    ({"GOTRUE_API_HOST": "localhost"}, True),
    ({"GOTRUE_API_HOST": "0.0.0.0"}, False),
    ({"GOTRUE_API_HOST": "10.1.2.3"}, False),
    ({"GOTRUE_SMTP_HOST": "smtp.test"}, False),
    ({"GOTRUE_LITE_DEV_MAILBOX": "false"}, False),
    ({"GOTRUE_LITE_DEV_MAILBOX": "true", "GOTRUE_API_HOST": "0.0.0.0"}, True),
    ({"GOTRUE_LITE_DEV_MAILBOX": "true", "GOTRUE_SMTP_HOST": "smtp.test"}, True),
])
def test_dev_mailbox_on_off_rules(tmp_path, env, expected):
    assert Mailer(make_settings(tmp_path, **env)).dev_mailbox is expected


def test_without_smtp_and_dev_mailbox_mail_is_dropped(tmp_path, caplog):
    mailer = Mailer(make_settings(tmp_path, GOTRUE_LITE_DEV_MAILBOX="false"))
    with caplog.at_level(logging.DEBUG, logger="gotrue_lite.mail"):
        message = run(mailer.send("confirmation", TO, link_variables()))
    assert message.subject == "Confirm your email address"
    assert "dropped" in caplog.text
    assert run(mailer.dev_messages()) == []


async def _database(settings):
    db = await open_database(settings)
    await apply_migrations(db)
    return db


@contextmanager
def database_url(backend: str, tmp_path: Path):
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'mail.db'}"
        return
    import asyncpg

    name = f"gl_mail_{uuid.uuid4().hex}"

    async def admin(statement: str) -> None:
        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres", timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_dev_mailbox_keeps_messages_in_the_database(tmp_path, backend, caplog, monkeypatch):
    monkeypatch.setattr(dev_mail, "KEEP", 4)
    with database_url(backend, tmp_path) as url:
        s = make_settings(tmp_path, DATABASE_URL=url)

        async def scenario():
            db = await _database(s)
            try:
                mailer = Mailer(s, db)
                assert mailer.dev_mailbox
                for n in range(5):
                    clock.offset += timedelta(milliseconds=1)  # distinct, ordered created_at
                    to = "bob@example.com" if n == 3 else TO
                    link = f"http://localhost:9999/verify?token=t{n}&type=signup&redirect_to=r"
                    await mailer.send("confirmation", to, link_variables(link))
                newest = await mailer.dev_messages()
                bobs = await mailer.dev_messages(email="BOB@example.com")
                rows = await dev_mail.latest(db)
                return newest, bobs, rows
            finally:
                await db.close()

        with caplog.at_level(logging.INFO, logger="gotrue_lite.mail"):
            newest, bobs, rows = run(scenario())
    assert [m["links"][0].split("token=")[1][:2] for m in newest] == ["t4", "t3", "t2", "t1"]  # capped at KEEP
    assert len(rows) == 4
    first = newest[0]
    assert set(first) == {"id", "created_at", "kind", "channel", "to", "subject", "text", "html", "links", "code"}
    assert first["channel"] == "email" and first["code"] == "123456"
    assert first["kind"] == "confirmation" and first["to"] == TO and first["subject"] == "Confirm your email address"
    assert first["created_at"].tzinfo is not None
    assert first["links"] == ["http://localhost:9999/verify?token=t4&type=signup&redirect_to=r"]
    assert [m["to"] for m in bobs] == ["bob@example.com"]
    # Each message is also announced in the log: its kind and recipient, never its links.
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dev mailbox:")]
    assert len(logged) == 5
    assert "confirmation mail to ann@example.com" in logged[-1]
    assert "token=" not in logged[-1] and "/_dev/mail/" in logged[-1]


def test_dev_mailbox_send_inside_a_transaction_does_not_wait_for_itself(tmp_path, backend):
    # The flows send while their transaction (on SQLite: the one write lock) is open.
    with database_url(backend, tmp_path) as url:
        s = make_settings(tmp_path, DATABASE_URL=url)

        async def scenario():
            db = await _database(s)
            try:
                mailer = Mailer(s, db)
                async with db.transaction() as tx:
                    await tx.fetch_all("SELECT 1")
                    await asyncio.wait_for(mailer.send("recovery", TO, link_variables()), 5)
                messages = await asyncio.wait_for(mailer.dev_messages(), 5)
                await mailer.send("invite", TO, link_variables())
                await mailer.close()  # finishes the pending write before the database closes
                return messages, await dev_mail.latest(db)
            finally:
                await db.close()

        messages, rows = run(scenario())
    assert [m["kind"] for m in messages] == ["recovery"]
    assert [r["kind"] for r in rows] == ["invite", "recovery"]


def test_dev_mailbox_sqlite_table_types(tmp_path):
    s = make_settings(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'types.db'}")

    async def migrate():
        await (await _database(s)).close()

    run(migrate())
    with sqlite3.connect(tmp_path / "types.db") as conn:
        columns = {row[1]: (row[2], row[3], row[5]) for row in conn.execute("PRAGMA table_info(gotrue_lite_dev_mail)")}
        indexes = [row[1] for row in conn.execute("PRAGMA index_list(gotrue_lite_dev_mail)")]
    assert columns == {
        "id": ("TEXT", 1, 1), "created_at": ("TIMESTAMPTZ", 1, 0), "kind": ("TEXT", 1, 0),
        "recipient": ("TEXT", 1, 0), "subject": ("TEXT", 1, 0), "text_body": ("TEXT", 1, 0),
        "html_body": ("TEXT", 1, 0), "channel": ("TEXT", 1, 0), "code": ("TEXT", 1, 0),
    }
    assert "gotrue_lite_dev_mail_created_at_idx" in indexes


def test_reauthentication_code_is_not_logged_by_the_dev_mailbox(tmp_path, caplog):
    with caplog.at_level(logging.DEBUG):
        run(Mailer(make_settings(tmp_path)).send("reauthentication", TO, {"Token": "246810", "Email": TO}))
    assert "dev mailbox: reauthentication mail to" in caplog.text and "246810" not in caplog.text


# --- /_dev/mail ----------------------------------------------------------------------------


def dev_app(mailer: Mailer | None) -> web.Application:
    from gotrue_lite.api import devmail

    app = web.Application()
    if mailer is not None:
        app[MAILER] = mailer
    app.router.add_get("/_dev/mail", devmail.list_json)
    app.router.add_get("/_dev/mail/", devmail.page)
    app.router.add_get("/_dev/mail.html", devmail.page)
    return app


def test_dev_mail_endpoints(tmp_path):
    s = make_settings(tmp_path, GOTRUE_MAILER_SUBJECTS_MAGIC_LINK="Hi {{ .Data.name }}")

    async def scenario():
        mailer = Mailer(s)
        await mailer.send("confirmation", TO, link_variables("http://localhost:9999/verify?token=a&type=signup&redirect_to=r"))
        clock.offset += timedelta(milliseconds=1)
        await mailer.send("magic_link", "eve@example.com",
                          link_variables("http://localhost:9999/verify?token=b&type=magiclink&redirect_to=r",
                                         Data={"name": "<script>alert(1)</script>"}))
        async with TestClient(TestServer(dev_app(mailer))) as client:
            listing = await (await client.get("/_dev/mail")).json()
            filtered = await (await client.get("/_dev/mail", params={"email": TO})).json()
            page = await client.get("/_dev/mail/")
            page_text = await page.text()
            alias = await client.get("/_dev/mail.html", params={"email": "eve@example.com"})
            alias_text = await alias.text()
        return listing, filtered, page, page_text, alias_text

    listing, filtered, page, page_text, alias_text = run(scenario())
    messages = listing["messages"]
    assert [m["to"] for m in messages] == ["eve@example.com", TO]
    assert messages[0]["subject"] == "Hi <script>alert(1)</script>"
    assert messages[1]["links"] == ["http://localhost:9999/verify?token=a&type=signup&redirect_to=r"]
    assert set(messages[1]) == {"id", "created_at", "kind", "channel", "to", "subject", "text", "html", "links", "code"}
    assert datetime.datetime.fromisoformat(messages[1]["created_at"]).tzinfo is not None
    assert [m["to"] for m in filtered["messages"]] == [TO]
    assert page.status == 200 and page.content_type == "text/html"
    assert '<a href="http://localhost:9999/verify?token=a&amp;type=signup&amp;redirect_to=r">' in page_text
    assert "<script>alert" not in page_text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page_text
    assert "token=b" in alias_text and "token=a" not in alias_text


@pytest.mark.parametrize("dev_mailbox", [False, None])
def test_dev_mail_endpoints_are_404_when_the_mailbox_is_off(tmp_path, dev_mailbox):
    mailer = Mailer(make_settings(tmp_path, GOTRUE_LITE_DEV_MAILBOX="false")) if dev_mailbox is False else None

    async def scenario():
        async with TestClient(TestServer(dev_app(mailer))) as client:
            results = []
            for path in ("/_dev/mail", "/_dev/mail/", "/_dev/mail.html"):
                response = await client.get(path)
                results.append((response.status, await response.json()))
            return results

    for status, body in run(scenario()):
        assert status == 404
        assert body == {"code": 404, "error_code": "not_found", "msg": "Not Found"}
