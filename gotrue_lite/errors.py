"""APIError, the one exception every rule raises, and the error codes clients know by name."""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    """An answer the client is meant to see: HTTP status, GoTrue error_code and message.

    `commit` asks the surrounding transaction to commit before the error is answered; refresh
    reuse detection needs its revocation to survive the 400 it returns.
    """

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        *,
        extra: dict[str, Any] | None = None,
        commit: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.extra = extra or {}
        self.commit = commit


class DatabaseUnavailable(Exception):
    """The database cannot be reached right now (connection refused, pool timed out): 503."""


class Conflict(Exception):
    """A lock could not be had in time: 409 conflict."""


def validation(message: str, status: int = 400) -> APIError:
    return APIError(status, "validation_failed", message)


def bad_json(detail: str = "") -> APIError:
    message = "Could not parse request body as JSON"
    return APIError(400, "bad_json", f"{message}: {detail}" if detail else message)


def weak_password(message: str, reasons: list[str]) -> APIError:
    return APIError(422, "weak_password", message, extra={"weak_password": {"reasons": reasons}})


INVALID_CREDENTIALS = "Invalid login credentials"
