"""End to end: the development mailbox (no SMTP host, loopback API) as JSON and as a page that
a real browser (headless Chromium) renders with clickable links."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from email_e2e import follow, get, post, session_from_redirect, signup_unconfirmed
from helpers import PASSWORD, new_email
from smtp_server import _reset_clock, free_port  # noqa: F401

SITE_URL = "http://localhost:3000"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class _Anchors(HTMLParser):
    """(href, text) of every <a> in a document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[str, str]] = []
        self._open: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._open.append((dict(attrs).get("href") or "", []))

    def handle_data(self, data):
        for _, parts in self._open:
            parts.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._open:
            href, parts = self._open.pop()
            self.anchors.append((href, "".join(parts).strip()))


def anchors_of(html: str) -> list[tuple[str, str]]:
    parser = _Anchors()
    parser.feed(html)
    parser.close()
    return parser.anchors


def chromium(tmp_path, url: str, *flags: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.skip("headless Chromium not installed (Debian: apt-get install -y chromium)")
    profile = tmp_path / "chromium-profile"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={profile}", *flags, url]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish within 90 s: {' '.join(command)}")
    assert done.returncode == 0, f"chromium failed ({done.returncode}): {done.stderr[-2000:]}"
    return done


@pytest.fixture
def dev_server(make_server, backend):
    """No SMTP host and the API on loopback (the test default): the dev mailbox is on."""
    return make_server(backend, GOTRUE_MAILER_AUTOCONFIRM="false")


def test_signup_mail_lands_in_the_dev_mailbox_and_its_link_works(dev_server, tmp_path):
    server = dev_server
    email = new_email("devbox")
    user = signup_unconfirmed(server, email)

    resp = get(server, "/_dev/mail", params={"email": email})
    assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store", resp.text
    (message,) = resp.json()["messages"]
    assert message["to"] == email and message["kind"] == "confirmation"
    assert message["subject"] == "Confirm your email address"
    (link,) = [link for link in message["links"] if "/verify?" in link]
    assert link.startswith(f"{server.url}/verify?token=") and link.endswith(f"&type=signup&redirect_to={SITE_URL}")
    assert link in message["text"] and link.replace("&", "&amp;") in message["html"]
    # Everything else goes to the unfiltered list too.
    other = new_email("other")
    signup_unconfirmed(server, other)
    everything = get(server, "/_dev/mail").json()["messages"]
    assert [m["to"] for m in everything[:2]] == [other, email]

    # The page, as a browser renders it: one entry per mail, the link clickable.
    page = get(server, "/_dev/mail/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    dom = chromium(tmp_path, f"{server.url}/_dev/mail/", "--dump-dom").stdout
    assert "Dev mailbox" in dom and "Confirm your email address" in dom and email in dom
    anchors = anchors_of(dom)
    assert (link, link) in anchors, anchors
    assert any(href.startswith(f"{server.url}/verify?") and other in dom for href, _ in anchors)
    filtered = anchors_of(get(server, "/_dev/mail/", params={"email": email}).text)
    assert [href for href, _ in filtered if "/verify?" in href] == [link]

    # Clicking it (the href taken from the rendered DOM) signs the user in.
    session = session_from_redirect(follow(link), SITE_URL, "signup")
    assert session["access_token"]
    assert get(server, "/user", headers={"Authorization": f"Bearer {session['access_token']}"}).json()["id"] == user["id"]


def test_dev_mailbox_page_screenshot(make_server, tmp_path):
    # What the browser paints does not depend on the database: one backend is enough.
    server = make_server("sqlite", GOTRUE_MAILER_AUTOCONFIRM="false")
    signup_unconfirmed(server, new_email("shot"))
    shot = tmp_path / "mailbox.png"
    chromium(tmp_path, f"{server.url}/_dev/mail/", f"--screenshot={shot}", "--window-size=1000,800",
             "--hide-scrollbars")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_dev_mailbox_is_404_with_an_smtp_host_or_a_public_listen_address(make_server, backend):
    with_smtp = make_server(backend, GOTRUE_MAILER_AUTOCONFIRM="false", GOTRUE_SMTP_HOST="127.0.0.1",
                            GOTRUE_SMTP_PORT=str(free_port()))
    public = make_server(backend, GOTRUE_MAILER_AUTOCONFIRM="false", GOTRUE_API_HOST="0.0.0.0",
                         DATABASE_URL=with_smtp.db_url)  # one database for both
    for server in (with_smtp, public):
        for path in ("/_dev/mail", "/_dev/mail/", "/_dev/mail.html"):
            resp = get(server, path)
            assert resp.status_code == 404, (server.env.get("GOTRUE_API_HOST"), path, resp.text)
    # Without SMTP and without the mailbox, mail is dropped but the flow goes on.
    resp = post(public, "/signup", {"email": new_email("dropped"), "password": PASSWORD})
    assert resp.status_code == 200 and resp.json()["confirmation_sent_at"], resp.text
