"""The ``postgres`` plugin module: hookimpls only.

Each factory imports its adapter (and with it asyncpg / SQLAlchemy) when configuration
selects it, so ``core plugins list`` stays fast and never imports a driver.
"""

from __future__ import annotations

from typing import Any

from hookspecs import AdapterRegistration, ConfigError, PubSub, Store, Supervisor, Wanderer, hookimpl

SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")

#: The options each adapter takes. The four adapters share one ``[options.postgresql]``
#: table: a flat key goes to every adapter that takes it, ``[options.postgresql.<kind>]``
#: to that adapter alone.
OPTIONS = {
    "store": ("pool_size", "max_overflow", "copy_threshold", "durable_transitions", "retention",
              "purge_interval", "commit_delay_ms", "max_batch", "purge_batch"),
    "pubsub": ("ack_timeout", "prefetch", "poll_interval", "pool_size", "hint_topics"),
    "supervisor": ("node_ttl", "pool_size"),
    "wanderer": (),
}


def options_for(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """The part of the shared ``[options.postgresql]`` table meant for the ``kind`` adapter."""
    flat = {k: v for k, v in options.items() if k not in OPTIONS}
    unknown = sorted(set(flat) - {name for names in OPTIONS.values() for name in names})
    own = options.get(kind, {})
    if not isinstance(own, dict):
        raise ConfigError("configuration", f"options.postgresql.{kind}", own, "a table of options")
    unknown += sorted(f"{kind}.{k}" for k in set(own) - set(OPTIONS[kind]))
    if unknown:
        allowed = "; ".join(f"{k}: {', '.join(names)}" for k, names in OPTIONS.items())
        raise ConfigError("configuration", "options.postgresql", unknown, f"known options are {allowed}")
    return {k: v for k, v in flat.items() if k in OPTIONS[kind]} | own


def _store(url: str, options: dict[str, Any]) -> Store:
    from core_plugin_postgres.store import PostgresStore

    return PostgresStore(url, **options_for("store", options))


def _supervisor(url: str, options: dict[str, Any]) -> Supervisor:
    from core_plugin_postgres.supervisor import PostgresSupervisor

    return PostgresSupervisor(url, **options_for("supervisor", options))


def _pubsub(url: str, options: dict[str, Any]) -> PubSub:
    from core_plugin_postgres.pubsub import PostgresPubSub

    return PostgresPubSub(url, **options_for("pubsub", options))


def _wanderer(url: str, options: dict[str, Any]) -> Wanderer:
    from core_plugin_postgres.wanderer import PostgresWanderer

    return PostgresWanderer(url, **options_for("wanderer", options))


@hookimpl
def core_register_stores() -> list[AdapterRegistration[Store]]:
    return [AdapterRegistration(
        name="postgresql", schemes=SCHEMES, factory=_store,
        capabilities=frozenset({"purge"}),
        description="PostgreSQL store: batched writes, SKIP LOCKED claims, several gateways/schedulers",
    )]


@hookimpl
def core_register_supervisors() -> list[AdapterRegistration[Supervisor]]:
    return [AdapterRegistration(
        name="postgresql", schemes=SCHEMES, factory=_supervisor,
        description="PostgreSQL leases with fencing tokens and a node registry",
    )]


@hookimpl
def core_register_pubsubs() -> list[AdapterRegistration[PubSub]]:
    return [AdapterRegistration(
        name="postgresql", schemes=SCHEMES, factory=_pubsub,
        capabilities=frozenset({"reconnect"}),
        description="PostgreSQL LISTEN/NOTIFY pub/sub with consumer groups (no broker)",
    )]


@hookimpl
def core_register_wanderers() -> list[AdapterRegistration[Wanderer]]:
    return [AdapterRegistration(
        name="postgresql", schemes=SCHEMES, factory=_wanderer,
        description="migration history in PostgreSQL",
    )]
