"""External OAuth 2.0 / OIDC providers: one module per provider, found by its name.

A provider module is named for the provider as upstream spells it (github, linkedin_oidc, x…)
and defines `Provider`, a subclass of base.OAuthProvider. There is no central table to edit:
`provider_class(name)` imports the module on first use.
"""

from __future__ import annotations

import importlib
import re

from .base import Email, OAuthProvider, ProviderError, TokenSet, UserData

__all__ = ["Email", "OAuthProvider", "ProviderError", "TokenSet", "UserData", "provider_class"]

_NAME = re.compile(r"[a-z][a-z0-9_]*")


def provider_class(name: str) -> type[OAuthProvider] | None:
    """The class for a built-in provider name, or None when gotrue-lite has no such provider."""
    if not _NAME.fullmatch(name) or name in ("base", "oidc"):
        return None
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{name}":
            return None
        raise
    return getattr(module, "Provider", None)
