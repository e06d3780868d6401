"""What every broker adapter names and checks the same way: the option rows they share, the
dead-letter topics, the header carrying a message's key, topic names, and the registration.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from typing import Any

from hookspecs import AdapterRegistration, Option, PipelineError, PubSub, number, path

#: Dead letters of topic ``T`` are published on topic ``dead.T``.
DEAD_LETTER_PREFIX = "dead."
#: The consumer group that keeps the dead letters of a topic from the first subscription on.
DEAD_LETTER_GROUP = "dead-letters"
#: The header (or attribute) carrying :attr:`hookspecs.Message.key` on brokers without keys.
KEY_HEADER = "Core-Key"
#: The headers of a dead letter: the topic and group it was dead-lettered from, the deliveries
#: it had, and (where the broker says) why.
DEAD_TOPIC, DEAD_GROUP = "Core-Dead-Topic", "Core-Dead-Group"
DEAD_DELIVERIES, DEAD_REASON = "Core-Dead-Deliveries", "Core-Dead-Reason"

_TOKEN = re.compile(r"[A-Za-z0-9_-]+")

#: The option rows every broker adapter has: converter, default, what is allowed, what it does.
BROKER_OPTIONS: Mapping[str, Option] = {
    "group_prefix": Option(str, "", "any string", "put before every consumer group name"),
    "max_deliveries": Option(
        number(int, 0), 10, "a whole number >= 0 (0: redeliver forever)",
        "deliveries of one message to a group before it is dead-lettered",
    ),
    "connect_timeout": Option(number(float, 0.1), 5.0, "seconds, >= 0.1", "how long one connection attempt may take"),
    "publish_timeout": Option(
        number(float, 0.1), 5.0, "seconds, >= 0.1", "a publish the broker has not confirmed by then fails"
    ),
    "reconnect_wait": Option(
        number(float, 0.05), 1.0, "seconds, >= 0.05", "wait before connecting again after a failed attempt"
    ),
    "reconnect_max": Option(
        number(float, 0.05), 30.0, "seconds, >= 0.05", "the longest wait between attempts (it doubles up to this)"
    ),
    "tls_ca": Option(path, "", "the path of a CA bundle (PEM)", "the CAs trusted for TLS (default: the system's)"),
    "tls_cert": Option(path, "", "the path of a client certificate (PEM)", "the client certificate for mutual TLS"),
    "tls_key": Option(path, "", "the path of the client certificate's key (PEM)", "the key of tls_cert"),
}


def is_dotted(name: str) -> bool:
    """Whether ``name`` is dot-separated tokens of letters, digits, ``_`` or ``-``."""
    return bool(name) and all(_TOKEN.fullmatch(part) for part in name.split("."))


def dotted_topic(topic: str, broker: str, what: str, wildcards: str) -> str:
    """``topic`` if it is dot-separated tokens of letters, digits, ``_`` or ``-``; else a
    :class:`~hookspecs.PipelineError` saying the broker (``what``: its name for a topic)
    cannot carry it. ``wildcards`` names the broker's wildcard characters."""
    if not is_dotted(topic):
        raise PipelineError(
            f"topic {topic!r} cannot be a {broker} {what}",
            hint=f"use dot-separated tokens of letters, digits, '_' or '-' (no spaces, {wildcards})",
        )
    return topic


def broker_registration(
    name: str, schemes: tuple[str, ...], adapter: str, description: str, options: Mapping[str, Option]
) -> AdapterRegistration[PubSub]:
    """The registration of a broker adapter whose class ``adapter`` (``"module:Class"``,
    called with the URL and the options) is imported only when configuration selects it, so
    listing plugins never imports the SDK."""
    module, _, attribute = adapter.partition(":")

    def factory(url: str, values: dict[str, Any]) -> PubSub:
        built: PubSub = getattr(importlib.import_module(module), attribute)(url, values)
        return built

    return AdapterRegistration(
        name=name, schemes=schemes, factory=factory, capabilities=frozenset({"reconnect"}),
        description=description, options=options,
    )
