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

from core.brokers import BROKER_OPTIONS, DEAD_LETTER_PREFIX, dotted_topic, is_dotted
from hookspecs import AdapterURL, Option, choice, number, read_options, tls_context

from core_plugin_nats.plugin import SCHEMES

_STREAM = re.compile(r"[^A-Za-z0-9_-]+")
_WILDCARDS = "'*' or '>'"


def _prefix(value: Any) -> str:
    if not is_dotted(str(value)):
        raise ValueError
    return str(value)


#: Every option: converter, default, what is allowed, what it does.
OPTIONS: dict[str, Option] = {
    "prefix": Option(
        _prefix, "core", "dot-separated tokens of letters, digits, '_' or '-'", "put before every topic's subject"
    ),
    "stream": Option(
        str, "", "a JetStream stream name", "the stream of the prefix's subjects (default: the prefix in capitals)"
    ),
    "retention": Option(
        choice("interest", "limits"), "interest", "'interest' (kept until every group acked it) or 'limits' (max_age)",
        "how long the stream keeps a message",
    ),
    "batch": Option(number(int, 1), 256, "a whole number >= 1", "messages one pull request asks for"),
    "max_ack_pending": Option(
        number(int, 1), 10_000, "a whole number >= 1", "unacknowledged messages of a group before JetStream waits"
    ),
    "ack_wait": Option(number(float, 0.1), 30.0, "seconds, >= 0.1", "an unsettled delivery comes again after this"),
    "max_age": Option(
        number(float, 0), 7 * 86400.0, "seconds a message is kept, >= 0 (0: forever)", "the limit of 'limits' retention"
    ),
    **BROKER_OPTIONS,
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
    reconnect_max: float
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
        values = read_options("nats", {**table, **dict(parts.params())}, OPTIONS)
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
        return f"{self.prefix}.{dotted_topic(topic, 'NATS', 'subject', _WILDCARDS)}"

    def dead_letter_subject(self, topic: str) -> str:
        """Where the dead letters of ``topic`` go: the subject of topic ``dead.<topic>``."""
        return self.subject(f"{DEAD_LETTER_PREFIX}{topic}")

    def durable(self, topic: str, group: str) -> str:
        """The durable consumer name of ``group`` on ``topic``: readable, and unique per pair."""
        full = self.group_prefix + group
        digest = hashlib.sha1(f"{topic}\0{full}".encode()).hexdigest()[:10]
        readable = _STREAM.sub("_", f"{full}__{topic}")[:200]
        return f"{readable}_{digest}"
