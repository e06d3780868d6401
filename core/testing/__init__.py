"""``core.testing``: the conformance kit every adapter and plugin runs.

One suite per adapter kind (:class:`StoreSuite`, :class:`PubSubSuite`,
:class:`SupervisorSuite`, :class:`WandererSuite`), a model-based store test
(:class:`StoreModelSuite`, a hypothesis state machine) and for a plugin's pipeline objects
(:class:`SourceSuite`, :class:`DestinationSuite`); optional suites for brokers
(:class:`BrokerDeliverySuite`, :class:`DeadLetterSuite`, :class:`BrokerOutageSuite`) and a
plugin's packaging (:class:`PluginPackagingSuite`); test-data helpers; :class:`ServerProcess`, a
server of a test's own for outage tests; :class:`MemoryStore`, the
store in plain Python (``store = "memory://"`` in tests); and
:class:`Deployment`, which runs ``core start`` processes for end-to-end tests (and the broker
suites on it: :class:`BrokerEndToEndSuite`, :class:`DeadLetterEndToEndSuite`). Subclass a suite
in a ``Test…`` class and override one fixture (``adapter_url``, or ``make_adapter``; ``source``
or ``destination``); see ``docs/testing-plugins.md``.

Names are imported lazily, so the pytest plugin registered for every pytest run
(:mod:`core.testing.plugin`) costs nothing until a test module uses the kit.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.testing._base import AdapterPool, AdapterSuite, create_adapter, registration, requires
    from core.testing._memory_store import MemoryStore
    from core.testing.broker import BrokerDeliverySuite, BrokerOutageSuite, Clients, DeadLetterSuite, free_port
    from core.testing.broker_processes import (
        FEED_GROUP,
        FEED_TOPIC,
        BrokerEndToEndSuite,
        DeadLetterEndToEndSuite,
        Outage,
    )
    from core.testing.data import (
        Names,
        make_event,
        make_events,
        make_job,
        make_queue,
        make_transition,
        same_time,
        utcnow,
    )
    from core.testing.packaging import PluginPackagingSuite
    from core.testing.pipeline import DestinationSuite, SourceSuite
    from core.testing.processes import QUICKSTART_APP, RECORDING_APP, CoreProcess, Deployment
    from core.testing.pubsub import Inbox, PubSubSuite, ack_all, bodies
    from core.testing.servers import ServerError, ServerProcess
    from core.testing.store import StoreSuite
    from core.testing.store_model import StoreModelSuite, run_store_model
    from core.testing.supervisor import SupervisorProcessSuite, SupervisorSuite, make_node
    from core.testing.wanderer import RunLog, WandererSuite

_WHERE = {
    "Clients": "broker",
    "free_port": "broker",
    "FEED_GROUP": "broker_processes",
    "FEED_TOPIC": "broker_processes",
    "Outage": "broker_processes",
    "ack_all": "pubsub",
    "bodies": "pubsub",
    "AdapterPool": "_base", "AdapterSuite": "_base", "create_adapter": "_base", "registration": "_base",
    "requires": "_base",
    "MemoryStore": "_memory_store",
    "BrokerDeliverySuite": "broker", "BrokerOutageSuite": "broker", "DeadLetterSuite": "broker",
    "BrokerEndToEndSuite": "broker_processes", "DeadLetterEndToEndSuite": "broker_processes",
    "PluginPackagingSuite": "packaging",
    "Names": "data", "make_event": "data", "make_events": "data", "make_job": "data", "make_queue": "data",
    "make_transition": "data", "same_time": "data", "utcnow": "data",
    "DestinationSuite": "pipeline", "SourceSuite": "pipeline",
    "CoreProcess": "processes", "Deployment": "processes", "RECORDING_APP": "processes",
    "QUICKSTART_APP": "processes",
    "Inbox": "pubsub", "PubSubSuite": "pubsub",
    "ServerError": "servers", "ServerProcess": "servers",
    "StoreSuite": "store",
    "StoreModelSuite": "store_model", "run_store_model": "store_model",
    "SupervisorSuite": "supervisor", "SupervisorProcessSuite": "supervisor", "make_node": "supervisor",
    "RunLog": "wanderer", "WandererSuite": "wanderer",
}

__all__ = [
    "FEED_GROUP",
    "FEED_TOPIC",
    "QUICKSTART_APP",
    "RECORDING_APP",
    "AdapterPool",
    "AdapterSuite",
    "BrokerDeliverySuite",
    "BrokerEndToEndSuite",
    "BrokerOutageSuite",
    "Clients",
    "CoreProcess",
    "DeadLetterEndToEndSuite",
    "DeadLetterSuite",
    "Deployment",
    "DestinationSuite",
    "Inbox",
    "MemoryStore",
    "Names",
    "Outage",
    "PluginPackagingSuite",
    "PubSubSuite",
    "RunLog",
    "ServerError",
    "ServerProcess",
    "SourceSuite",
    "StoreModelSuite",
    "StoreSuite",
    "SupervisorProcessSuite",
    "SupervisorSuite",
    "WandererSuite",
    "ack_all",
    "bodies",
    "create_adapter",
    "free_port",
    "make_event",
    "make_events",
    "make_job",
    "make_node",
    "make_queue",
    "make_transition",
    "registration",
    "requires",
    "run_store_model",
    "same_time",
    "utcnow",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'core.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(f"core.testing.{module}"), name)
