"""Logging of the services: ``log.level`` and ``log.format`` (``text`` or ``json``), secrets
redacted at the formatter.

Every line, whatever logger wrote it, goes through :class:`Redactor`: URL passwords, the
values of ``Authorization`` headers and ``Bearer`` tokens, ``token=`` / ``password=`` /
``secret=``-like pairs, and every secret the configuration holds (passwords of configured URLs,
values of secret-looking ``[options]`` keys, signature secrets) become ``***``. JSON lines carry
the fields a log search needs: ``event_id``, ``job_id``, ``destination``, ``action``,
``attempt`` (from ``extra=`` or the load being run) and ``trace_id`` / ``span_id`` when tracing.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from core.observability import tracing

#: Fields of a JSON line taken from a record's ``extra=`` or the current load.
FIELDS = ("event_id", "job_id", "destination", "action", "attempt", "source", "trigger")
#: What the data path is doing now (set by the scheduler around a load): merged into JSON lines.
CURRENT: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar("core_log_fields", default=None)

MASK = "***"
_SECRET_NAME = r"(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|signature|credential|sas)"
_PATTERNS = (
    # scheme://user:password@host -> scheme://user:***@host
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@'\"]*:)[^\s@/'\"]+@"), rf"\1{MASK}@"),
    # Authorization: Basic xyz / 'authorization': 'Bearer xyz' / authorization=...
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(?:(bearer|basic|token|digest)\s+)?[^\s'\",;}]+"),
     rf"\1\2 {MASK}"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {MASK}"),
    # token=..., password: ..., "secret": "..."
    (re.compile(rf"(?i)(\b[\w-]*{_SECRET_NAME}[\w-]*['\"]?\s*[=:]\s*['\"]?)[^\s'\"&,;}}]+"), rf"\1{MASK}"),
)
_SECRET_OPTION = re.compile(rf"(?i){_SECRET_NAME}|(?:^|_)key$")


class Redactor:
    """Replaces secrets in text: the patterns above, then the known secret values."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Redact these values too (longest first, so that one containing another goes whole)."""
        known = set(self.secrets) | {s for s in secrets if isinstance(s, str) and len(s) >= 4}
        self.secrets = sorted(known, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


def secrets_of(values: Mapping[str, Any], options: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The secrets a configuration holds: URL passwords, secret-looking option values."""
    found: list[str] = []
    for value in values.values():
        if isinstance(value, str) and "://" in value:
            password = urlsplit(value).password
            if password:
                found += [password, unquote(password)]

    def walk(table: Mapping[str, Any]) -> None:
        for key, value in table.items():
            if isinstance(value, Mapping):
                walk(value)
            elif isinstance(value, str) and _SECRET_OPTION.search(key):
                found.append(value)
            elif isinstance(value, str) and "://" in value and urlsplit(value).password:
                found.append(urlsplit(value).password or "")

    walk(options)
    return found


class TextFormatter(logging.Formatter):
    """``time level logger: message``, redacted."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, the data path's
    fields, ``trace_id`` / ``span_id``, ``error`` (a traceback); every string redacted."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self.redact(record.getMessage()),
        }
        current = CURRENT.get()
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is None and current is not None:
                value = current.get(name)
            if value is not None:
                line[name] = self.redact(value) if isinstance(value, str) else value
        ids = tracing.current_ids() if tracing.ON else None
        if ids is not None:
            line["trace_id"], line["span_id"] = ids
        if record.exc_info:
            line["error"] = self.redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["error"] = self.redact(record.exc_text)
        if record.stack_info:
            line["stack"] = self.redact(self.formatStack(record.stack_info))
        return orjson.dumps(line, default=str).decode()


#: The handler :func:`configure` installed (replaced by the next call).
_handler: logging.Handler | None = None


def configure(level: str, fmt: str, secrets: Iterable[str] = (), *, stream: Any = None) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) at ``level``, as ``fmt``, redacted."""
    global _handler
    redact = Redactor(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(redact) if fmt == "json" else TextFormatter(redact))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing is _handler or type(existing) is logging.StreamHandler:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    _handler = handler
    return handler


def redactor() -> Redactor | None:
    """The redactor of the installed handler (to add a secret learnt later), if any."""
    formatter = _handler.formatter if _handler is not None else None
    return getattr(formatter, "redact", None)
