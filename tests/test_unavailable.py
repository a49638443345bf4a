"""Endpoints gotrue-lite does not implement yet answer exactly as upstream does with the
feature switched off (gotrue_lite/api/unavailable.py): status, error_code and message, in the
legacy envelope and in the 2024-01-01 one, at the root and under /auth/v1."""

from __future__ import annotations

import base64
import json
import uuid
import pytest

from helpers import (  # noqa: F401 - shared is a fixture
    V2, assert_both_envelopes, assert_error, new_email, route_request as request, shared, signup_session, sql,
    utcnow,
)

SOME_UUID = "1c6c7e6a-7b7e-4a8e-9f52-6a1b7d0e9b3a"


@pytest.fixture(scope="module")
def user(shared):
    """A signed-in user of the shared server: its session response."""
    return signup_session(shared, new_email("stub"))


def token_of(server, role: str) -> str | None:
    return {"none": None, "admin": server.service_role_key}.get(role)


# --- web3 grant (the id_token grant is built: tests/test_id_token.py) --------------------------


def test_web3_grant_is_disabled_before_the_body_is_read(shared):
    for body in ({"chain": "ethereum", "message": "m", "signature": "s"}, {"chain": "bitcoin"}):
        assert_both_envelopes(shared, "POST", "/token?grant_type=web3", 422, "web3_provider_disabled",
                              "Web3 provider is disabled", json=body)
    assert_error(request(shared, "POST", "/token?grant_type=web3", content=b"{not json"), 422,
                 "web3_provider_disabled", "Web3 provider is disabled")


# --- SAML SSO, passkeys, OAuth server, SCIM -------------------------------------------------


@pytest.mark.parametrize("method, path, status, code, message", [
    ("POST", "/sso", 404, "saml_provider_disabled", "SAML 2.0 is disabled"),
    ("GET", "/sso/saml/metadata", 404, "saml_provider_disabled", "SAML 2.0 is disabled"),
    ("POST", "/sso/saml/acs", 404, "saml_provider_disabled", "SAML 2.0 is disabled"),
    ("POST", "/passkeys/authentication/options", 404, "passkey_disabled", "Passkeys are disabled"),
    ("POST", "/passkeys/authentication/verify", 404, "passkey_disabled", "Passkeys are disabled"),
    ("POST", "/passkeys/registration/options", 404, "passkey_disabled", "Passkeys are disabled"),
    ("GET", "/passkeys", 404, "passkey_disabled", "Passkeys are disabled"),
    ("PATCH", f"/passkeys/{SOME_UUID}", 404, "passkey_disabled", "Passkeys are disabled"),
    ("DELETE", f"/passkeys/{SOME_UUID}", 404, "passkey_disabled", "Passkeys are disabled"),
    ("GET", "/oauth/authorize?client_id=x", 404, "feature_disabled", "OAuth server is disabled"),
    ("POST", "/oauth/token", 404, "feature_disabled", "OAuth server is disabled"),
    ("POST", "/oauth/clients/register", 404, "feature_disabled", "OAuth server is disabled"),
    ("GET", "/oauth/userinfo", 404, "feature_disabled", "OAuth server is disabled"),
    ("GET", "/.well-known/oauth-authorization-server", 404, "feature_disabled", "OAuth server is disabled"),
    ("GET", "/scim/v2/Users", 404, "feature_disabled", "SCIM server is disabled"),
])
def test_switched_off_groups(shared, method, path, status, code, message):
    """Upstream's group middleware answers before authentication or body parsing."""
    assert_both_envelopes(shared, method, path, status, code, message, content=b"{not json")


def test_user_oauth_grants_authenticate_first(shared, user):
    for method in ("GET", "DELETE"):
        assert_both_envelopes(shared, method, "/user/oauth/grants", 401, "no_authorization",
                              "This endpoint requires a valid Bearer token")
        assert_both_envelopes(shared, method, "/user/oauth/grants", 404, "feature_disabled",
                              "OAuth server is disabled", token=user["access_token"])


@pytest.mark.parametrize("method, path, message", [
    ("GET", "/admin/oauth/clients", "OAuth server is disabled"),
    ("POST", "/admin/oauth/clients", "OAuth server is disabled"),
    ("DELETE", f"/admin/oauth/clients/{SOME_UUID}", "OAuth server is disabled"),
])
def test_admin_groups_switched_off(shared, user, method, path, message):
    assert_both_envelopes(shared, method, path, 401, "no_authorization", "This endpoint requires a valid Bearer token")
    assert_both_envelopes(shared, method, path, 403, "not_admin", "User not allowed", token=user["access_token"])
    assert_both_envelopes(shared, method, path, 404, "feature_disabled", message, token=shared.service_role_key)


