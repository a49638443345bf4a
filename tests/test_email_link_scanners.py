"""GOTRUE_LITE_VERIFY_CONFIRMATION_PAGE: a mail scanner's GET of a link does not spend it."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx

SITE = "http://localhost:3000"


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.action = attrs.get("action")
        elif tag == "input" and attrs.get("type") == "hidden":
            self.fields[attrs["name"]] = attrs.get("value", "")


def _confirmation_link(server, email: str) -> str:
    resp = httpx.post(f"{server.url}/signup", json={"email": email, "password": "correct-horse-9"})
    assert resp.status_code == 200 and "access_token" not in resp.json(), resp.text
    mail = httpx.get(f"{server.url}/_dev/mail", params={"email": email}).json()["messages"][0]
    return next(link for link in mail["links"] if "/verify?" in link)


def test_get_shows_a_button_and_only_the_post_spends_the_link(make_server, backend):
    server = make_server(backend, GOTRUE_MAILER_AUTOCONFIRM="false", GOTRUE_LITE_VERIFY_CONFIRMATION_PAGE="true")
    link = _confirmation_link(server, "scanned@example.com")

    # A scanner opens the link, twice: a page, no redirect, nothing spent.
    for _ in range(2):
        page = httpx.get(link, follow_redirects=False)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.headers["Referrer-Policy"] == "no-referrer" and "no-store" in page.headers["Cache-Control"]
    form = _Form()
    form.feed(page.text)
    assert form.action == "/verify" and form.fields["type"] == "signup"
    assert form.fields["token"] == dict(p.split("=", 1) for p in urlsplit(link).query.split("&"))["token"]

    # The person presses the button: the form post spends the link and redirects with the session.
    done = httpx.post(server.url + form.action, data=form.fields, follow_redirects=False)
    assert done.status_code == 303, done.text
    location = done.headers["Location"]
    assert location.startswith(SITE + "#") and "access_token=" in location and "type=signup" in location
    token = re.search(r"access_token=([^&]+)", location).group(1)
    me = httpx.get(f"{server.url}/user", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["email"] == "scanned@example.com" and me["email_confirmed_at"]

    # Spent: a second press lands on the error redirect.
    again = httpx.post(server.url + form.action, data=form.fields, follow_redirects=False)
    assert again.status_code == 303 and "error_code=otp_expired" in again.headers["Location"]


def test_without_the_setting_the_get_spends_the_link(make_server, backend):
    server = make_server(backend, GOTRUE_MAILER_AUTOCONFIRM="false")
    link = _confirmation_link(server, "direct@example.com")
    first = httpx.get(link, follow_redirects=False)
    assert first.status_code == 303 and "access_token=" in first.headers["Location"]
    assert "error_code=otp_expired" in httpx.get(link, follow_redirects=False).headers["Location"]


def test_page_escapes_what_it_echoes(make_server):
    server = make_server("sqlite", GOTRUE_LITE_VERIFY_CONFIRMATION_PAGE="true")
    evil = '"><script>alert(1)</script>'
    page = httpx.get(f"{server.url}/verify", params={"type": "signup", "token": evil, "redirect_to": evil})
    assert page.status_code == 200 and "<script>" not in page.text and "&lt;script&gt;" in page.text
    missing = httpx.get(f"{server.url}/verify", params={"type": "signup"})
    assert missing.status_code == 400 and missing.json()["error_code"] == "validation_failed"
