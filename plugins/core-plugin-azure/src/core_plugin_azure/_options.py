"""The Service Bus adapter's settings: read from the URL, its query and the ``[options.azure]``
table, the credentials from the environment, and the Service Bus names of core's topics and
consumer groups.

A key given in both the URL query and the option table takes the URL's value. The namespace is
the URL's host part (``azure://my-ns.servicebus.windows.net``), or the ``Endpoint`` of the
connection string. No secret is an option, and none is read from a file: a connection string
comes from the environment variable that ``connection_string_env`` names, otherwise
azure-identity's ``DefaultAzureCredential`` is used (the ``identity`` extra).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.brokers import BROKER_OPTIONS, DEAD_LETTER_PREFIX, dotted_topic, is_dotted
from hookspecs import AdapterURL, ConfigError, Option, PipelineError, choice, flag, number, read_options

from core_plugin_azure.plugin import SCHEMES

#: What Service Bus allows in a subscription name (at most 50, starting and ending alnum).
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9._-]+")
_SUBSCRIPTION_MAX, _TOPIC_MAX = 50, 260
_HOST = re.compile(r"[A-Za-z0-9.-]+(:\d{1,5})?")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WILDCARDS = "no wildcards or '/'"
#: Seconds one receive call waits on the broker for messages before it asks again.
RECEIVE_WAIT = 1.0
#: The variable holding the connection string unless ``connection_string_env`` names another.
DEFAULT_VARIABLE = "CORE_AZURE_SERVICEBUS"
#: The AMQP port of the namespace (TLS), and of the development emulator (plain).
TLS_PORT, PLAIN_PORT = 5671, 5672


def _prefix(value: Any) -> str:
    text = str(value)
    if text and not (is_dotted(text) and text[0].isalnum()):
        raise ValueError
    return text


def _variable(value: Any) -> str:
    text = str(value)
    if not _VARIABLE.fullmatch(text):
        raise ValueError
    return text


#: Service Bus's TLS uses the system's CAs (or tls_ca); it has no client certificates.
_SHARED = {key: option for key, option in BROKER_OPTIONS.items() if key not in ("tls_cert", "tls_key")}

#: Every option: converter, default, what is allowed, what it does.
OPTIONS: dict[str, Option] = {
    "prefix": Option(
        _prefix, "core", "dot-separated tokens of letters, digits, '_' or '-', starting with a letter or digit "
        "(or empty)", "put before every topic's Service Bus topic name ('' reads topics by their own name)",
    ),
    "connection_string_env": Option(
        _variable, DEFAULT_VARIABLE, "the name of an environment variable",
        "the environment variable holding the namespace's connection string (never put it in a file)",
    ),
    "credential": Option(
        choice("auto", "connection_string", "identity"), "auto", "auto, connection_string or identity",
        "auto: the connection string if its variable is set, else azure-identity's DefaultAzureCredential",
    ),
    "manage_entities": Option(
        flag, True, "true or false",
        "create missing topics and subscriptions with the SDK's administration client (needs Manage rights)",
    ),
    "max_messages": Option(
        number(int, 1), 1000, "a whole number >= 1", "unsettled messages one member holds at most (flow control)"
    ),
    "receive_batch": Option(
        number(int, 1, 5000), 100, "a whole number from 1 to 5000", "messages one receive call asks for at most"
    ),
    "prefetch": Option(
        number(int, 0, 50000), 0, "a whole number >= 0",
        "messages the SDK locks ahead of a receive call (0: only what is asked for, no lock held idle)",
    ),
    "max_lock_renewal": Option(
        number(float, 0.0), 3600.0, "seconds, >= 0 (0: never renew)",
        "how long a member renews the lock of a delivery it holds (a long load) before letting it expire",
    ),
    **_SHARED,
}


def parse_connection_string(text: str) -> dict[str, str]:
    """The ``Key=value`` pairs of a Service Bus connection string, keys in lower case."""
    pairs = [part.split("=", 1) for part in text.strip().rstrip(";").split(";") if part.strip()]
    if not pairs or any(len(pair) != 2 for pair in pairs):
        raise ValueError("not a connection string")
    return {key.strip().lower(): value.strip() for key, value in pairs}


@dataclass(frozen=True, slots=True)
class AzureOptions:
    """Validated settings of one Service Bus adapter."""

    namespace: str
    emulator: bool
    prefix: str
    connection_string_env: str
    credential: str
    manage_entities: bool
    max_messages: int
    receive_batch: int
    prefetch: int
    max_lock_renewal: float
    group_prefix: str
    max_deliveries: int
    connect_timeout: float
    publish_timeout: float
    reconnect_wait: float
    reconnect_max: float
    tls_ca: str
    #: The connection string (a secret: never shown, not in repr).
    connection_string: str = field(default="", repr=False)

    @classmethod
    def parse(cls, url: str, table: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> AzureOptions:
        """Read ``url`` (``azure://NAMESPACE?key=value``), ``table`` and the environment."""
        environ = os.environ if environ is None else environ
        parts = AdapterURL.split(url, SCHEMES)
        if parts.user or parts.password or parts.path.strip("/") or (parts.hosts and not _HOST.fullmatch(parts.hosts)):
            raise ConfigError("pubsub URL", "namespace", parts.shown,
                              "azure://NAMESPACE.servicebus.windows.net (no user, password or path: credentials "
                              "come from the environment)")
        values = read_options("azure", {**table, **dict(parts.params())}, OPTIONS)
        variable = values["connection_string_env"]
        secret = environ.get(variable, "") if values["credential"] != "identity" else ""
        namespace, emulator = parts.hosts, False
        if secret:
            try:
                settings = parse_connection_string(secret)
            except ValueError:
                raise ConfigError(f"environment variable {variable}", "connection string", "(not shown)",
                                  "Endpoint=sb://NAMESPACE.servicebus.windows.net/;SharedAccessKeyName=...;"
                                  "SharedAccessKey=...") from None
            endpoint = settings.get("endpoint", "").split("://", 1)[-1].strip("/")
            if not endpoint or not ("sharedaccesskey" in settings or "sharedaccesssignature" in settings):
                raise ConfigError(f"environment variable {variable}", "connection string", "(not shown)",
                                  "a connection string with Endpoint and SharedAccessKeyName/SharedAccessKey "
                                  "(or SharedAccessSignature)")
            emulator = settings.get("usedevelopmentemulator", "").lower() == "true"
            if namespace and namespace.split(":")[0].lower() != endpoint.split(":")[0].lower():
                raise ConfigError("pubsub URL", "namespace", parts.shown,
                                  f"the namespace of the connection string in {variable} ({endpoint}), or none")
            namespace = endpoint
        elif values["credential"] == "connection_string":
            raise ConfigError("pubsub options", "credential", "connection_string",
                              f"set the environment variable {variable} to the namespace's connection string")
        elif not namespace:
            raise ConfigError("pubsub URL", "namespace", parts.shown,
                              f"azure://NAMESPACE.servicebus.windows.net (credentials from azure-identity), "
                              f"or set {variable} to a connection string")
        return cls(namespace=namespace, emulator=emulator, connection_string=secret, **values)

    @property
    def open_timeout(self) -> float:
        """How long opening a sender or receiver may take: the connection, the CBS token and
        the link's attach (the SDK polls each answer, some 50 ms apart)."""
        return self.connect_timeout + self.publish_timeout

    @property
    def host_port(self) -> tuple[str, int]:
        """Where the AMQP connection goes."""
        host, _, port = self.namespace.partition(":")
        return host, int(port) if port else (PLAIN_PORT if self.emulator else TLS_PORT)

    @property
    def location(self) -> str:
        """Where the adapter talks to, fit for a message (never a key)."""
        how = "the development emulator over plain AMQP" if self.emulator else "AMQP over TLS"
        return f"namespace {self.namespace} ({how})"

    def topic_name(self, topic: str) -> str:
        """The Service Bus topic of ``topic``: ``<prefix>.<topic>``; refuses what it cannot carry."""
        dotted_topic(topic, "Service Bus", "topic name", _WILDCARDS)
        name = f"{self.prefix}.{topic}" if self.prefix else topic
        if not name[0].isalnum() or not name[-1].isalnum() or len(name) > _TOPIC_MAX:
            raise PipelineError(
                f"topic {topic!r} cannot be a Service Bus topic name",
                hint=f"a topic name starts and ends with a letter or digit and is at most {_TOPIC_MAX} long",
            )
        return name

    def dead_letter_topic(self, topic: str) -> str:
        """Where the dead letters of ``topic`` go: topic ``dead.<topic>``."""
        return f"{DEAD_LETTER_PREFIX}{topic}"

    def subscription_name(self, group: str) -> str:
        """The subscription of ``group``: its name if Service Bus takes it, else a readable,
        unique name of at most 50 characters."""
        full = self.group_prefix + group
        if len(full) <= _SUBSCRIPTION_MAX and not _NOT_ALLOWED.search(full) and full[0].isalnum() \
                and full[-1].isalnum():
            return full
        digest = hashlib.sha1(full.encode()).hexdigest()[:10]
        readable = _NOT_ALLOWED.sub("_", full).strip("._-")[: _SUBSCRIPTION_MAX - 11] or "g"
        if not readable[0].isalnum():
            readable = "g" + readable[1:]
        return f"{readable}-{digest}"
