"""SSO providers as the admin API sees them (SAML sign-in itself is not implemented yet)."""

from __future__ import annotations

from typing import Any

from ..store import sso as sso_store
from . import Context


async def providers(ctx: Context, resource_id: str = "", resource_id_prefix: str = "") -> list[dict]:
    return await sso_store.list_providers(ctx.db, resource_id, resource_id_prefix)


async def provider(ctx: Context, *, resource_id: str | None = None, provider_id: str | None = None) -> dict | None:
    if resource_id is not None:
        return await sso_store.by_resource_id(ctx.db, resource_id)
    return None if provider_id is None else await sso_store.by_id(ctx.db, provider_id)


async def details(ctx: Context, provider_id: Any) -> tuple[dict | None, list[str]]:
    """The provider's SAML row and its domains."""
    return await sso_store.saml_of(ctx.db, provider_id), await sso_store.domains_of(ctx.db, provider_id)


async def delete(ctx: Context, provider_id: Any) -> None:
    async with ctx.db.transaction() as tx:
        await sso_store.delete(tx, provider_id)
