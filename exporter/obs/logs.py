"""Logging set-up: readable text on a terminal, one JSON object per line elsewhere.

Every handler carries a :class:`RedactingFilter` that replaces registered secret values (passwords,
tokens, session tickets) with ``***`` wherever they would appear, so a secret that slips into an
exception message still never reaches a log line.

One style everywhere: :func:`event` with a short constant message and the values as keyword
fields (``event("window committed", site="a", records=10)``); the text format prints them as
``key=value`` after the message, the JSON format as keys of the line's object.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import datetime, timezone
from typing import Any

__all__ = ["configure_logging", "register_secret", "RedactingFilter", "event", "logger"]

logger = logging.getLogger("exporter")

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


def register_secret(value: str | None) -> None:
    """Make ``value`` unprintable in every log record from now on (ignored when short or empty)."""
    if value and len(value) >= 4:
        with _SECRETS_LOCK:
            _SECRETS.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


class RedactingFilter(logging.Filter):
    """Rewrites the rendered message and structured fields of each record without secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {k: redact(v) if isinstance(v, str) else v for k, v in fields.items()}
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, event, logger, then the structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info and not record.exc_text:  # a library's logger.exception(): keep it, in the line
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["traceback"] = record.exc_text
        return json.dumps(payload, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``HH:MM:SS level event key=value ...`` for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        fields = getattr(record, "fields", None)
        tail = ""
        if isinstance(fields, dict) and fields:
            tail = " " + " ".join(f"{k}={v}" for k, v in fields.items())
        text = f"{stamp} {record.levelname.lower():7} {record.getMessage()}{tail}"
        if record.exc_text:
            text += "\n" + record.exc_text
        return text


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written: while the terminal's live progress runs,
    that is rich's proxy, which prints the line above the display instead of through it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(fmt: str = "auto", level: str = "info", *, stream: Any = None) -> None:
    """Configure the ``exporter`` logger once (idempotent: replaces earlier handlers)."""
    stream = stream or _CurrentStderr()
    if fmt == "auto":
        fmt = "text" if getattr(stream, "isatty", lambda: False)() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    # The libraries that log on their own (APScheduler's "job skipped: still running", aiohttp's
    # warnings) go through the same handler, so a JSON log stays JSON, line for line.
    for name in _LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        for old in list(library.handlers):
            library.removeHandler(old)
        library.addHandler(handler)
        library.setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
        library.propagate = False


_LIBRARY_LOGGERS = ("apscheduler", "aiohttp", "asyncio")


def event(message: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event: ``event("window committed", site="a", records=10)``."""
    logger.log(level, message, extra={"fields": fields})
