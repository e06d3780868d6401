"""The ``kafka`` plugin's hookimpls: what ``core`` loads through the ``core.plugins`` entry point.

Kept light on purpose: confluent-kafka is imported by the factory, only when configuration
selects a ``kafka://`` URL, so listing plugins never loads librdkafka.
"""

from __future__ import annotations

from typing import Any

from hookspecs import AdapterRegistration, PubSub, hookimpl


def _pubsub(url: str, options: dict[str, Any]) -> PubSub:
    from core_plugin_kafka.pubsub import KafkaPubSub

    return KafkaPubSub(url, options)


@hookimpl
def core_register_pubsubs() -> list[AdapterRegistration[PubSub]]:
    return [AdapterRegistration(
        name="kafka", schemes=("kafka", "kafka+ssl", "kafka+sasl"), factory=_pubsub,
        capabilities=frozenset({"reconnect"}),
        description="Kafka topics and consumer groups (confluent-kafka / librdkafka)",
    )]
