"""The store: the database used as a queue, and its append-only history.

Holds the data types the store exchanges (:class:`Event`, :class:`Job`, :class:`Transition`,
:class:`Queue`, :class:`WhereJob`, :class:`WhereEvent`, :class:`IdempotencyKey`,
:class:`Duplicate`), the job :class:`Status`, the
:class:`Store` protocol every store adapter implements, and the hook that registers store
adapters. The names and semantics come from Blacksmith's ``store`` package.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from hookspecs._markers import hookspec
from hookspecs._registration import AdapterRegistration

if TYPE_CHECKING:
    from hookspecs._transitions import RefusedTransition


class Status(StrEnum):
    """The status of a job, as recorded by its latest transition."""

    ACKNOWLEDGED = "acknowledged"  #: stored by the gateway with its event
    AWAITING = "awaiting"  #: waiting for its schedule
    EXECUTING = "executing"  #: claimed by a scheduler, its load is running
    SUCCEEDED = "succeeded"  #: the load reported success (final)
    FAILED = "failed"  #: the load reported an error; retried on the schedule
    DISCARDED = "discarded"  #: retries exhausted or forced (final)
    UNKNOWN = "unknown"  #: the load reported nothing about this job (final)


#: Statuses after which a job never runs again.
FINAL_STATUSES = frozenset({Status.SUCCEEDED, Status.DISCARDED, Status.UNKNOWN})
#: Statuses from which the scheduler may claim a job when it is due.
CLAIMABLE_STATUSES = frozenset({Status.ACKNOWLEDGED, Status.AWAITING, Status.FAILED})
#: The error a store records on the ``failed`` transition of a job whose claim lease ran out.
LEASE_EXPIRED = "claim lease expired: the scheduler holding it stopped or crashed"
#: The error a store records on the ``failed`` transition of a job whose claiming node is not alive.
OWNER_LAPSED = "the claiming node's heartbeat lapsed: the scheduler holding it stopped or crashed"


@dataclass(slots=True)
class Transition:
    """One change of a job's status. Appended, never updated.

    ``attempt`` counts the loads started for the job (0 until the first ``executing``).
    ``due_at`` is when a ``failed`` or ``awaiting`` job may be claimed again (``None``: at
    the next tick of its schedule).
    """

    id: str
    job_id: str
    event_id: str
    attempt: int
    state_before: Status | None
    state_after: Status
    created_at: datetime
    error: str | None = None
    due_at: datetime | None = None


@dataclass(slots=True)
class Job:
    """One action to run for one event.

    ``status``, ``attempt`` and ``due_at`` mirror the job's latest transition so that readers
    need not fetch the history; ``transitions`` is filled only when asked for (``show``).
    """

    id: str
    destination: str
    action: str
    event_id: str
    context: dict[str, Any]
    data: Any
    created_at: datetime
    version: str | None = None
    parent_job_id: str | None = None
    #: The idempotency key of the job's event (``None``: it had none); an action may pass it
    #: on to its destination (as ``webhook-id``, an ``Idempotency-Key`` header, …).
    idempotency_key: str | None = None
    #: The key its action orders jobs by (:meth:`Action.ordering_key_for`, set when the job is
    #: created); ``None``: not ordered.
    ordering_key: str | None = None
    status: Status = Status.ACKNOWLEDGED
    attempt: int = 0
    due_at: datetime | None = None
    transitions: list[Transition] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """The idempotency key an event is stored under, deduplicated by the store per source.

    ``fingerprint`` identifies what was received (the gateway: the SHA-256 of the request
    body), so that a key reused for something else is told apart from a retry. Until
    ``expires_at`` another event of the same source with the same key is not stored; after
    it, the key is free again and the store's :meth:`~Store.purge` removes it.
    """

    key: str
    fingerprint: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Duplicate:
    """An event :meth:`Store.insert_queue` did not store: its key was taken within its window.

    ``event_id`` is the event of the call, ``original_id`` the stored event holding the key;
    ``same`` says whether the fingerprints match (a retry) or not (the key was reused for a
    different request: the IETF draft's ``422``).
    """

    event_id: str
    original_id: str
    key: str
    same: bool


@dataclass(slots=True)
class Event:
    """One thing that happened at a source, with the jobs it caused.

    ``idempotency`` is given to :meth:`Store.insert_queue` to deduplicate the event; reads do
    not fill it (each job carries the key as :attr:`Job.idempotency_key`).
    """

    id: str
    source: str
    name: str
    context: dict[str, Any]
    data: Any
    received_at: datetime
    sent_at: datetime | None = None
    ingested_at: datetime | None = None
    jobs: list[Job] = field(default_factory=list)
    idempotency: IdempotencyKey | None = None


@dataclass(slots=True)
class Queue:
    """Events with their jobs: what the gateway stores and what an action's ``load`` gets.

    In a ``load``, every job of every event belongs to the action being loaded.
    """

    events: list[Event] = field(default_factory=list)

    @property
    def jobs(self) -> list[Job]:
        """Every job of the queue, event by event."""
        return [job for event in self.events for job in event.jobs]

    def __len__(self) -> int:
        return sum(len(event.jobs) for event in self.events)


@dataclass(slots=True)
class Page:
    """Keyset paging: pass ``after`` (the last id seen) to get the next page."""

    limit: int = 100
    after: str | None = None


@dataclass(slots=True)
class WhereJob:
    """A filter on jobs. Empty fields do not filter. Results are ordered by job id."""

    ids: Sequence[str] = ()
    event_ids: Sequence[str] = ()
    sources: Sequence[str] = ()
    events_in: Sequence[str] = ()
    destinations_in: Sequence[str] = ()
    actions_in: Sequence[str] = ()
    status_in: Sequence[Status] = ()
    status_not_in: Sequence[Status] = ()
    max_attempts: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    page: Page = field(default_factory=Page)


@dataclass(slots=True)
class WhereEvent:
    """A filter on events. Empty fields do not filter. Results are ordered by event id."""

    ids: Sequence[str] = ()
    sources: Sequence[str] = ()
    names: Sequence[str] = ()
    received_after: datetime | None = None
    received_before: datetime | None = None
    page: Page = field(default_factory=Page)


@dataclass(frozen=True, slots=True)
class Pause:
    """A paused action (``action`` ``"*"``: every action of the destination): the scheduler
    claims none of its jobs until it is resumed. ``who`` paused it and why (``reason``)."""

    destination: str
    action: str
    who: str
    created_at: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class DisabledFlow:
    """A disabled flow (by its name): the gateways make none of its jobs for the events they
    store from then on, until it is enabled again. ``who`` disabled it and why (``reason``)."""

    flow: str
    who: str
    created_at: datetime
    reason: str | None = None


@dataclass(slots=True)
class Claim:
    """Who claims jobs and for how long: a crashed claimer's jobs are recovered after it."""

    owner: str
    lease_seconds: float = 300.0


@runtime_checkable
class Store(Protocol):
    """A database used as a queue. Required. Events, jobs and transitions are append-only.

    Every write is one transaction: a method either stores all it was given or raises
    :class:`StoreUnavailable` / another exception and stores nothing; only
    :meth:`add_transitions` leaves out (and returns) the transitions it refuses.
    """

    async def open(self) -> None:
        """Connect and bring the schema to the current version."""

    async def close(self) -> None:
        """Flush pending writes and release connections."""

    async def insert_queue(self, queue: Queue) -> list[Duplicate]:
        """Store events, their jobs and each job's first transition in one transaction.

        An event with an :attr:`~Event.idempotency` key that its source already stored
        (within the key's window, or earlier in the same queue) is not stored, nor are its
        jobs: it is returned as a :class:`Duplicate`. If one of the queue's duplicates has a
        different fingerprint, no event of the queue is stored (all are returned; those
        whose key was free name themselves as original). Concurrent calls, in any number of
        processes, store one event per key. Without keys the result is empty.
        """

    async def add_jobs(self, jobs: Sequence[Job]) -> None:
        """Store jobs of existing events (follow-ups) with their first transition."""

    async def add_transitions(self, transitions: Sequence[Transition]) -> list[RefusedTransition]:
        """Append transitions, in order; each stored one becomes its job's status.

        A transition whose ``state_before`` is not its job's current status (the status left by
        the transitions before it in the call, for a job named twice), whose move is not in
        :data:`~hookspecs.ALLOWED_TRANSITIONS`, which leaves ``executing`` naming another
        attempt than the job's (a stale write, :func:`~hookspecs.ends_its_attempt`), or whose
        job is not stored is refused: not stored, and returned (in order) as a
        :class:`~hookspecs.RefusedTransition`; the other transitions of the call are stored all
        the same. The check and the writes are atomic: two concurrent writers never both move a
        job from the same status.
        """

    async def claim(
        self, claim: Claim, *, destination: str, action: str, limit: int, now: datetime,
        concurrency: int | None = None,
    ) -> list[Job]:
        """Move up to ``limit`` due jobs of an action to ``executing`` and return them.

        Due: status in :data:`CLAIMABLE_STATUSES` and ``due_at`` empty or ``<= now``. Two
        concurrent claimers never receive the same job. ``concurrency`` (only passed to a store
        declaring :attr:`~hookspecs.Capability.CONCURRENCY`): claim at most that many minus the
        action's jobs already ``executing``, so that concurrent claimers together never leave
        more than ``concurrency`` of them executing.
        """

    async def claim_ids(
        self, claim: Claim, job_ids: Sequence[str], *, now: datetime, concurrency: int | None = None
    ) -> list[Job]:
        """Claim the named jobs that are still claimable (realtime delivery); skip the rest.

        ``concurrency``: as for :meth:`claim`, for the action of each named job.
        """

    async def recover(self, *, now: datetime, alive: Collection[str] | None = None) -> list[Job]:
        """Record ``failed`` for ``executing`` jobs whose claim lease ran out; return them.

        With ``alive`` (the ids of the live nodes, the caller's own included), also for
        ``executing`` jobs whose :attr:`Claim.owner` is not in it, before their lease ends:
        their node's heartbeat lapsed. The ``failed`` transition keeps the attempt, is due at
        once and names why: :data:`LEASE_EXPIRED` when the lease ran out, else
        :data:`OWNER_LAPSED`. ``alive=None`` recovers by lease only.
        """

    async def find_events(self, where: WhereEvent) -> list[Event]:
        """Return matching events (without jobs), ordered by id."""

    async def find_jobs(self, where: WhereJob) -> list[Job]:
        """Return matching jobs with their current status, ordered by id."""

    async def get_event(self, event_id: str) -> Event | None:
        """Return one event with its jobs, or ``None``."""

    async def get_job(self, job_id: str) -> Job | None:
        """Return one job with its full transition history, or ``None``."""

    async def purge(self, *, before: datetime, where: WhereJob | None = None) -> int:
        """Delete events received before ``before`` whose jobs are all final, with their jobs
        and history; return how many.

        With ``where`` (its ``page`` is ignored), only events that have jobs and every one of
        whose jobs matches it: an event's history is purged whole or not at all, so no job,
        transition or follow-up outlives its event or its parent, and no job goes while its
        event still has one to run. ``where=None`` (the default) is a purge by time only.
        Deletes in batches (never a statement per row). Also removes the idempotency keys
        whose window has ended.
        """


@runtime_checkable
class PausingStore(Protocol):
    """A store that keeps paused actions (capability ``pause``), which every scheduler honours."""

    async def pause(self, pause: Pause) -> bool:
        """Pause an action (``action`` ``"*"``: every action of the destination); ``False`` if
        it was paused already."""

    async def resume(self, destination: str, action: str) -> bool:
        """Resume an action paused with :meth:`pause`; ``False`` if it was not paused."""

    async def pauses(self) -> list[Pause]:
        """Every paused action."""


@runtime_checkable
class FlowSwitchStore(Protocol):
    """A store that keeps disabled flows (capability ``flows``), which every gateway honours."""

    async def disable_flow(self, disabled: DisabledFlow) -> bool:
        """Disable a flow; ``False`` if it was disabled already (of concurrent disables, one wins)."""

    async def enable_flow(self, flow: str) -> bool:
        """Enable a flow disabled with :meth:`disable_flow`; ``False`` if it was not disabled."""

    async def disabled_flows(self) -> list[DisabledFlow]:
        """Every disabled flow."""


@runtime_checkable
class BacklogStore(Protocol):
    """A store that counts its unfinished jobs cheaply (optional: ``/metrics``, ``core status``
    and the admin API's destinations then show a backlog)."""

    async def backlog(self) -> dict[tuple[str, str, str], int]:
        """Unfinished jobs by ``(destination, action, status)``."""


class StoreUnavailable(Exception):
    """The store cannot be reached; nothing of the call was stored (the gateway answers 503)."""


class StoreSpec:
    """Hook that registers store adapters."""

    @hookspec
    def core_register_stores(self) -> list[AdapterRegistration[Store]]:
        """Offer store adapters.

        **When called:** once, when the host builds its adapter registry (start-up, and
        ``core plugins list``).

        :return: a list of :class:`~hookspecs.AdapterRegistration`; an empty list offers none.
            The host refuses two registrations with the same name or scheme, naming both
            distributions.

        **Example**::

            @hookimpl
            def core_register_stores():
                def make(url, options):
                    from my_plugin.store import MyStore  # the SDK is imported only here
                    return MyStore(url, **options)
                return [AdapterRegistration(name="mydb", schemes=("mydb",), factory=make)]
        """
        raise NotImplementedError  # declared here, implemented by plugins
