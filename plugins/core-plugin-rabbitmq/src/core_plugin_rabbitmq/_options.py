"""The RabbitMQ adapter's settings: read from the URL, its query and the ``[options.rabbitmq]`` table.

A key given in both the URL query and the option table takes the URL's value. Secrets never
sit in configuration files: user and password come from the URL's user part or from the
``CORE_RABBITMQ_USER`` / ``CORE_RABBITMQ_PASSWORD`` environment variables.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlunsplit

from core.brokers import BROKER_OPTIONS, dotted_topic
from hookspecs import AdapterURL, Option, number, read_options, tls_context

from core_plugin_rabbitmq.plugin import SCHEMES


def _name(value: Any) -> str:
    text = str(value)
    if not text or len(text) > 200:
        raise ValueError
    return text


#: Every option: converter, default, what is allowed, what it does.
OPTIONS: dict[str, Option] = {
    "exchange": Option(
        _name, "core", "the name of the topic exchange (1 to 200 characters)", "the durable topic exchange of topics"
    ),
    "prefetch": Option(number(int, 1), 256, "a whole number >= 1", "unacknowledged deliveries one member holds"),
    "heartbeat": Option(
        number(int, 0), 30, "seconds between heartbeats, a whole number >= 0 (0: none)",
        "how often client and broker check the connection is alive",
    ),
    **BROKER_OPTIONS,
}


@dataclass(frozen=True, slots=True)
class RabbitOptions:
    """Validated settings of one RabbitMQ adapter."""

    url: str
    tls: bool
    exchange: str
    group_prefix: str
    prefetch: int
    max_deliveries: int
    connect_timeout: float
    publish_timeout: float
    reconnect_wait: float
    reconnect_max: float
    heartbeat: int
    tls_ca: str
    tls_cert: str
    tls_key: str

    @classmethod
    def parse(cls, url: str, table: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> RabbitOptions:
        """Read ``url`` (``amqp[s]://[user:password@]host[:port][/vhost]?key=value``) and ``table``."""
        environ = os.environ if environ is None else environ
        parts = AdapterURL.split(url, SCHEMES, example="amqp://user:password@host:5672/vhost")
        values = read_options("rabbitmq", {**table, **dict(parts.params())}, OPTIONS)
        user = parts.credential("user", environ, "CORE_RABBITMQ_USER") or ""
        password = parts.credential("password", environ, "CORE_RABBITMQ_PASSWORD") or ""
        credentials = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
        query = f"heartbeat={values['heartbeat']}"
        clean = urlunsplit((parts.scheme, credentials + parts.hosts, parts.path or "/", query, ""))
        return cls(url=clean, tls=parts.scheme == "amqps", **values)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``amqps://`` (system CAs unless ``tls_ca``), else ``None``."""
        return tls_context(self.tls, self.tls_ca, self.tls_cert, self.tls_key)

    def routing_key(self, topic: str) -> str:
        """The routing key of ``topic`` (the topic itself); refuses what a topic exchange would misread."""
        return dotted_topic(topic, "RabbitMQ", "routing key", "'*' or '#'")

    def queue(self, topic: str, group: str) -> str:
        """The durable queue of ``group`` on ``topic``: ``<exchange>:<topic>:<group_prefix><group>``."""
        return f"{self.exchange}:{self.routing_key(topic)}:{self.group_prefix}{group}"

    def safe_url(self) -> str:
        """The broker URL without its password, for messages."""
        return AdapterURL.split(self.url, SCHEMES).shown
