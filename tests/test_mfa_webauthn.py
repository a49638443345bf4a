"""WebAuthn factors (PHONE-MFA.md §8-§9) with a software authenticator making real `none`
attestations and ES256 assertions: registration, assertion, and refused answers, both stores."""

from __future__ import annotations

import uuid

import httpx
import pytest

from helpers import assert_error, bearer, claims_of, rows, sign_in, signup_session
from webauthn_authenticator import SoftAuthenticator, b64url

TIMEOUT = 60
ORIGIN = "http://localhost:3000"
WEBAUTHN_ON = {"GOTRUE_MFA_WEB_AUTHN_ENROLL_ENABLED": "true", "GOTRUE_MFA_WEB_AUTHN_VERIFY_ENABLED": "true",
               "GOTRUE_WEBAUTHN_RP_ID": "localhost", "GOTRUE_WEBAUTHN_RP_DISPLAY_NAME": "Example",
               "GOTRUE_WEBAUTHN_RP_ORIGINS": ORIGIN}


def call(server, method: str, path: str, token: str, body=None) -> httpx.Response:
    return httpx.request(method, server.url + path, json=body, headers=bearer(token), timeout=TIMEOUT)


def verify(server, token, factor_id, challenge_id, kind, response) -> httpx.Response:
    return call(server, "POST", f"/factors/{factor_id}/verify", token,
                {"challenge_id": challenge_id, "webauthn": {"type": kind, "credential_response": response}})


@pytest.fixture
def webauthn_server(make_server, backend):
    return make_server(backend, **WEBAUTHN_ON)


def register(server, token) -> tuple[str, SoftAuthenticator, dict]:
    factor = call(server, "POST", "/factors", token, {"factor_type": "webauthn", "friendly_name": "key"}).json()
    ch = call(server, "POST", f"/factors/{factor['id']}/challenge", token, {}).json()
    device = SoftAuthenticator(ORIGIN)
    resp = verify(server, token, factor["id"], ch["id"], "create", device.create(ch["webauthn"]["credential_options"]["publicKey"]))
    assert resp.status_code == 200, resp.text
    return factor["id"], device, resp.json()


