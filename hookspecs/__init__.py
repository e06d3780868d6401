"""The contract every ``core`` plugin codes against.

Hook markers, the hookspecs (one module per adapter kind), the adapter protocols and the data
types they exchange. This package imports nothing from the ``core`` engine. Import every name from ``hookspecs``
itself: the submodules (``_store``, ``_pubsub``, ...) are private, as in pluggy.
"""

from __future__ import annotations

from hookspecs._capabilities import Capability
from hookspecs._destination import (
    DEFAULT_SCHEDULE,
    Action,
    Backoff,
    Destination,
    DestinationSpec,
    Discard,
    LoadResult,
    Payload,
    RetryAfter,
    Schedule,
    Then,
    check_name,
)
from hookspecs._edge import HMAC_ALGORITHMS, ApiKey, Auth, Cors, HmacSignature, Secret, StandardWebhook
from hookspecs._errors import ConfigError, CoreError, PipelineError, PluginError
from hookspecs._flow import Flow, FlowSpec
from hookspecs._ids import new_id
from hookspecs._kinds import ADAPTER_KINDS, AdapterKind
from hookspecs._lifecycle import LifecycleSpec
from hookspecs._markers import CONTRACT, PROJECT_NAME, hookimpl, hookspec
from hookspecs._options import (
    AdapterURL,
    Option,
    choice,
    flag,
    number,
    path,
    read_options,
    redacted_url,
    strings,
    table,
    tls_context,
)
from hookspecs._pubsub import (
    JOBS_TOPIC,
    Delivery,
    Message,
    PubSub,
    PubSubSpec,
    PubSubUnavailable,
    Subscription,
)
from hookspecs._registration import AdapterRegistration
from hookspecs._source import (
    CdcTrigger,
    CronTrigger,
    Emit,
    EventDraft,
    HttpRequest,
    HttpTrigger,
    Rejected,
    Source,
    SourceSpec,
    SubscriptionTrigger,
    Trigger,
)
from hookspecs._sql import QueryResult, RenderedSQL, SQLWarehouse
from hookspecs._store import (
    CLAIMABLE_STATUSES,
    FINAL_STATUSES,
    LEASE_EXPIRED,
    OWNER_LAPSED,
    Claim,
    DisabledFlow,
    Duplicate,
    Event,
    IdempotencyKey,
    Job,
    Page,
    Pause,
    Queue,
    Status,
    Store,
    StoreSpec,
    StoreUnavailable,
    Transition,
    WhereEvent,
    WhereJob,
)
from hookspecs._supervisor import Lease, LeaseListing, Node, Supervisor, SupervisorSpec
from hookspecs._toolkit import Toolkit
from hookspecs._transitions import (
    ALLOWED_TRANSITIONS,
    RefusedTransition,
    check_transitions,
    ends_its_attempt,
    is_allowed,
)
from hookspecs._wanderer import Direction, Migration, MigrationRun, MigrationScript, Wanderer, WandererSpec
from hookspecs._webhooks import read_secrets, sign_webhook, v1_signatures, webhook_digest, whsec_key

#: Every class holding hookspecs, in the order the host registers them.
SPEC_CLASSES = (
    StoreSpec,
    PubSubSpec,
    SupervisorSpec,
    WandererSpec,
    SourceSpec,
    DestinationSpec,
    FlowSpec,
    LifecycleSpec,
)

__contract__ = CONTRACT

__all__ = [
    "ADAPTER_KINDS",
    "ALLOWED_TRANSITIONS",
    "CLAIMABLE_STATUSES",
    "CONTRACT",
    "DEFAULT_SCHEDULE",
    "FINAL_STATUSES",
    "HMAC_ALGORITHMS",
    "JOBS_TOPIC",
    "LEASE_EXPIRED",
    "OWNER_LAPSED",
    "PROJECT_NAME",
    "SPEC_CLASSES",
    "Action",
    "AdapterKind",
    "AdapterRegistration",
    "AdapterURL",
    "ApiKey",
    "Auth",
    "Backoff",
    "Capability",
    "CdcTrigger",
    "Claim",
    "ConfigError",
    "CoreError",
    "Cors",
    "CronTrigger",
    "Delivery",
    "Destination",
    "Direction",
    "DisabledFlow",
    "Discard",
    "Duplicate",
    "Emit",
    "Event",
    "EventDraft",
    "Flow",
    "HmacSignature",
    "HttpRequest",
    "HttpTrigger",
    "IdempotencyKey",
    "Job",
    "Lease",
    "LeaseListing",
    "LoadResult",
    "Message",
    "Migration",
    "MigrationRun",
    "MigrationScript",
    "Node",
    "Option",
    "Page",
    "Pause",
    "Payload",
    "PipelineError",
    "PluginError",
    "PubSub",
    "PubSubUnavailable",
    "QueryResult",
    "Queue",
    "RefusedTransition",
    "Rejected",
    "RenderedSQL",
    "RetryAfter",
    "SQLWarehouse",
    "Schedule",
    "Secret",
    "Source",
    "StandardWebhook",
    "Status",
    "Store",
    "StoreUnavailable",
    "Subscription",
    "SubscriptionTrigger",
    "Supervisor",
    "Then",
    "Toolkit",
    "Transition",
    "Trigger",
    "Wanderer",
    "WhereEvent",
    "WhereJob",
    "check_name",
    "check_transitions",
    "choice",
    "ends_its_attempt",
    "flag",
    "hookimpl",
    "hookspec",
    "is_allowed",
    "new_id",
    "number",
    "path",
    "read_options",
    "read_secrets",
    "redacted_url",
    "sign_webhook",
    "strings",
    "table",
    "tls_context",
    "v1_signatures",
    "webhook_digest",
    "whsec_key",
]
