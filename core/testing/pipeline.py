"""Suites for a plugin's (or an app's) sources and destinations.

They check the objects a ``core_register_sources`` / ``core_register_destinations`` hook
returns: valid names, well-formed triggers and schedules, migrations, ``init``/``shutdown``,
and that each action's ``marshal`` and ``load`` answer what the scheduler expects. ``load``
runs against the real destination; declare ``capabilities = frozenset()`` to leave it out.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import orjson
import pytest

from core.gateway.drafts import drafts_from_json
from core.testing._base import CapabilitySuite, requires
from core.testing.data import make_event, make_job
from core.timing import parse_interval
from hookspecs import (
    Action,
    Capability,
    CdcTrigger,
    CronTrigger,
    Destination,
    Event,
    EventDraft,
    HttpRequest,
    HttpTrigger,
    Migration,
    Payload,
    Queue,
    Schedule,
    Source,
    Status,
    SubscriptionTrigger,
    Then,
    Toolkit,
    check_name,
)

T = TypeVar("T")
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


async def resolve(value: T | Awaitable[T]) -> T:
    """Await ``value`` if a user callable returned an awaitable (``marshal`` may be sync)."""
    if inspect.isawaitable(value):
        return await value
    return value


def check_migrations(owner: str, migrations: Iterable[Migration], scope: str | None = None) -> None:
    """Well-formed migrations; with ``scope`` (the owner's), each one's scope is empty (the
    owner's, filled in by ``core migrate``) or that scope in any spelling (``d:wh``)."""
    from core.wanderer.scopes import ScopeError, canonical

    seen: set[tuple[str, str]] = set()
    for migration in migrations:
        assert isinstance(migration, Migration), f"{owner}: {migration!r} is not a Migration"
        assert migration.version and migration.name, f"{owner}: {migration} has an empty field"
        if scope is None:
            assert migration.scope, f"{owner}: {migration} has an empty scope"
        elif migration.scope:
            try:
                given = canonical(migration.scope)
            except ScopeError as exc:
                raise AssertionError(f"{owner}: {exc.message}") from None
            assert given == scope, f"{owner}: migration {migration.version} is of scope {given}, not its own {scope}"
        assert (migration.scope, migration.version) not in seen, f"{owner}: two migrations {migration.version}"
        seen.add((migration.scope, migration.version))
        assert callable(migration.up) and callable(migration.down), f"{owner}: {migration.version} up/down"


def check_schedule(owner: str, schedule: Schedule) -> None:
    assert isinstance(schedule, Schedule), f"{owner}: schedule {schedule!r} is not a Schedule"
    try:
        parse_interval(schedule.interval)
    except ValueError as exc:
        pytest.fail(f"{owner}: {exc}", pytrace=False)
    assert schedule.max_retries >= 0, f"{owner}: max_retries must not be negative"
    if schedule.backoff is not None:
        b = schedule.backoff
        assert b.base > 0 and b.factor >= 1 and b.max_delay > 0, f"{owner}: backoff {b} is not valid"


def check_load_result(owner: str, result: Any, queue: Queue, destination: Destination) -> list[Then]:
    """Check what ``load`` returned and give it as a list of :class:`Then`."""
    thens = [] if result is None else [result] if isinstance(result, Then) else result
    assert isinstance(thens, Sequence) and all(isinstance(t, Then) for t in thens), (
        f"{owner}: load returned {result!r}; return None, a Then or a list of Then")
    job_ids = {job.id for job in queue.jobs}
    for then in thens:
        unknown = set(then.jobs) - job_ids
        assert not unknown, f"{owner}: a Then names jobs that are not in the queue: {sorted(unknown)}"
        for ref in [*then.on_succeeded, *then.on_failed, *then.on_discarded]:
            name, action = ref.split(".", 1) if "." in ref else (destination.name, ref)
            if name == destination.name:
                assert action in destination.actions, f"{owner}: follow-up {ref!r} names no action of {name!r}"
    return list(thens)


class SourceSuite(CapabilitySuite):
    """Subclass it and override the ``source`` fixture (your :class:`~hookspecs.Source`).

    Override ``http_samples`` with ``{trigger name: [HttpRequest, ...]}`` to run the HTTP
    triggers' extractors (or the default JSON one) on sample requests.
    """

    kind = "source"
    capabilities: ClassVar[frozenset[str] | set[str] | None] = frozenset({Capability.LIFECYCLE})

    @pytest.fixture
    def toolkit(self, source: Source) -> Toolkit:
        return Toolkit(logger=logging.getLogger(f"core.testing.source.{source.name}"), service="gateway")

    @pytest.fixture
    def http_samples(self) -> Mapping[str, Sequence[HttpRequest]]:
        return {}

    def test_is_a_source_with_a_valid_name(self, source: Source) -> None:
        assert isinstance(source, Source), f"{source!r} is not a hookspecs.Source"
        check_name("source", source.name)
        assert source.triggers, f"source {source.name!r} has no trigger"

    def test_triggers_are_well_formed(self, source: Source) -> None:
        for name, trigger in source.triggers.items():
            owner = f"source {source.name!r}, trigger {name!r}"
            assert trigger.name == name and check_name("trigger", name)
            if isinstance(trigger, HttpTrigger):
                assert trigger.path.startswith("/"), f"{owner}: path must start with '/'"
                assert set(trigger.methods) <= HTTP_METHODS, f"{owner}: methods {trigger.methods}"
                assert trigger.extract is None or callable(trigger.extract), f"{owner}: extract"
            elif isinstance(trigger, CronTrigger):
                check_schedule(owner, Schedule(interval=trigger.interval))
                assert callable(trigger.extract), f"{owner}: extract must be an async callable"
            elif isinstance(trigger, CdcTrigger):
                assert callable(trigger.listen), f"{owner}: listen must be an async callable"
            elif isinstance(trigger, SubscriptionTrigger):
                assert isinstance(trigger.topic, str) and trigger.topic, f"{owner}: topic must be a non-empty string"
                assert trigger.group is None or (isinstance(trigger.group, str) and trigger.group), f"{owner}: group"
                assert trigger.extract is None or callable(trigger.extract), f"{owner}: extract"
            else:
                pytest.fail(f"{owner}: {type(trigger).__name__} is none of the four trigger modes", pytrace=False)

    def test_migrations_are_well_formed(self, source: Source) -> None:
        check_migrations(f"source {source.name!r}", source.migrations, f"source:{source.name}")
        for name, trigger in source.triggers.items():
            check_migrations(f"trigger {source.name}/{name}", trigger.migrations,
                             f"source/trigger:{source.name}/{name}")

    @pytest.mark.asyncio
    async def test_http_extractors_turn_samples_into_drafts(
        self, source: Source, http_samples: Mapping[str, Sequence[HttpRequest]]
    ) -> None:
        for name, requests in http_samples.items():
            trigger = source.triggers.get(name)
            assert isinstance(trigger, HttpTrigger), f"http_samples names {name!r}, no HTTP trigger of {source.name!r}"
            for request in requests:
                if trigger.extract is None:
                    drafts: Sequence[EventDraft] = drafts_from_json(request.body)
                else:
                    drafts = await resolve(trigger.extract(request))
                assert all(isinstance(d, EventDraft) for d in drafts), f"trigger {name!r} returned {drafts!r}"
                orjson.dumps([(d.data, d.context) for d in drafts])

    @requires(Capability.LIFECYCLE)
    @pytest.mark.asyncio
    async def test_init_and_shutdown_run(self, source: Source, toolkit: Toolkit) -> None:
        await source.init(toolkit)
        for trigger in source.triggers.values():
            await trigger.init(toolkit)
        for trigger in source.triggers.values():
            await trigger.shutdown(toolkit)
        await source.shutdown(toolkit)


class DestinationSuite(CapabilitySuite):
    """Subclass it and override the ``destination`` fixture (your :class:`~hookspecs.Destination`).

    Override ``sample_event`` to marshal and load an event shaped like your sources' events.
    """

    kind = "destination"
    capabilities: ClassVar[frozenset[str] | set[str] | None] = frozenset({Capability.LOAD, Capability.LIFECYCLE})

    @pytest.fixture
    def toolkit(self, destination: Destination) -> Toolkit:
        return Toolkit(logger=logging.getLogger(f"core.testing.destination.{destination.name}"), service="scheduler")

    @pytest.fixture
    def sample_event(self) -> Event:
        return make_event(source="conformance", actions=())

    def test_is_a_destination_with_valid_names(self, destination: Destination) -> None:
        assert isinstance(destination, Destination), f"{destination!r} is not a hookspecs.Destination"
        check_name("destination", destination.name)
        assert destination.actions, f"destination {destination.name!r} has no action"
        for name, action in destination.actions.items():
            assert isinstance(action, Action), f"{name!r} is not a hookspecs.Action"
            assert action.name == name and check_name("action", name)

    def test_schedules_and_migrations_are_well_formed(self, destination: Destination) -> None:
        if destination.schedule is not None:
            check_schedule(f"destination {destination.name!r}", destination.schedule)
        check_migrations(f"destination {destination.name!r}", destination.migrations,
                         f"destination:{destination.name}")
        for name, action in destination.actions.items():
            check_schedule(f"action {destination.name}.{name}", destination.schedule_of(name))
            check_migrations(f"action {destination.name}.{name}", action.migrations,
                             f"destination/action:{destination.name}/{name}")

    @pytest.mark.asyncio
    async def test_marshal_returns_a_payload_or_none(
        self, destination: Destination, sample_event: Event, toolkit: Toolkit
    ) -> None:
        for name, action in destination.actions.items():
            payload = await resolve(action.marshal(sample_event, toolkit.evolve(event_id=sample_event.id)))
            assert payload is None or isinstance(payload, Payload), (
                f"{destination.name}.{name}: marshal returned {payload!r}, not a Payload or None")
            if payload is not None:
                assert payload.context is None or isinstance(payload.context, dict)
                orjson.dumps((payload.data, payload.context))

    @requires(Capability.LOAD)
    @pytest.mark.asyncio
    async def test_load_reports_on_the_queue(
        self, destination: Destination, sample_event: Event, toolkit: Toolkit
    ) -> None:
        for name, action in destination.actions.items():
            payload = await resolve(action.marshal(sample_event, toolkit))
            if payload is None:
                continue
            jobs = [make_job(sample_event, destination.name, name, data=payload.data, context=payload.context)
                    for _ in range(2)]
            for job in jobs:
                job.status, job.attempt = Status.EXECUTING, 1
            queue = Queue(events=[dataclasses.replace(sample_event, jobs=jobs)])
            result = await action.load(toolkit, queue)
            check_load_result(f"{destination.name}.{name}", result, queue, destination)

    @requires(Capability.LIFECYCLE)
    @pytest.mark.asyncio
    async def test_init_and_shutdown_run(self, destination: Destination, toolkit: Toolkit) -> None:
        await destination.init(toolkit)
        for action in destination.actions.values():
            await action.init(toolkit)
        for action in destination.actions.values():
            await action.shutdown(toolkit)
        await destination.shutdown(toolkit)
