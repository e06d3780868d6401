"""The NATS adapter's settings: read from the URL, its query and the ``[options.nats]`` table.

A key given in both the URL query and the option table takes the URL's value. Secrets never
sit in configuration files: user, password, token and credentials file come from the URL's
user part or from ``CORE_NATS_*`` environment variables.
"""

from __future__ import annotations

import hashlib
import os
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from core.errors import ConfigError, PipelineError

from core_plugin_nats.plugin import SCHEMES

#: Dead letters of topic ``T`` are published on topic ``dead.T``.
DEAD_LETTER_PREFIX = "dead."
#: The consumer group that keeps the dead letters of a topic from the first subscription on.
DEAD_LETTER_GROUP = "dead-letters"
_WHERE = "[options.nats] or the pubsub URL query"
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_STREAM = re.compile(r"[^A-Za-z0-9_-]+")


def _positive(kind: type[int] | type[float], low: float) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        number = kind(value)
        if isinstance(value, bool) or number < low:
            raise ValueError
        return number

    return check


def _prefix(value: Any) -> str:
    text = str(value)
    if not all(_TOKEN.fullmatch(part) for part in text.split(".")):
        raise ValueError
    return text


def _retention(value: Any) -> str:
    if value not in ("interest", "limits"):
        raise ValueError
    return str(value)


def _path(value: Any) -> str:
    return os.path.expanduser(str(value)) if value else ""


#: Every option: converter, default, what is allowed (shown when a value is refused).
_OPTIONS: dict[str, tuple[Callable[[Any], Any], Any, str]] = {
    "prefix": (_prefix, "core", "dot-separated tokens of letters, digits, '_' or '-'"),
    "stream": (str, "", "a JetStream stream name (default: the prefix in capitals)"),
    "group_prefix": (str, "", "a string put before every consumer group name"),
    "retention": (_retention, "interest", "'interest' (kept until every group acked it) or 'limits' (max_age)"),
    "batch": (_positive(int, 1), 256, "a whole number >= 1"),
    "max_ack_pending": (_positive(int, 1), 10_000, "a whole number >= 1"),
    "ack_wait": (_positive(float, 0.1), 30.0, "seconds, >= 0.1"),
    "max_deliveries": (_positive(int, 0), 10, "a whole number >= 0 (0: redeliver forever)"),
    "max_age": (_positive(float, 0), 7 * 86400.0, "seconds a message is kept, >= 0 (0: forever)"),
    "connect_timeout": (_positive(float, 0.1), 5.0, "seconds, >= 0.1"),
    "publish_timeout": (_positive(float, 0.1), 5.0, "seconds, >= 0.1"),
    "reconnect_wait": (_positive(float, 0.05), 1.0, "seconds, >= 0.05"),
    "tls_ca": (_path, "", "the path of a CA bundle (PEM)"),
    "tls_cert": (_path, "", "the path of a client certificate (PEM)"),
    "tls_key": (_path, "", "the path of the client certificate's key (PEM)"),
}


@dataclass(frozen=True, slots=True)
class NatsOptions:
    """Validated settings of one NATS adapter."""

    servers: tuple[str, ...]
    tls: bool
    prefix: str
    stream: str
    group_prefix: str
    retention: str
    batch: int
    max_ack_pending: int
    ack_wait: float
    max_deliveries: int
    max_age: float
    connect_timeout: float
    publish_timeout: float
    reconnect_wait: float
    tls_ca: str
    tls_cert: str
    tls_key: str
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = None

    @classmethod
    def parse(cls, url: str, table: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> NatsOptions:
        """Read ``url`` (``nats://[user:password@]host:port[,host:port]?key=value``) and ``table``."""
        environ = os.environ if environ is None else environ
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ConfigError("pubsub URL", "scheme", parts.scheme, "nats:// or nats+tls://")
        userinfo, _, hosts = parts.netloc.rpartition("@")
        if not hosts:
            raise ConfigError("pubsub URL", "host", url, "nats://host:port (several: nats://h1:4222,h2:4222)")
        raw = {**table, **dict(parse_qsl(parts.query))}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in _OPTIONS:
                raise ConfigError(_WHERE, key, value, "one of: " + ", ".join(_OPTIONS))
            check, _, allowed = _OPTIONS[key]
            try:
                values[key] = check(value)
            except (TypeError, ValueError):
                raise ConfigError(_WHERE, key, value, allowed) from None
        for key, (_, default, _) in _OPTIONS.items():
            values.setdefault(key, default)
        values["stream"] = values["stream"] or _STREAM.sub("_", values["prefix"]).upper()
        user, _, password = userinfo.partition(":")
        tls = parts.scheme == "nats+tls"
        return cls(
            servers=tuple(f"{'tls' if tls else 'nats'}://{host}" for host in hosts.split(",") if host),
            tls=tls,
            user=unquote(user) if user else environ.get("CORE_NATS_USER"),
            password=unquote(password) if password else environ.get("CORE_NATS_PASSWORD"),
            token=environ.get("CORE_NATS_TOKEN"),
            creds=environ.get("CORE_NATS_CREDS"),
            **values,
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``nats+tls://`` (system CAs unless ``tls_ca``), else ``None``."""
        if not (self.tls or self.tls_ca or self.tls_cert):
            return None
        context = ssl.create_default_context(cafile=self.tls_ca or None)
        if self.tls_cert:
            context.load_cert_chain(self.tls_cert, self.tls_key or None)
        return context

    def subject(self, topic: str) -> str:
        """The NATS subject of ``topic``: ``<prefix>.<topic>``; refuses what NATS cannot carry."""
        if not topic or not all(_TOKEN.fullmatch(part) for part in topic.split(".")):
            raise PipelineError(
                f"topic {topic!r} cannot be a NATS subject",
                hint="use dot-separated tokens of letters, digits, '_' or '-' (no spaces, '*' or '>')",
            )
        return f"{self.prefix}.{topic}"

    def dead_letter_subject(self, topic: str) -> str:
        """Where the dead letters of ``topic`` go: the subject of topic ``dead.<topic>``."""
        return self.subject(f"{DEAD_LETTER_PREFIX}{topic}")

    def durable(self, topic: str, group: str) -> str:
        """The durable consumer name of ``group`` on ``topic``: readable, and unique per pair."""
        full = self.group_prefix + group
        digest = hashlib.sha1(f"{topic}\0{full}".encode()).hexdigest()[:10]
        readable = _STREAM.sub("_", f"{full}__{topic}")[:200]
        return f"{readable}_{digest}"
