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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hookspecs import AdapterURL, Option, PipelineError, choice, number, path, read_options, tls_context

from core_plugin_nats.plugin import SCHEMES

#: Dead letters of topic ``T`` are published on topic ``dead.T``.
DEAD_LETTER_PREFIX = "dead."
#: The consumer group that keeps the dead letters of a topic from the first subscription on.
DEAD_LETTER_GROUP = "dead-letters"
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_STREAM = re.compile(r"[^A-Za-z0-9_-]+")


def _prefix(value: Any) -> str:
    text = str(value)
    if not all(_TOKEN.fullmatch(part) for part in text.split(".")):
        raise ValueError
    return text


#: Every option: converter, default, what is allowed (shown when a value is refused).
_OPTIONS: dict[str, Option] = {
    "prefix": Option(_prefix, "core", "dot-separated tokens of letters, digits, '_' or '-'"),
    "stream": Option(str, "", "a JetStream stream name (default: the prefix in capitals)"),
    "group_prefix": Option(str, "", "a string put before every consumer group name"),
    "retention": Option(
        choice("interest", "limits"), "interest", "'interest' (kept until every group acked it) or 'limits' (max_age)"
    ),
    "batch": Option(number(int, 1), 256, "a whole number >= 1"),
    "max_ack_pending": Option(number(int, 1), 10_000, "a whole number >= 1"),
    "ack_wait": Option(number(float, 0.1), 30.0, "seconds, >= 0.1"),
    "max_deliveries": Option(number(int, 0), 10, "a whole number >= 0 (0: redeliver forever)"),
    "max_age": Option(number(float, 0), 7 * 86400.0, "seconds a message is kept, >= 0 (0: forever)"),
    "connect_timeout": Option(number(float, 0.1), 5.0, "seconds, >= 0.1"),
    "publish_timeout": Option(number(float, 0.1), 5.0, "seconds, >= 0.1"),
    "reconnect_wait": Option(number(float, 0.05), 1.0, "seconds, >= 0.05"),
    "tls_ca": Option(path, "", "the path of a CA bundle (PEM)"),
    "tls_cert": Option(path, "", "the path of a client certificate (PEM)"),
    "tls_key": Option(path, "", "the path of the client certificate's key (PEM)"),
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
        parts = AdapterURL.split(url, SCHEMES, example="nats://host:port (several: nats://h1:4222,h2:4222)")
        values = read_options("nats", {**table, **dict(parts.params())}, _OPTIONS)
        values["stream"] = values["stream"] or _STREAM.sub("_", values["prefix"]).upper()
        tls = parts.scheme == "nats+tls"
        return cls(
            servers=tuple(f"{'tls' if tls else 'nats'}://{host}" for host in parts.hosts.split(",") if host),
            tls=tls,
            user=parts.credential("user", environ, "CORE_NATS_USER"),
            password=parts.credential("password", environ, "CORE_NATS_PASSWORD"),
            token=environ.get("CORE_NATS_TOKEN"),
            creds=environ.get("CORE_NATS_CREDS"),
            **values,
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``nats+tls://`` (system CAs unless ``tls_ca``), else ``None``."""
        return tls_context(self.tls, self.tls_ca, self.tls_cert, self.tls_key)

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
