"""Every phone method of the published Python client (supabase_auth, sync and async) against a real
server on both stores: sign_up, sign_in_with_password, sign_in_with_otp, verify_otp, update_user,
resend and reauthenticate with a phone. The sync client reads its codes from the texts the fake
Twilio received (tests/sms_vendors.py), the async one from the dev outbox."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from supabase_auth import AsyncGoTrueClient, SyncGoTrueClient
from supabase_auth.errors import AuthApiError, AuthError

from gotrue_lite import clock
from phone_e2e import NO_PROVIDER, PHONE_ENV, outbox, outbox_code, spaced, untested_number, user_row
from sms_vendors import sms_vendor  # noqa: F401 - fixture

PASSWORD = "correct-horse-battery-1"
ENV = {**PHONE_ENV, "GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION": "true"}


@pytest.fixture
def phone_client(make_server, backend, sms_vendor):
    """(server texting through the fake Twilio, the fake, a factory of sync clients)."""
    vendor = sms_vendor("twilio")
    server = make_server(backend, **ENV, **vendor.env())
    clients = []

    def factory():
        client = SyncGoTrueClient(url=server.url, headers={"apikey": server.anon_key},
                                  auto_refresh_token=False, persist_session=False)
        clients.append(client)
        return client

    yield server, vendor, factory
    for client in clients:
        client.close()
    clock.offset = timedelta(0)


def later(seconds: int = 61) -> None:
    """Past GOTRUE_SMS_MAX_FREQUENCY (one minute by default)."""
    clock.offset += timedelta(seconds=seconds)


def test_sync_client_phone_sign_up_sign_in_and_otp(phone_client):
    server, vendor, new_client = phone_client
    client = new_client()
    phone = untested_number()

    res = client.sign_up({"phone": spaced(phone), "password": PASSWORD,
                          "options": {"data": {"via": "sync"}, "channel": "sms"}})
    assert res.session is None and res.user.phone == phone and res.user.phone_confirmed_at is None
    with pytest.raises(AuthApiError) as excinfo:
        client.sign_in_with_password({"phone": phone, "password": PASSWORD})
    assert (excinfo.value.status, excinfo.value.code) == (400, "phone_not_confirmed")

    res = client.verify_otp({"phone": phone, "token": vendor.last(phone).code, "type": "sms"})
    assert res.session is not None and res.user.phone_confirmed_at is not None
    assert res.user.user_metadata == {"via": "sync"}
    assert client.get_session().access_token == res.session.access_token

    res = client.sign_in_with_password({"phone": spaced(phone), "password": PASSWORD})
    assert res.session is not None and res.user.phone == phone

    later()
    otp = client.sign_in_with_otp({"phone": phone, "options": {"should_create_user": False}})
    assert otp.message_id == vendor.last(phone).id and len(vendor.to(phone)) == 2
    res = client.verify_otp({"phone": phone, "token": vendor.last(phone).code, "type": "sms"})
    assert res.session is not None

    # a new number through sign_in_with_otp: a sign-up, {} back
    fresh = untested_number()
    otp = client.sign_in_with_otp({"phone": fresh, "options": {"data": {"k": "v"}}})
    assert otp.message_id is None
    res = client.verify_otp({"phone": fresh, "token": vendor.last(fresh).code, "type": "sms"})
    assert res.user.phone == fresh and res.user.user_metadata == {"k": "v"}

    with pytest.raises(AuthApiError) as excinfo:
        client.sign_in_with_otp({"phone": untested_number(), "options": {"should_create_user": False}})
    assert (excinfo.value.status, excinfo.value.code) == (422, "otp_disabled")
    with pytest.raises(AuthApiError) as excinfo:
        client.verify_otp({"phone": phone, "token": "0", "type": "sms"})
    assert (excinfo.value.status, excinfo.value.code, excinfo.value.message) == (
        403, "otp_expired", "Token has expired or is invalid")
    with pytest.raises(AuthApiError) as excinfo:
        client.sign_up({"phone": "+44 (20) 7946", "password": PASSWORD})
    assert (excinfo.value.status, excinfo.value.code) == (400, "validation_failed")


def test_sync_client_no_provider_is_an_error_and_writes_nothing(make_server, backend):
    server = make_server(backend, **ENV, **NO_PROVIDER)
    client = SyncGoTrueClient(url=server.url, headers={"apikey": server.anon_key},
                              auto_refresh_token=False, persist_session=False)
    phone = untested_number()
    try:
        with pytest.raises(AuthError) as excinfo:
            client.sign_up({"phone": phone, "password": PASSWORD})
        assert excinfo.value.status == 500 and excinfo.value.message == "Unable to get SMS provider"
        with pytest.raises(AuthError) as excinfo:
            client.sign_in_with_otp({"phone": phone})
        assert excinfo.value.status == 500
    finally:
        client.close()
    assert user_row(server, phone) is None


def test_sync_client_phone_change_resend_and_reauthenticate(phone_client):
    server, vendor, new_client = phone_client
    client = new_client()
    phone = untested_number()
    client.sign_up({"phone": phone, "password": PASSWORD})
    later()
    assert client.resend({"type": "sms", "phone": phone}).message_id == vendor.last(phone).id
    assert len(vendor.to(phone)) == 2
    client.verify_otp({"phone": phone, "token": vendor.last(phone).code, "type": "sms"})

    new = untested_number()
    res = client.update_user({"phone": spaced(new)})
    assert res.user.phone == phone and res.user.new_phone == new
    later()
    assert client.resend({"type": "phone_change", "phone": phone}).message_id == vendor.last(new).id
    res = client.verify_otp({"phone": new, "token": vendor.last(new).code, "type": "phone_change"})
    assert res.user.phone == new and res.user.new_phone is None

    later(3600 * 25)  # the session is a day old: a password change needs the nonce
    client.reauthenticate()
    nonce = vendor.last(new).code
    assert len(vendor.to(new)) == 3
    with pytest.raises(AuthApiError) as excinfo:
        client.update_user({"password": "another-pass-22"})
    assert (excinfo.value.status, excinfo.value.code) == (400, "reauthentication_needed")
    with pytest.raises(AuthApiError) as excinfo:
        client.update_user({"password": "another-pass-22", "nonce": "0"})
    assert (excinfo.value.status, excinfo.value.code) == (422, "reauthentication_not_valid")
    res = client.update_user({"password": "another-pass-22", "nonce": nonce})
    assert res.user.id
    fresh = new_client()
    assert fresh.sign_in_with_password({"phone": new, "password": "another-pass-22"}).session is not None


def test_async_client_phone_flows(make_server, backend):
    server = make_server(backend, **ENV)  # no provider: texts land in the dev outbox

    async def flow() -> None:
        client = AsyncGoTrueClient(url=server.url, headers={"apikey": server.anon_key},
                                   auto_refresh_token=False, persist_session=False)
        try:
            phone = untested_number()
            res = await client.sign_up({"phone": phone, "password": PASSWORD, "options": {"data": {"via": "async"}}})
            assert res.session is None and res.user.phone == phone
            res = await client.verify_otp({"phone": spaced(phone), "token": outbox_code(server, phone), "type": "sms"})
            assert res.session is not None and res.user.user_metadata == {"via": "async"}
            res = await client.sign_in_with_password({"phone": phone, "password": PASSWORD})
            assert res.session is not None
            later()
            otp = await client.sign_in_with_otp({"phone": phone})
            assert otp.message_id == outbox(server, phone)[0]["id"]
            res = await client.verify_otp({"phone": phone, "token": outbox_code(server, phone), "type": "sms"})
            assert res.session is not None

            new = untested_number()
            res = await client.update_user({"phone": new})
            assert res.user.new_phone == new
            later()
            assert (await client.resend({"type": "phone_change", "phone": phone})).message_id == outbox(server, new)[0]["id"]
            res = await client.verify_otp({"phone": new, "token": outbox_code(server, new), "type": "phone_change"})
            assert res.user.phone == new
            later(3600 * 25)
            await client.reauthenticate()
            res = await client.update_user({"password": "async-pass-333", "nonce": outbox_code(server, new)})
            assert res.user.phone == new
            with pytest.raises(AuthApiError) as excinfo:
                await client.resend({"type": "sms", "phone": "0"})
            assert (excinfo.value.status, excinfo.value.code) == (400, "validation_failed")
        finally:
            await client.close()

    try:
        asyncio.run(flow())
    finally:
        clock.offset = timedelta(0)
