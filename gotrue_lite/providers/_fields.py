"""Reading a provider's JSON as upstream's Go structs do: missing or null is the zero value, a
value of the wrong type is an error (encoding/json refuses it), never a crash here."""

from __future__ import annotations

from typing import Any

from .base import ProviderError


def obj(value: Any, what: str = "answer") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProviderError(f"json: cannot unmarshal {type(value).__name__} into the {what}", status=200)
    return value


def sub(data: dict[str, Any], key: str) -> dict[str, Any]:
    return obj(data.get(key), key)


def string(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ProviderError(f"json: cannot unmarshal {type(value).__name__} into a string field {key!r}",
                            status=200)
    return value


def integer(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ProviderError(f"json: cannot unmarshal {value!r} into an integer field {key!r}", status=200)
    return int(value)


def boolean(data: dict[str, Any], key: str) -> bool:
    value = data.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ProviderError(f"json: cannot unmarshal {type(value).__name__} into a bool field {key!r}",
                            status=200)
    return value


def array(data: dict[str, Any], key: str) -> list[Any] | None:
    """None for missing/null (Go's nil slice, stored as null), else the list."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise ProviderError(f"json: cannot unmarshal {type(value).__name__} into an array field {key!r}",
                            status=200)
    return value
