"""GOTRUE_EXTERNAL_EMAIL_AUTHORIZED_ADDRESSES: mail goes only to the listed addresses."""

from __future__ import annotations

import httpx

from gotrue_lite.api.middleware import CTX


def test_only_authorized_addresses_get_mail(make_server, backend):
    server = make_server(backend, GOTRUE_MAILER_AUTOCONFIRM="false",
                         GOTRUE_EXTERNAL_EMAIL_AUTHORIZED_ADDRESSES="team@example.com")
    # A +label is ignored when comparing, as upstream does.
    ok = httpx.post(f"{server.url}/signup", json={"email": "team+qa@example.com", "password": "correct-horse-9"})
    assert ok.status_code == 200, ok.text
    assert httpx.get(f"{server.url}/_dev/mail", params={"email": "team+qa@example.com"}).json()["messages"]

    refused = httpx.post(f"{server.url}/signup", json={"email": "stranger@example.com", "password": "correct-horse-9"})
    assert refused.status_code == 400
    body = refused.json()
    assert body["error_code"] == "email_address_not_authorized"
    assert body["msg"] == 'Email address "stranger@example.com" cannot be used as it is not authorized'
    # Nothing was kept of the refused sign-up: no user without the mail that confirms it.
    db = server.app[CTX].db
    assert server.run(db.fetch_val("SELECT count(*) FROM users WHERE email = $1", "stranger@example.com")) == 0
    assert not httpx.get(f"{server.url}/_dev/mail", params={"email": "stranger@example.com"}).json()["messages"]
