"""The app module of the hook-contract test: implements the hooks no other test names, and
records every call in :data:`CALLS` (hook name, what it was given)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.builtin.local.supervisor import LocalSupervisor
from core.builtin.sqlite import plugin as sqlite_plugin
from hookspecs import (
    AdapterRegistration,
    Destination,
    Event,
    Flow,
    HttpTrigger,
    Migration,
    Source,
    Supervisor,
    Toolkit,
    Wanderer,
    hookimpl,
)
from tests.gateway_kit import Keep

CALLS: list[tuple[str, Any]] = []


def _supervisor(url: str, options: dict[str, Any]) -> Supervisor:
    CALLS.append(("supervisor factory", url))
    return LocalSupervisor("local://hooks-app")


def _wanderer(url: str, options: dict[str, Any]) -> Wanderer:
    CALLS.append(("wanderer factory", url))
    sqlite = sqlite_plugin.core_register_wanderers()[0]  # the built-in, under a recording scheme
    return sqlite.factory(url.replace("recorded+", "", 1), options)


@hookimpl
def core_register_supervisors() -> list[AdapterRegistration[Supervisor]]:
    return [AdapterRegistration(name="recorded", schemes=("recorded",), factory=_supervisor)]


@hookimpl
def core_register_wanderers() -> list[AdapterRegistration[Wanderer]]:
    return [AdapterRegistration(name="recorded-sqlite", schemes=("recorded+sqlite",), factory=_wanderer)]


async def _noop() -> None:
    return None


@hookimpl
def core_register_migrations() -> list[Migration]:
    return [Migration("001", "destination:sink", "create the sink's table", _noop, _noop)]


@hookimpl
def core_register_sources() -> list[Source]:
    return [Source("shop", triggers=[HttpTrigger("orders", "/webhooks/orders")])]


@hookimpl
def core_register_destinations() -> list[Destination]:
    return [Destination("sink", actions=[Keep()])]


@hookimpl
def core_register_flows() -> list[Flow]:
    return [Flow("orders", source="shop", actions=["sink.keep"])]


@hookimpl
def core_startup(service: str, toolkit: Toolkit) -> None:
    CALLS.append(("core_startup", service))


@hookimpl
def core_shutdown(service: str, toolkit: Toolkit) -> None:
    CALLS.append(("core_shutdown", service))


@hookimpl
def core_event_ingested(events: Sequence[Event]) -> None:
    CALLS.append(("core_event_ingested", [event.name for event in events]))
