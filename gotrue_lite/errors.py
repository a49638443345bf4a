"""APIError, the one exception every rule raises, and the error codes clients know by name."""

from __future__ import annotations

import re
from typing import Any


class APIError(Exception):
    """An answer the client is meant to see: HTTP status, GoTrue error_code and message.

    `commit` asks the surrounding transaction to commit before the error is answered; refresh
    reuse detection needs its revocation to survive the 400 it returns. `legacy` replaces the
    legacy envelope with (status, body): upstream's answer when a Postgres error is shown as is.
    """

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        *,
        extra: dict[str, Any] | None = None,
        commit: bool = False,
        legacy: tuple[int, dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.extra = extra or {}
        self.commit = commit
        self.legacy = legacy


class DatabaseUnavailable(Exception):
    """The database cannot be reached right now (connection refused, pool timed out): 503."""


class Conflict(Exception):
    """A lock could not be had in time: 409 conflict."""


# Postgres errors upstream shows to clients in the legacy format (utilities.NewPostgresError):
# raise_exception and the integrity-constraint class answer 500, SQLSTATE PTnnn answers nnn.
_SHOWN_SQLSTATES = {"P0001", "23000", "23001", "23502", "23503", "23505", "23514", "23P01"}
_PT_STATUS = re.compile(r"^PT(\d{3})$")


def _shown_status(sqlstate: str) -> int | None:
    if sqlstate in _SHOWN_SQLSTATES:
        return 500
    custom = _PT_STATUS.match(sqlstate)
    return int(custom.group(1)) if custom and 100 <= int(custom.group(1)) <= 999 else None


def database_failure(message: str, refused: Any = None) -> APIError:
    """upstream's 500 unexpected_failure for a write the database refused (a trigger on
    auth.users raised). `refused` is the store's StatementRefused when upstream also keeps the
    Postgres error: its legacy envelope then shows that error itself, {code: SQLSTATE, message,
    detail, hint}, with PTnnn's status; the 2024-01-01 format always shows `message`."""
    status = _shown_status(getattr(refused, "sqlstate", "") or "")
    if status is None:
        return APIError(500, "unexpected_failure", message)
    body = {"code": refused.sqlstate, "message": refused.message}
    body.update({k: v for k, v in (("detail", refused.detail), ("hint", refused.hint)) if v})
    return APIError(500, "unexpected_failure", message, legacy=(status, body))


def validation(message: str, status: int = 400) -> APIError:
    return APIError(status, "validation_failed", message)


def bad_json(detail: str = "") -> APIError:
    message = "Could not parse request body as JSON"
    return APIError(400, "bad_json", f"{message}: {detail}" if detail else message)


def weak_password(message: str, reasons: list[str]) -> APIError:
    return APIError(422, "weak_password", message, extra={"weak_password": {"reasons": reasons}})


INVALID_CREDENTIALS = "Invalid login credentials"
