"""The RabbitMQ adapter's settings: read from the URL, its query and the ``[options.rabbitmq]`` table.

A key given in both the URL query and the option table takes the URL's value. Secrets never
sit in configuration files: user and password come from the URL's user part or from the
``CORE_RABBITMQ_USER`` / ``CORE_RABBITMQ_PASSWORD`` environment variables.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlunsplit

from hookspecs import AdapterURL, Option, PipelineError, number, path, read_options, tls_context

from core_plugin_rabbitmq.plugin import SCHEMES

#: Dead letters of topic ``T`` are published on topic ``dead.T``.
DEAD_LETTER_PREFIX = "dead."
#: The consumer group whose queue keeps the dead letters of a topic from the first subscription on.
DEAD_LETTER_GROUP = "dead-letters"
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


def _name(value: Any) -> str:
    text = str(value)
    if not text or len(text) > 200:
        raise ValueError
    return text


#: Every option: converter, default, what is allowed (shown when a value is refused).
_OPTIONS: dict[str, Option] = {
    "exchange": Option(_name, "core", "the name of the topic exchange (1 to 200 characters)"),
    "group_prefix": Option(str, "", "a string put before every consumer group name"),
    "prefetch": Option(number(int, 1), 256, "a whole number >= 1"),
    "max_deliveries": Option(number(int, 0), 10, "a whole number >= 0 (0: redeliver forever)"),
    "connect_timeout": Option(number(float, 0.1), 5.0, "seconds, >= 0.1"),
    "publish_timeout": Option(number(float, 0.1), 5.0, "seconds, >= 0.1"),
    "reconnect_wait": Option(number(float, 0.05), 1.0, "seconds, >= 0.05"),
    "heartbeat": Option(number(int, 0), 30, "seconds between heartbeats, a whole number >= 0 (0: none)"),
    "tls_ca": Option(path, "", "the path of a CA bundle (PEM)"),
    "tls_cert": Option(path, "", "the path of a client certificate (PEM)"),
    "tls_key": Option(path, "", "the path of the client certificate's key (PEM)"),
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
    heartbeat: int
    tls_ca: str
    tls_cert: str
    tls_key: str

    @classmethod
    def parse(cls, url: str, table: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> RabbitOptions:
        """Read ``url`` (``amqp[s]://[user:password@]host[:port][/vhost]?key=value``) and ``table``."""
        environ = os.environ if environ is None else environ
        parts = AdapterURL.split(url, SCHEMES, example="amqp://user:password@host:5672/vhost")
        values = read_options("rabbitmq", {**table, **dict(parts.params())}, _OPTIONS)
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
        if not topic or not all(_TOKEN.fullmatch(part) for part in topic.split(".")):
            raise PipelineError(
                f"topic {topic!r} cannot be a RabbitMQ routing key",
                hint="use dot-separated tokens of letters, digits, '_' or '-' (no spaces, '*' or '#')",
            )
        return topic

    def queue(self, topic: str, group: str) -> str:
        """The durable queue of ``group`` on ``topic``: ``<exchange>:<topic>:<group_prefix><group>``."""
        return f"{self.exchange}:{self.routing_key(topic)}:{self.group_prefix}{group}"

    def safe_url(self) -> str:
        """The broker URL without its password, for messages."""
        return AdapterURL.split(self.url, SCHEMES).shown
