"""The development welcome page (/_dev/welcome): SITE_URL's default while mail goes to the dev
mailbox, where a clicked link lands and shows who signed in; checked in headless Chromium."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import quote

from email_e2e import get, signup_unconfirmed
from helpers import b64url, mint, new_email
from smtp_server import _reset_clock, free_port  # noqa: F401
from test_email_devmail import chromium

WELCOME = "/_dev/welcome"


class _Sections(HTMLParser):
    """The text of each <section id=…> of the rendered page, and every tag seen."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: dict[str, str] = {}
        self.tags: list[str] = []
        self.body: dict[str, str | None] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "body":
            self.body = dict(attrs)
        if tag == "section":
            self._open.append(dict(attrs).get("id") or "")
            self.sections.setdefault(self._open[-1], "")

    def handle_endtag(self, tag):
        if tag == "section" and self._open:
            self._open.pop()

    def handle_data(self, data):
        for name in self._open:
            self.sections[name] += data + " "


def rendered(tmp_path, url: str) -> _Sections:
    """The page after its script ran (virtual time lets the fetch of /user finish)."""
    dom = chromium(tmp_path, url, "--dump-dom", "--virtual-time-budget=15000").stdout
    page = _Sections()
    page.feed(dom)
    page.close()
    assert page.body.get("data-ready") == "1", dom[-3000:]
    return page


def test_a_confirmation_link_lands_on_the_welcome_page(make_server, backend, tmp_path):
    # The development defaults: no SITE_URL set, no SMTP host, loopback; confirmation turned on.
    server = make_server(backend, GOTRUE_SITE_URL=None, GOTRUE_MAILER_AUTOCONFIRM="false")
    assert server.settings.site_url == server.url + WELCOME
    email = new_email("welcome")
    user = signup_unconfirmed(server, email, data={"name": "Ada"})
    (message,) = get(server, "/_dev/mail", params={"email": email}).json()["messages"]
    (link,) = [link for link in message["links"] if "/verify?" in link]
    assert link.endswith(f"&redirect_to={server.url}{WELCOME}"), link

    page = rendered(tmp_path, link)  # the browser follows /verify's redirect to the page
    assert f"Signed in as {email}" in page.sections["signed-in"], page.sections
    assert "The signup link worked." in page.sections["signed-in"]
    claims = page.sections["claims"]
    for shown in (user["id"], email, "authenticated", "aal1", "session_id", "exp"):
        assert shown in claims, (shown, claims)
    assert "refresh_token" in page.sections["session"]
    # The server confirmed the token: GET /user answered with the now confirmed user.
    checked = page.sections["user"]
    assert "200" in checked and user["id"] in checked and email in checked and '"name":"Ada"' in checked
    assert "email_confirmed_at" in checked and "error" not in page.sections


def test_the_welcome_page_shows_a_pkce_code_errors_and_nothing_else(make_server, tmp_path):
    # What the page shows does not depend on the database: one backend is enough.
    server = make_server("sqlite", GOTRUE_SITE_URL=None)
    page = rendered(tmp_path, f"{server.url}{WELCOME}?code=4d1c2a5e-0b6f-4e1b-9d4e-2f1f0c9a7b3d")
    assert "A PKCE code arrived" in page.sections["code"]
    assert "4d1c2a5e-0b6f-4e1b-9d4e-2f1f0c9a7b3d" in page.sections["code"]
    assert "code verifier" in page.sections["code"] and "signed-in" not in page.sections

    error = "#error=access_denied&error_code=otp_expired&error_description=Email+link+is+invalid+or+has+expired"
    page = rendered(tmp_path, f"{server.url}{WELCOME}{error}")
    assert "otp_expired" in page.sections["error"] and "Email link is invalid or has expired" in page.sections["error"]

    page = rendered(tmp_path, f"{server.url}{WELCOME}")
    assert "Nobody signed in yet" in page.sections["empty"]

    # Whatever the token carries is shown as text, never as markup.
    hostile = mint({"sub": "x", "email": '<img src=x id=pwned onerror="document.title=1">'})
    page = rendered(tmp_path, f"{server.url}{WELCOME}#access_token={quote(hostile)}&type=magiclink")
    assert '<img src=x id=pwned' in page.sections["signed-in"]
    assert "img" not in page.tags
    # A token that is not a JWT: said so.
    bogus = b64url(json.dumps({"alg": "none"}).encode()) + ".%%%"
    page = rendered(tmp_path, f"{server.url}{WELCOME}#access_token={quote(bogus)}")
    assert "not a JWT" in page.sections["error"]


def test_the_welcome_page_is_off_once_site_url_is_set_or_mail_is_sent(make_server, backend):
    own_site = make_server(backend)  # the tests' GOTRUE_SITE_URL=http://localhost:3000
    with_smtp = make_server(backend, GOTRUE_SITE_URL=None, GOTRUE_SMTP_HOST="127.0.0.1",
                            GOTRUE_SMTP_PORT=str(free_port()), DATABASE_URL=own_site.db_url)
    assert with_smtp.settings.site_url == "http://localhost:3000"  # upstream's default
    for server in (own_site, with_smtp):
        resp = get(server, WELCOME)
        assert resp.status_code == 404 and resp.json()["error_code"] == "not_found", resp.text

    dev = make_server(backend, GOTRUE_SITE_URL=None, DATABASE_URL=own_site.db_url)
    resp = get(dev, WELCOME)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert resp.headers["cache-control"] == "no-store" and resp.headers["referrer-policy"] == "no-referrer"
    policy = resp.headers["content-security-policy"]
    assert "script-src 'nonce-" in policy and "connect-src 'self'" in policy and "unsafe-eval" not in policy
