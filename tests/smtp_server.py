"""A real SMTP server for the end-to-end mail tests: aiosmtpd on 127.0.0.1, collecting what arrives.

`SmtpSink` runs an aiosmtpd Controller (its own thread and loop) on a free port and keeps every
delivered message, parsed with the `email` package into a `Mail` (subject, From, To, text and
HTML parts, links, the OTP code). gotrue-lite sends synchronously inside the request, so once
the HTTP response is in, the mail is in the sink too.
"""

from __future__ import annotations

import datetime
import email
import ipaddress
import os
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from conftest import Server, start_server
from gotrue_lite import clock

SMTP_USER, SMTP_PASS = "mailer", "s3cret-Pa55word"
ADMIN_EMAIL = "noreply@acme.test"
SENDER_NAME = "Acme Auth"

_CODE = re.compile(r"(?<![0-9A-Za-z])(\d{6,10})(?![0-9A-Za-z])")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Hrefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def hrefs_of(html: str) -> list[str]:
    parser = _Hrefs()
    parser.feed(html)
    parser.close()
    return parser.hrefs


@dataclass
class Mail:
    """One delivered message, as the SMTP server saw it."""

    mail_from: str  # envelope sender
    rcpt_tos: list[str]  # envelope recipients
    message: EmailMessage
    raw: bytes
    helo: str
    tls: bool

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def from_(self) -> str:
        return str(self.message["From"])

    @property
    def from_name_and_address(self) -> tuple[str, str]:
        address = self.message["From"].addresses[0]
        return address.display_name, address.addr_spec

    @property
    def to(self) -> str:
        return str(self.message["To"])

    def _part(self, subtype: str) -> str:
        part = self.message.get_body((subtype,))
        return part.get_content().replace("\r\n", "\n") if part is not None else ""

    @property
    def text(self) -> str:
        return self._part("plain")

    @property
    def html(self) -> str:
        return self._part("html")

    @property
    def links(self) -> list[str]:
        """The http(s) hrefs of the HTML part, in order, each once."""
        return list(dict.fromkeys(h for h in hrefs_of(self.html) if h.startswith(("http:", "https:"))))

    @property
    def link(self) -> str:
        """The one action link (…/verify?token=…): in both parts, identical."""
        found = [h for h in self.links if "token=" in h]
        assert len(found) == 1, f"expected one action link in {self.subject!r}: {self.links}"
        assert found[0] in self.text, f"the text part lacks the link {found[0]}:\n{self.text}"
        return found[0]

    @property
    def link_query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.link).query, keep_blank_values=True).items()}

    @property
    def code(self) -> str:
        """The OTP shown in the text part (the same code is in the HTML part)."""
        codes = [c for c in _CODE.findall(self.text)]
        assert codes, f"no code in the text part of {self.subject!r}:\n{self.text}"
        assert codes[-1] in self.html, "the HTML part lacks the code"
        return codes[-1]


@dataclass
class _Handler:
    sink: "SmtpSink"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=policy.default)
        tls = server.transport.get_extra_info("ssl_object") is not None
        self.sink._add(Mail(envelope.mail_from, list(envelope.rcpt_tos), message, raw, session.host_name or "", tls))
        return "250 OK"


