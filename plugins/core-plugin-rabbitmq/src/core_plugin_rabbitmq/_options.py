"""The RabbitMQ adapter's settings: read from the URL, its query and the ``[options.rabbitmq]`` table.

A key given in both the URL query and the option table takes the URL's value. Secrets never
sit in configuration files: user and password come from the URL's user part or from the
``CORE_RABBITMQ_USER`` / ``CORE_RABBITMQ_PASSWORD`` environment variables.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

from core.errors import ConfigError, PipelineError

from core_plugin_rabbitmq.plugin import SCHEMES

#: Dead letters of topic ``T`` are published on topic ``dead.T``.
DEAD_LETTER_PREFIX = "dead."
#: The consumer group whose queue keeps the dead letters of a topic from the first subscription on.
DEAD_LETTER_GROUP = "dead-letters"
_WHERE = "[options.rabbitmq] or the pubsub URL query"
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


def _positive(kind: type[int] | type[float], low: float) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        number = kind(value)
        if isinstance(value, bool) or number < low:
            raise ValueError
        return number

    return check


def _name(value: Any) -> str:
    text = str(value)
    if not text or len(text) > 200:
        raise ValueError
    return text


def _path(value: Any) -> str:
    return os.path.expanduser(str(value)) if value else ""


#: Every option: converter, default, what is allowed (shown when a value is refused).
_OPTIONS: dict[str, tuple[Callable[[Any], Any], Any, str]] = {
    "exchange": (_name, "core", "the name of the topic exchange (1 to 200 characters)"),
    "group_prefix": (str, "", "a string put before every consumer group name"),
    "prefetch": (_positive(int, 1), 256, "a whole number >= 1"),
    "max_deliveries": (_positive(int, 0), 10, "a whole number >= 0 (0: redeliver forever)"),
    "connect_timeout": (_positive(float, 0.1), 5.0, "seconds, >= 0.1"),
    "publish_timeout": (_positive(float, 0.1), 5.0, "seconds, >= 0.1"),
    "reconnect_wait": (_positive(float, 0.05), 1.0, "seconds, >= 0.05"),
    "heartbeat": (_positive(int, 0), 30, "seconds between heartbeats, a whole number >= 0 (0: none)"),
    "tls_ca": (_path, "", "the path of a CA bundle (PEM)"),
    "tls_cert": (_path, "", "the path of a client certificate (PEM)"),
    "tls_key": (_path, "", "the path of the client certificate's key (PEM)"),
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
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ConfigError("pubsub URL", "scheme", parts.scheme, "amqp:// or amqps://")
        userinfo, _, host = parts.netloc.rpartition("@")
        if not host:
            raise ConfigError("pubsub URL", "host", url, "amqp://user:password@host:5672/vhost")
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
        user, _, password = userinfo.partition(":")
        user = unquote(user) if user else environ.get("CORE_RABBITMQ_USER", "")
        password = unquote(password) if password else environ.get("CORE_RABBITMQ_PASSWORD", "")
        credentials = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
        query = f"heartbeat={values['heartbeat']}"
        clean = urlunsplit((parts.scheme, credentials + host, parts.path or "/", query, ""))
        return cls(url=clean, tls=parts.scheme == "amqps", **values)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``amqps://`` (system CAs unless ``tls_ca``), else ``None``."""
        if not (self.tls or self.tls_ca or self.tls_cert):
            return None
        context = ssl.create_default_context(cafile=self.tls_ca or None)
        if self.tls_cert:
            context.load_cert_chain(self.tls_cert, self.tls_key or None)
        return context

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
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
