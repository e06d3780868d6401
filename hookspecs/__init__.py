"""The contract every ``core`` plugin codes against.

Hook markers, the hookspecs (one module per adapter kind), the adapter protocols and the data
types they exchange. This package imports nothing from the ``core`` engine.
"""

from __future__ import annotations

from hookspecs._markers import PROJECT_NAME, hookimpl, hookspec
from hookspecs.destination import (
    DEFAULT_SCHEDULE,
    Action,
    Backoff,
    Destination,
    DestinationSpec,
    LoadResult,
    Payload,
    Schedule,
    Then,
)
from hookspecs.flow import Flow, FlowSpec
from hookspecs.ids import new_id
from hookspecs.lifecycle import LifecycleSpec
from hookspecs.pubsub import (
    JOBS_TOPIC,
    Delivery,
    Message,
    PubSub,
    PubSubSpec,
    PubSubUnavailable,
    Subscription,
)
from hookspecs.registration import ADAPTER_KINDS, AdapterRegistration
from hookspecs.source import (
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
from hookspecs.store import (
    CLAIMABLE_STATUSES,
    FINAL_STATUSES,
    Claim,
    Event,
    Job,
    Page,
    Queue,
    Status,
    Store,
    StoreSpec,
    StoreUnavailable,
    Transition,
    WhereEvent,
    WhereJob,
)
from hookspecs.supervisor import Lease, Node, Supervisor, SupervisorSpec
from hookspecs.toolkit import Toolkit
from hookspecs.wanderer import Direction, Migration, MigrationRun, Wanderer, WandererSpec

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

__all__ = [
    "ADAPTER_KINDS",
    "CLAIMABLE_STATUSES",
    "DEFAULT_SCHEDULE",
    "FINAL_STATUSES",
    "JOBS_TOPIC",
    "PROJECT_NAME",
    "SPEC_CLASSES",
    "Action",
    "AdapterRegistration",
    "Backoff",
    "CdcTrigger",
    "Claim",
    "CronTrigger",
    "Delivery",
    "Destination",
    "Direction",
    "Emit",
    "Event",
    "EventDraft",
    "Flow",
    "HttpRequest",
    "HttpTrigger",
    "Job",
    "Lease",
    "LoadResult",
    "Message",
    "Migration",
    "MigrationRun",
    "Node",
    "Page",
    "Payload",
    "PubSub",
    "PubSubUnavailable",
    "Queue",
    "Rejected",
    "Schedule",
    "Source",
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
    "hookimpl",
    "hookspec",
    "new_id",
]
