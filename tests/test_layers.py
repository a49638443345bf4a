"""The layers of ARCHITECTURE.md hold: HTTP handlers reach SQL only through the rules in auth/."""

from __future__ import annotations

import ast
from pathlib import Path

import gotrue_lite

PACKAGE = Path(gotrue_lite.__file__).parent
NOT_YET: set[str] = set()  # every api module goes through auth/


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, as absolute gotrue_lite.* names (relative imports resolved)."""
    package = ["gotrue_lite", *path.parent.relative_to(PACKAGE).parts]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_no_api_module_imports_the_store():
    offenders = {}
    for path in sorted((PACKAGE / "api").glob("*.py")):
        if path.name in NOT_YET:
            continue
        store = sorted(m for m in _imported_modules(path) if m == "gotrue_lite.store" or m.startswith("gotrue_lite.store."))
        if store:
            offenders[path.name] = store
    assert offenders == {}


def test_the_check_sees_relative_imports():
    # The resolver itself: auth/access.py reaches the store with `from ..store import users as …`.
    assert {"gotrue_lite.store.users", "gotrue_lite.store.sessions"} <= _imported_modules(PACKAGE / "auth" / "access.py")
