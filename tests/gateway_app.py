"""The app module of the gateway tests: it registers whatever sources, destinations, flows and
extra routes a test puts in these lists before opening its runtime."""

from __future__ import annotations

from typing import Any

from hookspecs import Destination, Flow, Source, hookimpl

SOURCES: list[Source] = []
DESTINATIONS: list[Destination] = []
FLOWS: list[Flow] = []
ROUTES: list[Any] = []


@hookimpl
def core_register_sources() -> list[Source]:
    return list(SOURCES)


@hookimpl
def core_register_destinations() -> list[Destination]:
    return list(DESTINATIONS)


@hookimpl
def core_register_flows() -> list[Flow]:
    return list(FLOWS)


@hookimpl
def core_gateway_routes() -> list[Any]:
    return list(ROUTES)
