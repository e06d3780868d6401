"""The broker base of the adapter toolkit: what every pub/sub adapter does alike.

A broker plugin subclasses :class:`BrokerPubSub`, :class:`BrokerSubscription` and
:class:`BrokerDelivery` and keeps only what is specific to its SDK; the base owns reconnecting
with a throttled backoff, publishing with failures sorted into
:class:`~hookspecs.PubSubUnavailable`, the subscription registry, settle-once deliveries and an
idempotent close. See ``docs/plugin-helpers.md``. Import every name from ``core.brokers``.
"""

from __future__ import annotations

from core.brokers._connection import Backoff
from core.brokers._conventions import (
    BROKER_OPTIONS,
    DEAD_DELIVERIES,
    DEAD_GROUP,
    DEAD_LETTER_GROUP,
    DEAD_LETTER_PREFIX,
    DEAD_REASON,
    DEAD_TOPIC,
    KEY_HEADER,
    broker_registration,
    dotted_topic,
    is_dotted,
)
from core.brokers._pubsub import NOT_YET, BrokerPubSub
from core.brokers._settlements import Settlements
from core.brokers._subscription import BrokerDelivery, BrokerSubscription

__all__ = [
    "BROKER_OPTIONS",
    "DEAD_DELIVERIES",
    "DEAD_GROUP",
    "DEAD_LETTER_GROUP",
    "DEAD_LETTER_PREFIX",
    "DEAD_REASON",
    "DEAD_TOPIC",
    "KEY_HEADER",
    "NOT_YET",
    "Backoff",
    "BrokerDelivery",
    "BrokerPubSub",
    "BrokerSubscription",
    "Settlements",
    "broker_registration",
    "dotted_topic",
    "is_dotted",
]
