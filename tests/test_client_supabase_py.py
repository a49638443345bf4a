"""The `supabase` package (supabase-py): create_client(url, anon_key).auth against gotrue-lite.

supabase-py points its auth client at <url>/auth/v1 (where a Supabase gateway would strip the
prefix); gotrue-lite serves every route there too. Both the sync and the async client, on both
backends, through one shared server per backend.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from supabase import AsyncClientOptions, ClientOptions, acreate_client, create_client
from supabase_auth.errors import AuthApiError

from helpers import claims_of, shared  # noqa: F401 - `shared` is a fixture

PASSWORD = "correct-horse-battery-7"


def new_email() -> str:
    return f"supa-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture
def supabase_for():
    """Factory: supabase_for(server) -> (supabase.Client, list of requested URLs)."""
    made: list[httpx.Client] = []

    def factory(server):
        seen: list[str] = []
        http = httpx.Client(timeout=30, event_hooks={"request": [lambda req: seen.append(str(req.url))]})
        made.append(http)
        options = ClientOptions(auto_refresh_token=False, persist_session=False, httpx_client=http)
        return create_client(server.url, server.anon_key, options), seen

    yield factory
    for http in made:
        http.close()


def test_sync_client_sign_up_sign_in_refresh_sign_out(shared, supabase_for):
    supabase, seen = supabase_for(shared)
    email = new_email()

    res = supabase.auth.sign_up({"email": email, "password": PASSWORD,
                                 "options": {"data": {"plan": "pro"}}})
    assert res.session is not None, "autoconfirm is on: sign-up must return a session"
    assert res.user is not None and res.user.email == email
    assert res.user.user_metadata["plan"] == "pro"
    assert seen and all(url.startswith(shared.url + "/auth/v1/") for url in seen), seen
    assert seen[-1] == shared.url + "/auth/v1/signup"

    res = supabase.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    session = res.session
    assert session is not None and session.user.id == res.user.id
    assert session.token_type == "bearer" and session.expires_in > 0 and session.expires_at
    claims = claims_of(session.access_token)
    assert claims["sub"] == res.user.id and claims["aud"] == "authenticated"
    assert [entry["method"] for entry in claims["amr"]] == ["password"]
    assert seen[-1] == shared.url + "/auth/v1/token?grant_type=password"
    assert supabase.auth.get_session().access_token == session.access_token

    user = supabase.auth.get_user()
    assert user is not None and user.user.id == res.user.id and user.user.email == email
    assert seen[-1] == shared.url + "/auth/v1/user"

    refreshed = supabase.auth.refresh_session()
    assert refreshed.session is not None
    assert refreshed.session.refresh_token != session.refresh_token
    assert claims_of(refreshed.session.access_token)["session_id"] == claims["session_id"]
    assert seen[-1] == shared.url + "/auth/v1/token?grant_type=refresh_token"

    # The supabase client forwards the session's token once signed in (its auth listener).
    assert supabase.options.headers["Authorization"] == f"Bearer {refreshed.session.access_token}"

    old_access_token = refreshed.session.access_token
    supabase.auth.sign_out()
    assert seen[-1].startswith(shared.url + "/auth/v1/logout")
    assert supabase.auth.get_session() is None
    assert supabase.options.headers["Authorization"] == f"Bearer {shared.anon_key}"

    # The session is gone server-side: the old access token no longer works.
    with pytest.raises(AuthApiError) as excinfo:
        supabase.auth.get_user(old_access_token)
    assert excinfo.value.status == 403 and excinfo.value.code == "session_not_found"


def test_sync_client_reports_upstream_errors(shared, supabase_for):
    supabase, _seen = supabase_for(shared)
    email = new_email()
    supabase.auth.sign_up({"email": email, "password": PASSWORD})

    with pytest.raises(AuthApiError) as excinfo:
        supabase.auth.sign_in_with_password({"email": email, "password": "wrong-password-1"})
    assert (excinfo.value.status, excinfo.value.code, excinfo.value.message) == (
        400, "invalid_credentials", "Invalid login credentials")

    with pytest.raises(AuthApiError) as excinfo:
        supabase.auth.sign_up({"email": email, "password": PASSWORD})
    assert (excinfo.value.status, excinfo.value.code) == (422, "user_already_exists")


def test_async_client_sign_up_sign_in_refresh_sign_out(shared):
    async def flow() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            options = AsyncClientOptions(auto_refresh_token=False, persist_session=False, httpx_client=http)
            supabase = await acreate_client(shared.url, shared.anon_key, options)
            email = new_email()

            res = await supabase.auth.sign_up({"email": email, "password": PASSWORD})
            assert res.session is not None and res.user.email == email

            res = await supabase.auth.sign_in_with_password({"email": email, "password": PASSWORD})
            assert res.session is not None
            first = res.session

            user = await supabase.auth.get_user()
            assert user.user.id == res.user.id

            refreshed = await supabase.auth.refresh_session()
            assert refreshed.session.refresh_token != first.refresh_token
            assert claims_of(refreshed.session.access_token)["session_id"] == \
                claims_of(first.access_token)["session_id"]

            await supabase.auth.sign_out()
            assert await supabase.auth.get_session() is None
            with pytest.raises(AuthApiError) as excinfo:
                await supabase.auth.get_user(refreshed.session.access_token)
            assert excinfo.value.code == "session_not_found"

    asyncio.run(flow())
