"""Log output: JSON lines (upstream's logrus fields) for collectors, readable text on a terminal."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import datetime, timezone
from typing import IO, Any

# The id of the request being served, put on every line logged while serving it (the request
# middleware sets it; tasks started by a request inherit it).
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# logrus's level names, which log pipelines built for GoTrue filter on.
_LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning",
           logging.ERROR: "error", logging.CRITICAL: "fatal"}
FIELDS = "fields"  # LogRecord attribute (logging's `extra`) carrying structured fields


def level_name(levelno: int) -> str:
    return _LEVELS.get(levelno) or ("debug" if levelno < logging.INFO else "error")


def _time(record: logging.LogRecord) -> str:
    # RFC 3339 in UTC, as upstream's formatter writes it.
    return datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(getattr(record, FIELDS, None) or {})
    rid = request_id.get()
    if rid and "request_id" not in fields:
        fields["request_id"] = rid
    return fields


class JSONFormatter(logging.Formatter):
    """One JSON object per line: level, msg, time, component, the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"component": record.name.removeprefix("gotrue_lite.")}
        line.update(_fields(record))
        line["level"] = level_name(record.levelno)
        line["msg"] = record.getMessage()
        line["time"] = _time(record)
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
            line["stack"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """For a person at a terminal: time, level, message, then key=value fields; one line."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{_time(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        fields = _fields(record)
        if fields:
            text += " " + " ".join(f"{key}={_text(value)}" for key, value in fields.items())
        if record.exc_info and record.exc_info[0] is not None:
            text += "\n" + self.formatException(record.exc_info)
        # Log collectors split on newlines: a traceback must stay inside its record.
        return text.replace("\r", "\\r").replace("\n", "\\n")


def _text(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c in text for c in ' ="') else text


def handler(log_file: str = "", stream: IO[str] | None = None) -> logging.Handler:
    """Where the log goes (GOTRUE_LOG_FILE, else stderr) and in which form: text only for a
    terminal, JSON lines for everything else (files, pipes, containers' log drivers)."""
    if log_file:
        out: logging.Handler = logging.FileHandler(log_file, encoding="utf-8")
        terminal = False
    else:
        stream = stream or sys.stderr
        out = logging.StreamHandler(stream)
        terminal = hasattr(stream, "isatty") and stream.isatty()
    out.setFormatter(TextFormatter() if terminal else JSONFormatter())
    return out
