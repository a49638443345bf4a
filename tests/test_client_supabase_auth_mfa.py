"""MFA through the published Python client (supabase_auth): TOTP with pyotp codes, assurance
levels, unenrol and the admin factor API, on both stores."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pyotp
import pytest
from supabase_auth import SyncGoTrueClient
from supabase_auth.errors import AuthApiError

from helpers import claims_of, rows

PASSWORD = "correct-horse-battery-1"


@pytest.fixture
def client_for():
    clients: list[SyncGoTrueClient] = []

    def factory(server, key: str | None = None) -> SyncGoTrueClient:
        key = key or server.anon_key
        client = SyncGoTrueClient(url=server.url, headers={"apikey": key, "Authorization": f"Bearer {key}"},
                                  auto_refresh_token=False, persist_session=False)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


def api_error(excinfo) -> tuple[int, str | None]:
    return excinfo.value.status, excinfo.value.code


def test_supabase_auth_mfa_totp(server, client_for):
    email = f"mfa-{uuid.uuid4().hex[:12]}@example.com"
    main = client_for(server)
    user_id = main.sign_up({"email": email, "password": PASSWORD}).user.id
    aal = main.mfa.get_authenticator_assurance_level()
    assert (aal.current_level, aal.next_level) == ("aal1", "aal1")

    enrolled = main.mfa.enroll({"factor_type": "totp", "friendly_name": "phone app", "issuer": "Example"})
    assert enrolled.type == "totp" and enrolled.totp.qr_code.startswith("data:image/svg+xml;utf-8,<?xml")
    totp = pyotp.TOTP(enrolled.totp.secret)
    assert pyotp.parse_uri(enrolled.totp.uri).secret == enrolled.totp.secret
    with pytest.raises(AuthApiError) as excinfo:
        main.mfa.enroll({"factor_type": "totp", "friendly_name": "phone app"})
    assert api_error(excinfo) == (422, "mfa_factor_name_conflict")

    challenge = main.mfa.challenge({"factor_id": enrolled.id})
    assert challenge.id and challenge.expires_at > 0
    with pytest.raises(AuthApiError) as excinfo:
        main.mfa.verify({"factor_id": enrolled.id, "challenge_id": challenge.id,
                         "code": "000000" if totp.now() != "000000" else "111111"})
    assert api_error(excinfo) == (422, "mfa_verification_failed")
    used = totp.now()
    verified = main.mfa.verify({"factor_id": enrolled.id, "challenge_id": challenge.id, "code": used})
    assert claims_of(verified.access_token)["aal"] == "aal2"
    aal = main.mfa.get_authenticator_assurance_level()
    assert (aal.current_level, aal.next_level) == ("aal2", "aal2")
    assert [m.method for m in aal.current_authentication_methods] == ["totp", "password"]
    factors = main.mfa.list_factors()
    assert [f.id for f in factors.totp] == [enrolled.id] and factors.all[0].status == "verified"
    refreshed = main.refresh_session()
    assert claims_of(refreshed.session.access_token)["aal"] == "aal2"

    # A new sign-in: aal1 now, aal2 next; stepping up with challenge_and_verify.
    later = client_for(server)
    later.sign_in_with_password({"email": email, "password": PASSWORD})
    aal = later.mfa.get_authenticator_assurance_level()
    assert (aal.current_level, aal.next_level) == ("aal1", "aal2")
    with pytest.raises(AuthApiError) as excinfo:
        later.mfa.unenroll({"factor_id": enrolled.id})
    assert api_error(excinfo) == (422, "insufficient_aal")
    # A spent code is refused even through a new challenge; the next one (inside the window) works.
    with pytest.raises(AuthApiError) as excinfo:
        later.mfa.challenge_and_verify({"factor_id": enrolled.id, "code": used})
    assert api_error(excinfo) == (422, "mfa_verification_failed")
    later.mfa.challenge_and_verify({"factor_id": enrolled.id, "code": totp.at(time.time() + 30)})
    assert later.mfa.get_authenticator_assurance_level().current_level == "aal2"

    # The admin sees and deletes factors.
    admin = client_for(server, server.service_role_key).admin
    spare = later.mfa.enroll({"factor_type": "totp", "friendly_name": "spare"})
    listed = admin.mfa.list_factors({"user_id": user_id})
    assert {f.friendly_name for f in listed} == {"phone app", "spare"}
    assert admin.mfa.delete_factor({"user_id": user_id, "id": spare.id}).id == spare.id
    with pytest.raises(AuthApiError) as excinfo:
        admin.mfa.delete_factor({"user_id": user_id, "id": spare.id})
    assert api_error(excinfo) == (404, "mfa_factor_not_found")

    assert later.mfa.unenroll({"factor_id": enrolled.id}).id == enrolled.id
    after = later.refresh_session()
    assert claims_of(after.session.access_token)["aal"] == "aal1"
    assert later.mfa.list_factors().all == []
    assert rows(server, "SELECT id FROM mfa_factors WHERE user_id = $1", user_id) == []


def test_supabase_auth_mfa_phone(make_server, backend, client_for):
    server = make_server(backend, GOTRUE_MFA_PHONE_ENROLL_ENABLED="true", GOTRUE_MFA_PHONE_VERIFY_ENABLED="true")
    client = client_for(server)
    client.sign_up({"email": f"mfa-{uuid.uuid4().hex[:12]}@example.com", "password": PASSWORD})
    enrolled = client.mfa.enroll({"factor_type": "phone", "phone": "+15550103456", "friendly_name": "mobile"})
    assert enrolled.type == "phone"
    challenge = client.mfa.challenge({"factor_id": enrolled.id})
    messages = httpx.get(server.url + "/_dev/mail", params={"phone": "15550103456"}, timeout=60).json()["messages"]
    verified = client.mfa.verify({"factor_id": enrolled.id, "challenge_id": challenge.id, "code": messages[0]["code"]})
    claims = claims_of(verified.access_token)
    assert claims["aal"] == "aal2" and claims["amr"][0]["method"] == "mfa/phone"
    assert [f.id for f in client.mfa.list_factors().phone] == [enrolled.id]
    assert client.mfa.get_authenticator_assurance_level().current_level == "aal2"


def test_async_client_mfa_totp(server):
    from supabase_auth import AsyncGoTrueClient

    async def flow() -> None:
        client = AsyncGoTrueClient(url=server.url, auto_refresh_token=False, persist_session=False,
                                   headers={"apikey": server.anon_key})
        try:
            await client.sign_up({"email": f"mfa-{uuid.uuid4().hex[:12]}@example.com", "password": PASSWORD})
            enrolled = await client.mfa.enroll({"factor_type": "totp", "friendly_name": "app"})
            verified = await client.mfa.challenge_and_verify(
                {"factor_id": enrolled.id, "code": pyotp.TOTP(enrolled.totp.secret).now()})
            assert claims_of(verified.access_token)["aal"] == "aal2"
            aal = await client.mfa.get_authenticator_assurance_level()
            assert (aal.current_level, aal.next_level) == ("aal2", "aal2")
            assert [f.id for f in (await client.mfa.list_factors()).totp] == [enrolled.id]
            assert (await client.mfa.unenroll({"factor_id": enrolled.id})).id == enrolled.id
        finally:
            await client.close()

    asyncio.run(flow())
