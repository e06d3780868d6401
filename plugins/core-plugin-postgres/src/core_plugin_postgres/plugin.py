"""The ``postgres`` plugin module: hookimpls only.

Each factory imports its adapter (and with it asyncpg / SQLAlchemy) when configuration
selects it, so ``core plugins list`` stays fast and never imports a driver.
"""

from __future__ import annotations

from typing import Any

from hookspecs import AdapterRegistration, PubSub, Store, Supervisor, Wanderer, hookimpl

SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")


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
