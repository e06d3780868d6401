"""The ``kafka`` plugin's hookimpls: what ``core`` loads through the ``core.plugins`` entry point.

Kept light on purpose: confluent-kafka is imported only when configuration selects a
``kafka://`` URL, so listing plugins never loads librdkafka.
"""

from __future__ import annotations

from core.brokers import broker_registration
from hookspecs import AdapterRegistration, PubSub, hookimpl

#: The core contract versions this plugin supports (docs/compatibility.md).
CORE_CONTRACT = ">=1.0,<2"


@hookimpl
def core_register_pubsubs() -> list[AdapterRegistration[PubSub]]:
    from core_plugin_kafka._options import OPTIONS, SCHEMES

    return [broker_registration(
        "kafka", tuple(SCHEMES), "core_plugin_kafka.pubsub:KafkaPubSub",
        "Kafka topics and consumer groups (confluent-kafka / librdkafka)",
        OPTIONS,
    )]