def test_admin_sso_providers(shared, user):
    admin = shared.service_role_key
    resp = request(shared, "GET", "/admin/sso/providers", token=admin)
    assert resp.status_code == 200 and resp.json() == {"items": []}
    assert_both_envelopes(shared, "GET", "/admin/sso/providers", 403, "not_admin", "User not allowed",
                          token=user["access_token"])
    for method in ("GET", "PUT", "DELETE"):
        for idp in (SOME_UUID, "not-a-uuid", "resource_acme"):
            assert_both_envelopes(shared, method, f"/admin/sso/providers/{idp}", 404, "sso_provider_not_found",
                                  "SSO Identity Provider not found", token=admin, json={})
    for body, message in (
        ({}, "Only 'saml' supported for SSO provider type"),
        ({"type": "oidc"}, "Only 'saml' supported for SSO provider type"),
        ({"type": "saml"}, "Either metadata_xml or metadata_url must be set"),
        ({"type": "saml", "metadata_xml": "<x/>", "metadata_url": "https://idp.example/m"},
         "Only one of metadata_xml or metadata_url needs to be set"),
        ({"type": "saml", "metadata_url": "http://idp.example/m"}, "metadata_url is not a HTTPS URL"),
        ({"type": "saml", "metadata_url": "idp.example"}, "metadata_url is not a valid URL"),
    ):
        assert_both_envelopes(shared, "POST", "/admin/sso/providers", 400, "validation_failed", message,
                              token=admin, json=body)
    assert_both_envelopes(shared, "POST", "/admin/sso/providers", 404, "saml_provider_disabled",
                          "SAML 2.0 is disabled", token=admin,
                          json={"type": "saml", "metadata_url": "https://idp.example/metadata"})


def test_admin_sso_provider_rows_from_another_server(shared):
    """Providers a Go server stored are listed, shown and deletable."""
    admin = shared.service_role_key
    idp = str(uuid.uuid4())
    now = utcnow()
    sql(shared, "INSERT INTO sso_providers (id, resource_id, created_at, updated_at) VALUES ($1, $2, $3, $3)",
        idp, f"acme-{idp[:8]}", now)
    sql(shared, "INSERT INTO saml_providers (id, sso_provider_id, entity_id, metadata_xml, created_at, updated_at) "
                "VALUES ($1, $2, $3, '<EntityDescriptor/>', $4, $4)", str(uuid.uuid4()), idp,
        f"https://idp.example/{idp}", now)
    sql(shared, "INSERT INTO sso_domains (id, sso_provider_id, domain, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $4)", str(uuid.uuid4()), idp, f"{idp[:8]}.example.com", now)

    listed = request(shared, "GET", f"/admin/sso/providers?resource_id=acme-{idp[:8]}", token=admin).json()["items"]
    assert [item["id"] for item in listed] == [idp]
    assert listed[0]["saml"]["entity_id"] == f"https://idp.example/{idp}"
    assert "metadata_xml" not in listed[0]["saml"]
    assert listed[0]["domains"] == [{"domain": f"{idp[:8]}.example.com"}]

    shown = request(shared, "GET", f"/admin/sso/providers/resource_acme-{idp[:8]}", token=admin)
    assert shown.status_code == 200 and shown.json()["saml"]["metadata_xml"] == "<EntityDescriptor/>"
    deleted = request(shared, "DELETE", f"/admin/sso/providers/{idp}", token=admin)
    assert deleted.status_code == 200 and deleted.json()["id"] == idp
    assert_error(request(shared, "GET", f"/admin/sso/providers/{idp}", token=admin), 404, "sso_provider_not_found")


def test_admin_passkeys(shared, user):
    admin, user_id = shared.service_role_key, user["user"]["id"]
    resp = request(shared, "GET", f"/admin/users/{user_id}/passkeys", token=admin)
    assert resp.status_code == 200 and resp.json() == []
    assert_both_envelopes(shared, "DELETE", f"/admin/users/{user_id}/passkeys/{SOME_UUID}", 404,
                          "validation_failed", "Passkey not found", token=admin)
    assert_both_envelopes(shared, "GET", f"/admin/users/{SOME_UUID}/passkeys", 404, "user_not_found",
                          "User not found", token=admin)
    assert_both_envelopes(shared, "GET", "/admin/users/nope/passkeys", 404, "validation_failed",
                          "user_id must be an UUID", token=admin)


# --- phone OTP, well-known ------------------------------------------------------------------


def test_phone_otp_with_the_phone_provider_disabled(shared):
    assert_both_envelopes(shared, "POST", "/otp", 400, "phone_provider_disabled", "Unsupported phone provider",
                          json={"phone": "+15555550123"})


def test_openid_configuration_is_served(shared):
    for prefix in ("", "/auth/v1"):
        resp = request(shared, "GET", "/.well-known/openid-configuration", prefix=prefix)
        assert resp.status_code == 200
        assert resp.headers["Cache-Control"] == "public, max-age=600"
        body = resp.json()
        issuer = shared.settings.jwt.issuer
        assert body["issuer"] == issuer
        assert body["authorization_endpoint"] == issuer.rstrip("/") + "/oauth/authorize"
        assert body["token_endpoint"] == issuer.rstrip("/") + "/oauth/token"
        assert body["userinfo_endpoint"] == issuer.rstrip("/") + "/oauth/userinfo"
        assert body["jwks_uri"] == issuer.rstrip("/") + "/.well-known/jwks.json"
        assert body["response_types_supported"] == ["code"]
        assert body["grant_types_supported"] == ["authorization_code", "refresh_token"]
        assert body["code_challenge_methods_supported"] == ["S256", "plain"]
        assert body["scopes_supported"] == ["openid", "profile", "email", "phone", "offline_access"]
        assert "registration_endpoint" not in body
