"""The ``postgres`` plugin module: hookimpls only.

Each factory imports its adapter (and with it asyncpg / SQLAlchemy) when configuration
selects it, so ``core plugins list`` stays fast and never imports a driver.

The four adapters share one ``[options.postgresql]`` table: the host gives a flat key to every
adapter whose schema has it, and ``[options.postgresql.<kind>]`` to that adapter alone. The URL
query is libpq's (``?sslmode=require``), handed to the driver untouched (``driver_query``).
"""

from __future__ import annotations

from typing import Any

from hookspecs import (
    JOBS_TOPIC,
    AdapterRegistration,
    Capability,
    Option,
    PubSub,
    Store,
    Supervisor,
    Wanderer,
    flag,
    hookimpl,
    number,
    strings,
)

#: The core contract versions this plugin supports (docs/compatibility.md).
CORE_CONTRACT = ">=1.0,<2"

SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")


def _pool(default: int, what: str) -> Option:
    return Option(number(int, 1), default, "a whole number >= 1", help=what)


def _seconds(default: float | None, what: str) -> Option:
    return Option(number(float, 0, strict=True), default, "seconds, > 0", help=what)


#: The store's options.
STORE_OPTIONS = {
    "pool_size": _pool(5, "connections kept open (the writer uses one; readers the rest)"),
    "max_overflow": Option(number(int, 0), 5, "a whole number >= 0", help="extra connections allowed under load"),
    "copy_threshold": Option(number(int, 1), 200, "a whole number >= 1",
                             help="rows of one table in one commit from which COPY is used instead of INSERT"),
    "durable_transitions": Option(flag, False, "true or false",
                                  help="also make commits that only record claims and transitions wait for the "
                                       "WAL flush"),
    "retention": _seconds(None, "seconds of finished history to keep; older events whose jobs are all final are "
                                "purged (unset: never)"),
    "purge_interval": _seconds(3600.0, "seconds between purge rounds (one node purges per round)"),
    "commit_delay_ms": Option(number(float, 0), 2.0, "milliseconds, >= 0",
                              help="how long the writer waits for more writes to share a commit"),
    "max_batch": Option(number(int, 1), 5000, "a whole number >= 1",
                        help="rows above which the writer closes a shared transaction"),
    "purge_batch": Option(number(int, 1), 1000, "a whole number >= 1", help="events deleted per purge transaction"),
}
#: The pub/sub's options.
PUBSUB_OPTIONS = {
    "ack_timeout": _seconds(30.0, "seconds a delivered, unsettled message stays hidden from the rest of its group"),
    "prefetch": Option(number(int, 1), 100, "a whole number >= 1", help="messages one member claims at a time"),
    "poll_interval": _seconds(1.0, "longest wait without a notification before looking again (below ack_timeout)"),
    "pool_size": _pool(4, "connections for publishing and claiming (plus one for LISTEN)"),
    "hint_topics": Option(strings, (JOBS_TOPIC,), "a list of topic names",
                          help="topics whose publishes do not wait for the WAL flush: their messages only point at "
                               "durable state (the realtime jobs topic: the schedule delivers any job whose "
                               "message is lost)"),
}
#: The supervisor's options.
SUPERVISOR_OPTIONS = {
    "node_ttl": _seconds(10.0, "a node whose last heartbeat is older than this is not listed"),
    "pool_size": _pool(2, "connections kept open"),
}


def _store(url: str, options: dict[str, Any]) -> Store:
    from core_plugin_postgres.store import PostgresStore

    return PostgresStore(url, **options)


def _supervisor(url: str, options: dict[str, Any]) -> Supervisor:
    from core_plugin_postgres.supervisor import PostgresSupervisor

    return PostgresSupervisor(url, **options)


def _pubsub(url: str, options: dict[str, Any]) -> PubSub:
    from core_plugin_postgres.pubsub import PostgresPubSub

    return PostgresPubSub(url, **options)


def _wanderer(url: str, options: dict[str, Any]) -> Wanderer:
    from core_plugin_postgres.wanderer import PostgresWanderer

    return PostgresWanderer(url, **options)


@hookimpl
def core_register_stores() -> list[AdapterRegistration[Store]]:
    return [AdapterRegistration(
        name="postgresql", schemes=SCHEMES, factory=_store, options=STORE_OPTIONS, driver_query=True,
        capabilities=frozenset({Capability.PURGE, Capability.PAUSE, Capability.FLOWS, Capability.RATE_LIMITS,
                                Capability.ORDERING, Capability.CONCURRENCY}),
        description="PostgreSQL store: batched writes, SKIP LOCKED claims, several gateways/schedulers",
    )]


@hookimpl
def core_register_supervisors() -> list[AdapterRegistration[Supervisor]]:
    return [AdapterRegistration(
        name="postgresql", schemes=SCHEMES, factory=_supervisor, options=SUPERVISOR_OPTIONS, driver_query=True,
        capabilities=frozenset({Capability.LEASES}),
        description="PostgreSQL leases with fencing tokens and a node registry",
    )]


@hookimpl
def core_register_pubsubs() -> list[AdapterRegistration[PubSub]]:
    return [AdapterRegistration(
        name="postgresql", schemes=SCHEMES, factory=_pubsub, options=PUBSUB_OPTIONS, driver_query=True,
        capabilities=frozenset({Capability.RECONNECT}),
        description="PostgreSQL LISTEN/NOTIFY pub/sub with consumer groups (no broker)",
    )]


@hookimpl
def core_register_wanderers() -> list[AdapterRegistration[Wanderer]]:
    return [AdapterRegistration(
        name="postgresql", schemes=SCHEMES, factory=_wanderer, options={}, driver_query=True,
        description="migration history in PostgreSQL",
    )]
