"""The app module of the scheduler tests: it registers whatever destinations a test puts in
:data:`DESTINATIONS` before opening its runtime."""

from __future__ import annotations

from hookspecs import Destination, hookimpl

DESTINATIONS: list[Destination] = []


@hookimpl
def core_register_destinations() -> list[Destination]:
    return list(DESTINATIONS)
