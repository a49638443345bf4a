"""SQL for the SSO provider tables (sso_providers, saml_providers, sso_domains, saml_relay_states)."""

from __future__ import annotations

from .base import Executor

_COLUMNS = "id, resource_id, disabled, created_at, updated_at"


async def list_providers(ex: Executor, resource_id: str = "", resource_id_prefix: str = "") -> list[dict]:
    if resource_id:
        return await ex.fetch_all(f"SELECT {_COLUMNS} FROM sso_providers WHERE resource_id = $1", resource_id)
    if resource_id_prefix:
        return await ex.fetch_all(f"SELECT {_COLUMNS} FROM sso_providers WHERE resource_id LIKE $1",
                                  resource_id_prefix + "%")
    return await ex.fetch_all(f"SELECT {_COLUMNS} FROM sso_providers")


async def by_resource_id(ex: Executor, resource_id: str) -> dict | None:
    return await ex.fetch_one(f"SELECT {_COLUMNS} FROM sso_providers WHERE resource_id = $1", resource_id)


async def by_id(ex: Executor, provider_id: str) -> dict | None:
    return await ex.fetch_one(f"SELECT {_COLUMNS} FROM sso_providers WHERE id = $1", provider_id)


async def saml_of(ex: Executor, provider_id) -> dict | None:
    return await ex.fetch_one(
        "SELECT entity_id, metadata_xml, metadata_url, attribute_mapping, name_id_format "
        "FROM saml_providers WHERE sso_provider_id = $1", provider_id)


async def domains_of(ex: Executor, provider_id) -> list[str]:
    rows = await ex.fetch_all("SELECT domain FROM sso_domains WHERE sso_provider_id = $1 ORDER BY created_at",
                              provider_id)
    return [row["domain"] for row in rows]


async def delete(ex: Executor, provider_id) -> None:
    """The provider and what hangs off it; call inside a transaction."""
    for table in ("saml_relay_states", "sso_domains", "saml_providers"):
        await ex.execute(f"DELETE FROM {table} WHERE sso_provider_id = $1", provider_id)
    await ex.execute("DELETE FROM sso_providers WHERE id = $1", provider_id)
