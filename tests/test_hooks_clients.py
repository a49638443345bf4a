"""The custom_access_token hook's claims as the published clients see them: @supabase/auth-js
getClaims (verified locally via the JWKS) and supabase_auth's get_claims, with the hook served over
HTTP (Standard Webhooks) on both stores, and as a plpgsql function on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pytest
from supabase_auth import SyncGoTrueClient
from supabase_auth.errors import AuthApiError

from conftest import PG_HOST, PG_PORT, PG_USER, _pg_admin
from helpers import PASSWORD, b64url
from hook_server import hook_server  # noqa: F401 - a fixture
from test_client_supabase_auth import private_jwk
from test_clients_js import asymmetric_keys, node, run_js  # noqa: F401 - `node` is a fixture


def tenant_claims(payload):
    claims = {**payload["claims"], "tenant_id": "acme", "user_role": "editor"}
    claims["app_metadata"] = {**claims["app_metadata"], "plan": "gold"}
    return {"claims": claims}


def test_auth_js_get_claims_sees_the_hooks_claims(node, hook_server, make_server, backend, jwt_secret):
    hooks = hook_server()
    hooks.answer("custom_access_token", tenant_claims)
    keys, kid = asymmetric_keys("ES256", jwt_secret)
    server = make_server(backend, GOTRUE_JWT_KEYS=keys, **hooks.env("custom_access_token"))
    run = run_js(node, "auth_js.mjs", "claims", server)

    got = run.ok("getClaims")
    assert got["header"]["kid"] == kid
    claims = got["claims"]
    assert claims["tenant_id"] == "acme" and claims["user_role"] == "editor"
    assert claims["app_metadata"]["plan"] == "gold"
    assert claims["email"] == run.email("claims")
    assert run.requests("getClaims") == [("GET", "/.well-known/jwks.json", 200)], "verified locally"
    # A token whose claims were changed after signing is still refused.
    run.error("getClaims_forged", 400, "invalid_jwt", "AuthInvalidJwtError")
    refreshed = run.ok("refreshSession")["session"]
    assert refreshed["claims"]["tenant_id"] == "acme"
    methods = [c.payload["authentication_method"] for c in hooks.calls("custom_access_token")]
    assert methods == ["password", "token_refresh"]
    assert all(c.verified for c in hooks.calls("custom_access_token"))


def _client(server) -> SyncGoTrueClient:
    return SyncGoTrueClient(url=server.url, headers={"apikey": server.anon_key,
                                                     "Authorization": f"Bearer {server.anon_key}"},
                            auto_refresh_token=False, persist_session=False)


def test_supabase_auth_get_claims_sees_the_hooks_claims(hook_server, make_server, backend, jwt_secret):
    hooks = hook_server()
    hooks.answer("custom_access_token", tenant_claims)
    kid = f"hooks-{uuid.uuid4().hex[:8]}"
    signing, _ = private_jwk("RS256", kid)
    legacy = {"kty": "oct", "k": b64url(jwt_secret.encode()), "kid": "legacy", "alg": "HS256", "key_ops": ["verify"]}
    server = make_server(backend, GOTRUE_JWT_KEYS=json.dumps([signing, legacy]), **hooks.env("custom_access_token"))
    client = _client(server)
    try:
        email = f"py-{uuid.uuid4().hex[:10]}@example.com"
        client.sign_up({"email": email, "password": PASSWORD})
        got = client.get_claims()
        assert got["headers"]["kid"] == kid
        assert got["claims"]["tenant_id"] == "acme" and got["claims"]["app_metadata"]["plan"] == "gold"
        signed_in = client.sign_in_with_password({"email": email, "password": PASSWORD})
        assert signed_in.session is not None
        assert client.get_claims()["claims"]["user_role"] == "editor"

        # A hook that breaks makes the sign-in fail with upstream's error, as the client reports it.
        hooks.answer("custom_access_token", lambda p: {"claims": {"sub": p["user_id"]}})
        with pytest.raises(AuthApiError) as excinfo:
            client.sign_in_with_password({"email": email, "password": PASSWORD})
        assert excinfo.value.status == 500
        assert excinfo.value.message.startswith("output claims do not conform to the expected schema")
    finally:
        client.close()


ROLE_FUNCTION = r"""
CREATE FUNCTION public.claims_hook(event jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN jsonb_build_object('claims', (event->'claims') || jsonb_build_object('tenant_id', 'from-postgres'));
END $$;
"""


@pytest.fixture
def claims_db(postgres_problem):
    if postgres_problem:
        pytest.skip(postgres_problem)
    name = f"gl_hookclients_{uuid.uuid4().hex}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    dsn = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"

    async def create() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(ROLE_FUNCTION)
        finally:
            await conn.close()

    asyncio.run(create())
    try:
        yield dsn
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_auth_js_sees_a_function_hooks_claims(node, make_server, claims_db, jwt_secret):
    keys, _ = asymmetric_keys("RS256", jwt_secret)
    server = make_server("postgres", DATABASE_URL=claims_db, GOTRUE_JWT_KEYS=keys,
                         GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_ENABLED="true",
                         GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_URI="pg-functions://postgres/public/claims_hook")
    run = run_js(node, "auth_js.mjs", "claims", server)
    assert run.ok("getClaims")["claims"]["tenant_id"] == "from-postgres"
    assert run.ok("refreshSession")["session"]["claims"]["tenant_id"] == "from-postgres"