def test_register_then_assert(webauthn_server):
    server = webauthn_server
    email_session = signup_session(server)
    token = email_session["access_token"]
    resp = call(server, "POST", "/factors", token, {"factor_type": "webauthn", "friendly_name": "yubikey"})
    assert resp.status_code == 200, resp.text
    factor = resp.json()
    assert factor == {"id": factor["id"], "type": "webauthn", "friendly_name": "yubikey"}

    ch = call(server, "POST", f"/factors/{factor['id']}/challenge", token, {"webauthn": {"rpId": "x"}})
    assert ch.status_code == 200, ch.text
    ch = ch.json()
    assert ch["type"] == "webauthn" and ch["webauthn"]["type"] == "create"
    options = ch["webauthn"]["credential_options"]["publicKey"]
    assert options["rp"] == {"name": "Example", "id": "localhost"}
    assert options["user"]["id"] == b64url(email_session["user"]["id"].encode())
    assert options["user"]["name"] == email_session["user"]["email"] and options["attestation"] == "none"

    device = SoftAuthenticator(ORIGIN)
    attestation = device.create(options)
    # Answers that must be refused, nothing written: wrong origin, wrong RP, another challenge,
    # malformed data, a login answer to a registration challenge.
    for bad in (SoftAuthenticator("https://evil.example").create(options),
                SoftAuthenticator(ORIGIN).create(options, rp_id="evil.example"),
                SoftAuthenticator(ORIGIN).create({**options, "challenge": b64url(b"x" * 32)})):
        assert_error(verify(server, token, factor["id"], ch["id"], "create", bad), 422, "mfa_verification_failed")
    assert_error(verify(server, token, factor["id"], ch["id"], "create", {"id": "x", "response": {}}), 400,
                 "validation_failed", "Invalid credential_response")
    assert_error(verify(server, token, factor["id"], ch["id"], "request", attestation), 422, "mfa_verification_failed")
    assert_error(verify(server, token, factor["id"], ch["id"], "sign", attestation), 400, "validation_failed",
                 "WebAuthn type must be create or request")
    assert_error(call(server, "POST", f"/factors/{factor['id']}/verify", token, {"challenge_id": ch["id"]}), 400,
                 "validation_failed", "WebAuthn config required")
    assert_error(call(server, "POST", f"/factors/{factor['id']}/verify", token,
                      {"challenge_id": ch["id"], "webauthn": {"type": "create"}}), 400, "validation_failed",
                 "credential_response required")
    assert rows(server, "SELECT status, web_authn_credential FROM mfa_factors WHERE id = $1", factor["id"]) == [
        {"status": "unverified", "web_authn_credential": None}]

    resp = verify(server, token, factor["id"], ch["id"], "create", attestation)
    assert resp.status_code == 200, resp.text
    claims = claims_of(resp.json()["access_token"])
    assert claims["aal"] == "aal2" and claims["amr"][0]["method"] == "mfa/webauthn"
    [row] = rows(server, "SELECT status, web_authn_credential, web_authn_aaguid FROM mfa_factors WHERE id = $1",
                 factor["id"])
    assert row["status"] == "verified" and row["web_authn_aaguid"] == str(uuid.UUID(int=0))
    assert row["web_authn_credential"]["authenticator"]["signCount"] == 1
    # The challenge is gone: a replayed attestation finds nothing.
    assert_error(verify(server, token, factor["id"], ch["id"], "create", attestation), 422, "mfa_factor_not_found")

    # A later sign-in steps up with an assertion.
    later = sign_in(server, email_session["user"]["email"]).json()["access_token"]
    ch = call(server, "POST", f"/factors/{factor['id']}/challenge", later, {}).json()
    assert ch["webauthn"]["type"] == "request"
    request_options = ch["webauthn"]["credential_options"]["publicKey"]
    assert [c["id"] for c in request_options["allowCredentials"]] == [b64url(device.credential_id)]
    # An assertion by another key, or signed over another challenge, is refused.
    impostor = SoftAuthenticator(ORIGIN)
    impostor.credential_id = device.credential_id
    assert_error(verify(server, later, factor["id"], ch["id"], "request", impostor.get(request_options)), 422,
                 "mfa_verification_failed")
    stale = device.get({**request_options, "challenge": b64url(b"y" * 32)})
    assert_error(verify(server, later, factor["id"], ch["id"], "request", stale), 422, "mfa_verification_failed")
    resp = verify(server, later, factor["id"], ch["id"], "request", device.get(request_options))
    assert resp.status_code == 200, resp.text
    assert claims_of(resp.json()["access_token"])["aal"] == "aal2"

    # A replayed sign count (a cloned key) is refused.
    ch = call(server, "POST", f"/factors/{factor['id']}/challenge", later, {}).json()
    opts = ch["webauthn"]["credential_options"]["publicKey"]
    assert_error(verify(server, later, factor["id"], ch["id"], "request", device.get(opts, sign_count=1)), 422,
                 "mfa_verification_failed")


def test_webauthn_switches_and_configuration(make_server, backend):
    server = make_server(backend)
    token = signup_session(server)["access_token"]
    assert_error(call(server, "POST", "/factors", token, {"factor_type": "webauthn"}), 422,
                 "mfa_webauthn_enroll_not_enabled", "MFA enroll is disabled for WebAuthn")
    unconfigured = make_server(backend, GOTRUE_MFA_WEB_AUTHN_ENROLL_ENABLED="true",
                               GOTRUE_MFA_WEB_AUTHN_VERIFY_ENABLED="true")
    token = signup_session(unconfigured)["access_token"]
    factor = call(unconfigured, "POST", "/factors", token, {"factor_type": "webauthn"}).json()
    assert_error(call(unconfigured, "POST", f"/factors/{factor['id']}/challenge", token, {}), 500, "unexpected_failure")


def test_another_users_webauthn_factor(webauthn_server):
    server = webauthn_server
    owner = signup_session(server)["access_token"]
    factor_id, device, _session = register(server, owner)
    intruder = signup_session(server)["access_token"]
    assert_error(call(server, "POST", f"/factors/{factor_id}/challenge", intruder, {}), 404, "mfa_factor_not_found")
    # The intruder's own factor cannot be verified with the owner's key either.
    own = call(server, "POST", "/factors", intruder, {"factor_type": "webauthn", "friendly_name": "mine"}).json()
    ch = call(server, "POST", f"/factors/{own['id']}/challenge", intruder, {}).json()
    options = ch["webauthn"]["credential_options"]["publicKey"]
    assert options["excludeCredentials"] == []
    resp = verify(server, intruder, own["id"], ch["id"], "request", device.get({"rpId": "localhost",
                                                                                "challenge": options["challenge"]}))
    assert_error(resp, 422, "mfa_verification_failed")
