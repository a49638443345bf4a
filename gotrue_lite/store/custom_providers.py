"""SQL for custom_oauth_providers, the admin-made `custom:<identifier>` OAuth2 / OIDC providers."""

from __future__ import annotations

from typing import Any

from .base import Executor
from .sql import insert, update

COLUMNS = (
    "id, provider_type, identifier, name, client_id, client_secret, acceptable_client_ids, scopes, "
    "pkce_enabled, attribute_mapping, authorization_params, enabled, email_optional, issuer, "
    "discovery_url, skip_nonce_check, cached_discovery, discovery_cached_at, authorization_url, "
    "token_url, userinfo_url, jwks_uri, created_at, updated_at, custom_claims_allowlist"
)


async def find(ex: Executor, identifier: str) -> dict[str, Any] | None:
    return await ex.fetch_one(f"SELECT {COLUMNS} FROM custom_oauth_providers WHERE identifier = $1", identifier)


async def all_of(ex: Executor, provider_type: str = "") -> list[dict[str, Any]]:
    if provider_type:
        return await ex.fetch_all(
            f"SELECT {COLUMNS} FROM custom_oauth_providers WHERE provider_type = $1 ORDER BY created_at, identifier",
            provider_type)
    return await ex.fetch_all(f"SELECT {COLUMNS} FROM custom_oauth_providers ORDER BY created_at, identifier")


async def count(ex: Executor) -> int:
    row = await ex.fetch_one("SELECT count(*) AS n FROM custom_oauth_providers")
    return int(row["n"]) if row else 0


async def create(ex: Executor, values: dict[str, Any]) -> None:
    await insert(ex, "custom_oauth_providers", values)


async def change(ex: Executor, provider_id: str, values: dict[str, Any]) -> None:
    await update(ex, "custom_oauth_providers", "id", provider_id, values)


async def delete(ex: Executor, provider_id: str) -> None:
    await ex.execute("DELETE FROM custom_oauth_providers WHERE id = $1", provider_id)
