"""Where the shipped data (SQL migrations, mail templates) lives, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _locate(name: str) -> Path:
    # In a wheel the top-level folders are installed as gotrue_lite/<name>; in a source
    # checkout (or an editable install) they sit beside the package.
    inside = _PACKAGE / name
    if inside.is_dir():
        return inside
    return _PACKAGE.parent / name


def schema_dir(dialect: str) -> Path:
    return _locate("schema") / dialect


def templates_dir() -> Path:
    return _locate("templates")