@dataclass
class SmtpSink:
    """An aiosmtpd server in a thread; `mails` are the messages delivered so far."""

    port: int = 0
    mails: list[Mail] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)  # (mechanism, user) per AUTH
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    def _add(self, mail: Mail) -> None:
        with self._lock:
            self.mails.append(mail)

    def authenticator(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        self.logins.append((mechanism, auth_data.login.decode()))
        ok = auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASS.encode()
        return AuthResult(success=ok, handled=False)

    def start(self, *, port: int | None = None, with_auth: bool = False, **options: Any) -> "SmtpSink":
        """Listen on `port` (default: a free one); `with_auth` wants LOGIN as SMTP_USER/SMTP_PASS."""
        if with_auth:
            options.update(authenticator=self.authenticator, auth_exclude_mechanism=["PLAIN"])
        self.port = port or free_port()
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    # --- reading ---------------------------------------------------------------------------

    def to(self, address: str) -> list[Mail]:
        """The mails whose envelope recipient is `address`, oldest first."""
        with self._lock:
            return [m for m in self.mails if address.lower() in (r.lower() for r in m.rcpt_tos)]

    def last(self, address: str) -> Mail:
        mails = self.to(address)
        assert mails, f"no mail was delivered to {address} (delivered: {[m.rcpt_tos for m in self.mails]})"
        return mails[-1]

    def one(self, address: str) -> Mail:
        mails = self.to(address)
        assert len(mails) == 1, f"expected one mail to {address}, got {[m.subject for m in mails]}"
        return mails[0]

    def count(self) -> int:
        with self._lock:
            return len(self.mails)


def self_signed_context(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for localhost / 127.0.0.1."""
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
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context


# The configuration of a server that mails through a sink (CONFIG.md §7).
ALLOWED_REDIRECT = "https://app.acme.test"
URI_ALLOW_LIST = "https://app.acme.test/**,https://*.preview.acme.test/cb,https://v[0-9].acme.test/**,https://[!x]*.other.test/cb"


def smtp_env(port: int, **env: str | None) -> dict[str, str | None]:
    return {
        "GOTRUE_SMTP_HOST": "127.0.0.1",
        "GOTRUE_SMTP_PORT": str(port),
        "GOTRUE_SMTP_ADMIN_EMAIL": ADMIN_EMAIL,
        "GOTRUE_SMTP_SENDER_NAME": SENDER_NAME,
        "GOTRUE_MAILER_AUTOCONFIRM": "false",
        "GOTRUE_URI_ALLOW_LIST": URI_ALLOW_LIST,
        # The default budget (30 per hour) would run out in a shared server.
        "GOTRUE_RATE_LIMIT_EMAIL_SENT": "100000",
        **env,
    }


# --- fixtures ------------------------------------------------------------------------------



class MailServer(NamedTuple):
    """A gotrue-lite server and the SMTP sink it delivers to."""

    server: Server
    sink: SmtpSink


@pytest.fixture
def mail_server(make_server):
    """Factory: mail_server(backend, sink_options=None, **env) -> MailServer.

    Starts an SMTP sink and a server on a fresh database that mails through it (smtp_env;
    extra env overrides it, None removes a setting). `sink_options` go to the aiosmtpd
    Controller (tls_context=…, require_starttls=…, with_auth=True, …).
    """
    sinks: list[SmtpSink] = []

    def factory(backend: str, sink_options: dict | None = None, **env: str | None) -> MailServer:
        sink = SmtpSink().start(**(sink_options or {}))
        sinks.append(sink)
        return MailServer(make_server(backend, **smtp_env(sink.port, **env)), sink)

    try:
        yield factory
    finally:
        for sink in sinks:
            sink.stop()


def mail_fixture(sink_options: dict | None = None, **env: str | None):
    """A module-scoped fixture: one mailing server (smtp_env + `env`) per backend, shared by
    the tests of a module, with its own sink. Tests using it take fresh addresses and must not
    depend on the sink being empty.

        strict_mail = mail_fixture(GOTRUE_SMTP_MAX_FREQUENCY="1s")
    """

    @pytest.fixture(scope="module", params=["sqlite", "postgres"])
    def fixture(request, tmp_path_factory, postgres_problem) -> MailServer:
        if request.param == "postgres" and postgres_problem:
            if os.environ.get("GOTRUE_LITE_REQUIRE_POSTGRES") == "1":
                pytest.fail(f"GOTRUE_LITE_REQUIRE_POSTGRES=1 but {postgres_problem}", pytrace=False)
            pytest.skip(postgres_problem)
        sink = SmtpSink().start(**(sink_options or {}))
        try:
            server = start_server(request.param, tmp_path_factory.mktemp(f"mail-{request.param}"),
                                  smtp_env(sink.port, **env))
        except BaseException:
            sink.stop()
            raise
        try:
            yield MailServer(server, sink)
        finally:
            server.stop()
            sink.stop()

    return fixture


# The default mail configuration (autoconfirm off), one server per backend and module.
shared_mail = mail_fixture()


@pytest.fixture(autouse=True)
def _reset_clock():
    """Tests move gotrue_lite.clock.offset; put it back even for shared servers."""
    yield
    clock.offset = datetime.timedelta(0)
