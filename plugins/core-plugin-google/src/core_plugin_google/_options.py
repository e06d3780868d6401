"""The Google Pub/Sub adapter's settings: read from the URL, its query and the
``[options.google]`` table, and the Pub/Sub names of core's topics and consumer groups.

A key given in both the URL query and the option table takes the URL's value. The project is
the URL's host part (``google://my-project``). No secret is an option: credentials come from
Google's standard chain (``GOOGLE_APPLICATION_CREDENTIALS``, the metadata server, ``gcloud``),
and none are needed for the emulator (``emulator_host`` or ``PUBSUB_EMULATOR_HOST``).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.brokers import BROKER_OPTIONS, DEAD_LETTER_PREFIX, dotted_topic, is_dotted
from hookspecs import AdapterURL, ConfigError, Option, PipelineError, number, read_options

from core_plugin_google.plugin import SCHEMES

#: What Pub/Sub allows in a topic or subscription ID (it must also start with a letter).
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_.~+%-]+")
_PROJECT = re.compile(r"[A-Za-z0-9._:-]+")
_HOST_PORT = re.compile(r"[A-Za-z0-9.-]+:\d{1,5}|\[[0-9A-Fa-f:]+\]:\d{1,5}")
_WILDCARDS = "no wildcards"


def _prefix(value: Any) -> str:
    text = str(value)
    if text and not (is_dotted(text) and text[0].isalpha() and not text.lower().startswith("goog")):
        raise ValueError
    return text


def _host_port(value: Any) -> str:
    text = str(value)
    if text and not _HOST_PORT.fullmatch(text):
        raise ValueError
    return text


#: Google's adapter has no TLS options: gRPC to Google always uses TLS with Google's CAs.
_SHARED = {key: option for key, option in BROKER_OPTIONS.items() if not key.startswith("tls_")}

#: Every option: converter, default, what is allowed, what it does.
OPTIONS: dict[str, Option] = {
    "prefix": Option(
        _prefix, "core", "dot-separated tokens of letters, digits, '_' or '-', starting with a letter (or empty)",
        "put before every topic's Pub/Sub topic ID ('' reads topics by their own name)",
    ),
    "emulator_host": Option(
        _host_port, "", "host:port of a Pub/Sub emulator (or empty)",
        "talk to this emulator without credentials (default: PUBSUB_EMULATOR_HOST, else Google)",
    ),
    "ack_deadline": Option(
        number(int, 10, 600), 30, "whole seconds from 10 to 600",
        "an unsettled delivery whose member died comes again after this (a live member extends it)",
    ),
    "max_messages": Option(
        number(int, 1), 1000, "a whole number >= 1", "unsettled messages one member holds at most (flow control)"
    ),
    "batch_latency": Option(
        number(float, 0.0, 1.0), 0.005, "seconds from 0 to 1", "how long a publish waits to share a request with others"
    ),
    **_SHARED,
    # Pub/Sub's own dead-letter policy, set as a backstop, allows at most 100 attempts.
    "max_deliveries": Option(
        number(int, 0, 100), 10, "a whole number from 0 to 100 (0: redeliver forever)",
        "deliveries of one message to a group before it is dead-lettered",
    ),
}


@dataclass(frozen=True, slots=True)
class GoogleOptions:
    """Validated settings of one Pub/Sub adapter."""

    project: str
    prefix: str
    emulator_host: str
    ack_deadline: int
    max_messages: int
    batch_latency: float
    group_prefix: str
    max_deliveries: int
    connect_timeout: float
    publish_timeout: float
    reconnect_wait: float
    reconnect_max: float

    @classmethod
    def parse(cls, url: str, table: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> GoogleOptions:
        """Read ``url`` (``google://PROJECT_ID?key=value``) and ``table``."""
        environ = os.environ if environ is None else environ
        parts = AdapterURL.split(url, SCHEMES, example="google://PROJECT_ID (e.g. google://my-project)")
        if parts.user or parts.password or parts.path.strip("/") or not _PROJECT.fullmatch(parts.hosts):
            raise ConfigError("pubsub URL", "project", parts.shown, "google://PROJECT_ID, with no user, port or path")
        values = read_options("google", {**table, **dict(parts.params())}, OPTIONS)
        values["emulator_host"] = values["emulator_host"] or environ.get("PUBSUB_EMULATOR_HOST", "")
        return cls(project=parts.hosts, **values)

    @property
    def location(self) -> str:
        """Where the adapter talks to, fit for a message."""
        where = f"the emulator at {self.emulator_host}" if self.emulator_host else "Google Cloud"
        return f"project {self.project!r} on {where}"

    def topic_id(self, topic: str) -> str:
        """The Pub/Sub topic ID of ``topic``: ``<prefix>.<topic>``; refuses what it cannot carry."""
        dotted_topic(topic, "Pub/Sub", "topic ID", _WILDCARDS)
        name = f"{self.prefix}.{topic}" if self.prefix else topic
        if not name[0].isalpha() or name.lower().startswith("goog") or len(name) > 255:
            raise PipelineError(
                f"topic {topic!r} cannot be a Pub/Sub topic ID",
                hint="without a prefix a topic must start with a letter, not with 'goog', and be at most 255 long",
            )
        return name

    def topic_path(self, topic: str) -> str:
        """The full resource name of ``topic``'s Pub/Sub topic."""
        return f"projects/{self.project}/topics/{self.topic_id(topic)}"

    def dead_letter_topic(self, topic: str) -> str:
        """Where the dead letters of ``topic`` go: topic ``dead.<topic>``."""
        return f"{DEAD_LETTER_PREFIX}{topic}"

    def subscription_id(self, topic: str, group: str) -> str:
        """The subscription ID of ``group`` on ``topic``: readable, and unique per pair."""
        full = self.group_prefix + group
        digest = hashlib.sha1(f"{topic}\0{full}".encode()).hexdigest()[:10]
        readable = _NOT_ALLOWED.sub("_", f"{full}__{self.topic_id(topic)}")[:200]
        if not readable[0].isalpha() or readable.lower().startswith("goog"):
            readable = f"g-{readable}"
        return f"{readable}_{digest}"

    def subscription_path(self, topic: str, group: str) -> str:
        """The full resource name of ``group``'s subscription on ``topic``."""
        return f"projects/{self.project}/subscriptions/{self.subscription_id(topic, group)}"
