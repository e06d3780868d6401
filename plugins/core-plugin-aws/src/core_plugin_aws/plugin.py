"""The ``aws`` plugin module: hookimpls only.

The adapter, and with it boto3 (and botocore), is imported only when configuration selects an
``aws://`` URL, so ``core plugins list`` never imports the SDK.
"""

from __future__ import annotations

from core.brokers import broker_registration
from hookspecs import AdapterRegistration, PubSub, hookimpl

#: The core contract versions this plugin supports (docs/compatibility.md).
CORE_CONTRACT = ">=1.0,<2"

SCHEMES = ("aws",)


@hookimpl
def core_register_pubsubs() -> list[AdapterRegistration[PubSub]]:
    from core_plugin_aws._options import OPTIONS

    return [broker_registration(
        "aws", SCHEMES, "core_plugin_aws.pubsub:AwsPubSub",
        "AWS SNS/SQS: an SNS topic per prefix and topic, an SQS queue per group subscribed to it, "
        "dead letters after max_deliveries (a redrive policy as the backstop)",
        OPTIONS,
    )]
