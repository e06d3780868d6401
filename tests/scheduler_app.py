"""The app module of the scheduler tests: it registers whatever destinations a test puts in
:data:`DESTINATIONS` before opening its runtime, and records the transitions the scheduler
reports in :data:`TRANSITIONS`."""

from __future__ import annotations

from collections.abc import Sequence

from hookspecs import Destination, Transition, hookimpl

DESTINATIONS: list[Destination] = []
TRANSITIONS: list[Transition] = []


@hookimpl
def core_register_destinations() -> list[Destination]:
    return list(DESTINATIONS)


@hookimpl
def core_job_transitioned(transitions: Sequence[Transition]) -> None:
    TRANSITIONS.extend(transitions)
