"""Options of the Kafka adapter: the URL, its query, the ``[options.kafka]`` table and the
environment, turned into validated settings and librdkafka configuration.

Precedence: the option table gives defaults, the URL query overrides them. Credentials come
from the environment (or the URL's user info), never from a file checked into a project.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.brokers import BROKER_OPTIONS
from hookspecs import AdapterURL, CoreError, Option, choice, flag, number, read_options, table

#: URL scheme -> librdkafka ``security.protocol``.
SCHEMES = {"kafka": "PLAINTEXT", "kafka+ssl": "SSL", "kafka+sasl": "SASL_SSL"}

#: Environment variables read for TLS and SASL, and the librdkafka property each one sets.
ENVIRONMENT = {
    "CORE_KAFKA_SASL_MECHANISM": "sasl.mechanism",
    "CORE_KAFKA_SASL_USERNAME": "sasl.username",
    "CORE_KAFKA_SASL_PASSWORD": "sasl.password",
    "CORE_KAFKA_SSL_CA_LOCATION": "ssl.ca.location",
    "CORE_KAFKA_SSL_CERTIFICATE_LOCATION": "ssl.certificate.location",
    "CORE_KAFKA_SSL_KEY_LOCATION": "ssl.key.location",
    "CORE_KAFKA_SSL_KEY_PASSWORD": "ssl.key.password",
}

_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def _whole(low: int, high: int, default: int, meaning: str) -> Option:
    """A whole-number option from ``low`` to ``high``."""
    return Option(number(int, low, high), default, f"a whole number from {low} to {high}", meaning)


def _text(value: Any) -> str:
    if not isinstance(value, str) or (value and not _TOPIC.match(value)):
        raise ValueError
    return value


_NAME = "letters, digits, '.', '_' or '-' (Kafka's topic and group alphabet)"
#: Every option: converter, default, what is allowed and what it does. The docs' option table mirrors this.
OPTIONS: dict[str, Option] = {
    "topic_prefix": Option(_text, "", _NAME, "prepended to every topic name"),
    "group_prefix": Option(_text, "", _NAME, "prepended to every consumer group name"),
    "publish_timeout_ms": _whole(100, 3_600_000, 5000, "a publish not acknowledged by then fails"),
    "max_redeliveries": _whole(0, 1_000_000, 5, "nacks of one message before it is dead-lettered"),
    "redelivery_delay_ms": _whole(0, 3_600_000, 200, "wait before a nacked message is delivered again"),
    "max_in_flight": _whole(1, 1_000_000, 1000, "unsettled deliveries per subscription before fetching pauses"),
    "session_timeout_ms": _whole(1000, 3_600_000, 10_000, "a member silent this long leaves its group"),
    "join_timeout_ms": _whole(100, 3_600_000, 30_000, "how long subscribe() waits for its first assignment"),
    "offset_reset": Option(
        choice("latest", "earliest"), "latest", "latest or earliest", "where a new group starts reading a topic"
    ),
    "tls": Option(flag, True, "true or false", "kafka+sasl only: false uses SASL_PLAINTEXT instead of SASL_SSL"),
    # librdkafka reconnects by itself; these pace the adapter's own attempts after a failed open
    "reconnect_wait": BROKER_OPTIONS["reconnect_wait"],
    "reconnect_max": BROKER_OPTIONS["reconnect_max"],
    "config": Option(
        table, {}, "a table of librdkafka properties ([options.kafka.config], or config.<name>= in the URL query)",
        "raw librdkafka properties, applied last",
    ),
}


@dataclass(frozen=True, slots=True)
class KafkaOptions:
    """Validated adapter settings plus the librdkafka properties shared by every client."""

    bootstrap: str
    topic_prefix: str
    group_prefix: str
    publish_timeout_ms: int
    max_redeliveries: int
    redelivery_delay_ms: int
    max_in_flight: int
    session_timeout_ms: int
    join_timeout_ms: int
    offset_reset: str
    tls: bool
    reconnect_wait: float
    reconnect_max: float
    client: Mapping[str, Any]

    @classmethod
    def parse(
        cls, url: str, options: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> KafkaOptions:
        """Read ``url`` (``kafka://host:port,host:port?topic_prefix=...``) and ``options``.

        Raw librdkafka properties come from the ``config`` table of ``options`` and from
        ``config.<property>`` query keys (``?config.linger.ms=5``); they are applied last.
        """
        environ = os.environ if environ is None else environ
        parts = AdapterURL.split(url, SCHEMES)
        if not parts.hosts or any(not h.strip() for h in parts.hosts.split(",")):
            raise CoreError(f"kafka pubsub: {parts.shown!r} names no broker",
                            hint="write kafka://host:port[,host:port...]")
        given = dict(options)
        query = parts.params(keep_blank_values=True)
        given.update((k, v) for k, v in query if not k.startswith("config."))
        values = read_options("kafka", given, OPTIONS, also="and librdkafka properties as config.<name>")
        raw = values.pop("config")
        client = _security(parts, values["tls"], environ)
        client.update({"bootstrap.servers": parts.hosts, **{str(k): v for k, v in raw.items()}})
        client.update((k.removeprefix("config."), v) for k, v in query if k.startswith("config."))
        return cls(bootstrap=parts.hosts, client=client, **values)

    def topic(self, name: str) -> str:
        """The Kafka topic for the adapter-level ``name``."""
        return self._checked("topic", self.topic_prefix + name)

    def group(self, name: str) -> str:
        """The Kafka consumer group for the adapter-level ``name``."""
        return self._checked("consumer group", self.group_prefix + name)

    @staticmethod
    def _checked(what: str, name: str) -> str:
        if not _TOPIC.match(name):
            raise CoreError(f"kafka pubsub: {what} {name!r} is not a valid Kafka name",
                            hint="use 1 to 249 letters, digits, '.', '_' or '-'")
        return name


def _security(url: AdapterURL, tls: bool, environ: Mapping[str, str]) -> dict[str, Any]:
    """``security.protocol`` and credentials for the URL's scheme, from the environment or user info."""
    protocol = SCHEMES[url.scheme]
    if protocol == "SASL_SSL" and not tls:
        protocol = "SASL_PLAINTEXT"
    config: dict[str, Any] = {"security.protocol": protocol}
    if protocol == "PLAINTEXT":
        return config
    for variable, prop in ENVIRONMENT.items():
        if environ.get(variable) and (prop.startswith("ssl.") or protocol.startswith("SASL")):
            config[prop] = environ[variable]
    if protocol.startswith("SASL"):
        if url.user:
            config["sasl.username"], config["sasl.password"] = url.user, url.password
        config.setdefault("sasl.mechanism", "PLAIN")
        if not config.get("sasl.username"):
            raise CoreError(f"kafka pubsub: {url.scheme}:// needs SASL credentials",
                            hint="set CORE_KAFKA_SASL_USERNAME and CORE_KAFKA_SASL_PASSWORD "
                                 "(and CORE_KAFKA_SASL_MECHANISM if not PLAIN)")
    return config
