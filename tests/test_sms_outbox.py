"""The development outbox: with no SMS provider and the API on loopback, SMS are kept with the dev
mail, announced in the log (never the code), and shown by /_dev/mail (JSON and page, also under /auth/v1); otherwise it is off.

The phone flows call `ctx.sms.send(...)`; until they exist here these tests make that same call on
the running server's own Sms (its loop, its database)."""

from __future__ import annotations

import logging

import pytest

from email_e2e import get, signup_unconfirmed
from gotrue_lite.api.middleware import CTX
from gotrue_lite.sms import SmsError
from helpers import new_email, rows
from sms_vendors import sms_vendor  # noqa: F401
from test_email_devmail import anchors_of, chromium


def sms_of(server):
    return server.app[CTX].sms


def deliver(server, phone: str, code: str, channel: str = "sms") -> str:
    return server.run(sms_of(server).send(phone, f"Your code is {code}", channel, code))


def test_outbox_keeps_sms_with_the_dev_mail_on_both_stores(make_server, backend, caplog):
    server = make_server(backend, GOTRUE_MAILER_AUTOCONFIRM="false")
    sms = sms_of(server)
    assert sms.configured and sms.sender.name == "dev_outbox" and not sms.verifies_otp
    with caplog.at_level(logging.INFO, logger="gotrue_lite.mail"):
        first = deliver(server, "15551230001", "123456")
        second = deliver(server, "15551230002", "654321", channel="whatsapp")
    assert first != second
    email = new_email("beside")
    signup_unconfirmed(server, email)

    resp = get(server, "/_dev/mail")
    assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store"
    newest = resp.json()["messages"]
    assert [m["channel"] for m in newest[:3]] == ["email", "whatsapp", "sms"]
    mail, whatsapp, sms_entry = newest[:3]
    assert sms_entry == {**sms_entry, "id": first, "kind": "sms", "to": "15551230001", "subject": "",
                         "text": "Your code is 123456", "html": "", "links": [], "code": "123456"}
    assert whatsapp["to"] == "15551230002" and whatsapp["code"] == "654321" and whatsapp["kind"] == "whatsapp"
    # The mail's code is there too, beside its links.
    assert mail["to"] == email and mail["code"] and len(mail["code"]) == 6 and mail["code"] in mail["text"]

    # One number, in any spelling upstream accepts; also under /auth/v1.
    for path in ("/_dev/mail", "/auth/v1/_dev/mail"):
        only = get(server, path, params={"phone": "+1 555 123 0001"}).json()["messages"]
        assert [m["id"] for m in only] == [first], path
    # Kept in the database, next to the mail.
    stored = rows(server, "SELECT channel, recipient, code FROM gotrue_lite_dev_mail WHERE channel <> 'email' "
                          "ORDER BY created_at")
    assert [(r["channel"], r["recipient"], r["code"]) for r in stored] == [
        ("sms", "15551230001", "123456"), ("whatsapp", "15551230002", "654321")]
    # And announced in the log, never with the code.
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dev outbox:")]
    assert logged == ["dev outbox: sms to +15551230001; read it at /_dev/mail/",
                      "dev outbox: whatsapp to +15551230002; read it at /_dev/mail/"]


def test_outbox_page_shows_sms_and_codes_first_in_the_browser(make_server, tmp_path):
    # What the browser paints does not depend on the database: one backend is enough.
    server = make_server("sqlite", GOTRUE_MAILER_AUTOCONFIRM="false")
    email = new_email("page")
    signup_unconfirmed(server, email)
    deliver(server, "447700900123", "246810")
    mail = get(server, "/_dev/mail", params={"email": email}).json()["messages"][0]

    for path in ("/_dev/mail/", "/auth/v1/_dev/mail/"):
        dom = chromium(tmp_path, f"{server.url}{path}", "--dump-dom").stdout
        assert "Dev mailbox" in dom, path
        sms_article, mail_article = dom.split("<article")[1:3]
        assert 'class="sms"' in sms_article and ">SMS</span>" in sms_article
        assert "To +447700900123" in sms_article and "Your code is 246810" in sms_article
        assert "<output>246810</output>" in sms_article
        # The mail's code and link come before its (collapsed) text.
        assert f"<output>{mail['code']}</output>" in mail_article
        code_at, link_at = mail_article.index("<output>"), mail_article.index("<a href=")
        assert code_at < link_at < mail_article.index("<details>")
        (link,) = [href for href, _ in anchors_of(mail_article) if "/verify?" in href]
        assert link in mail["links"]

    only = get(server, "/_dev/mail/", params={"phone": "447700900123"}).text
    assert "Your code is 246810" in only and email not in only
    shot = tmp_path / "outbox.png"  # painted, not only parsed
    chromium(tmp_path, f"{server.url}/_dev/mail/", f"--screenshot={shot}", "--window-size=1000,800")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("vendor_name", ["twilio", "twilio_verify", "messagebird", "textlocal", "vonage"])
def test_a_real_provider_turns_the_outbox_off(make_server, backend, sms_vendor, vendor_name):
    vendor = sms_vendor(vendor_name)
    server = make_server(backend, GOTRUE_MAILER_AUTOCONFIRM="false", **vendor.env())
    sms = sms_of(server)
    assert sms.sender.name == vendor_name
    deliver(server, "15551230003", "135790")
    delivered = vendor.last("15551230003")
    if vendor_name == "twilio_verify":
        # Twilio's own code, checked by Twilio.
        assert server.run(sms.verify("15551230003", delivered.code)) is True
    else:
        assert delivered.code == "135790" and delivered.text == "Your code is 135790"
    assert [m for m in get(server, "/_dev/mail").json()["messages"] if m["channel"] != "email"] == []
    assert rows(server, "SELECT id FROM gotrue_lite_dev_mail WHERE channel <> 'email'") == []


@pytest.mark.parametrize("env", [
    {"GOTRUE_API_HOST": "0.0.0.0"},  # listening on the network
    {"GOTRUE_SMTP_HOST": "127.0.0.1", "GOTRUE_SMTP_PORT": "1"},  # a real mail set-up: no dev mailbox
    {"GOTRUE_SMS_PROVIDER": "twilio"},  # named but without credentials: upstream's 500, never the outbox
])
def test_without_the_dev_mailbox_or_with_a_provider_named_there_is_no_outbox(make_server, env):
    server = make_server("sqlite", **env)
    sms = sms_of(server)
    assert not sms.configured
    with pytest.raises(SmsError, match="^Unable to get SMS provider$"):
        deliver(server, "15551230004", "111222")
    assert rows(server, "SELECT id FROM gotrue_lite_dev_mail") == []


def test_dev_mailbox_asked_for_on_a_public_address_keeps_sms_too(make_server):
    server = make_server("sqlite", GOTRUE_API_HOST="0.0.0.0", GOTRUE_LITE_DEV_MAILBOX="true")
    deliver(server, "15551230005", "999000")
    (entry,) = get(server, "/auth/v1/_dev/mail", params={"phone": "15551230005"}).json()["messages"]
    assert entry["code"] == "999000"
