"""Destinations and their actions: where events go, the T (``marshal``) and the L (``load``).

A :class:`Destination` holds :class:`Action` objects and a default :class:`Schedule`. An
action's ``marshal`` turns an event into a job payload; its ``load`` receives a
:class:`~hookspecs._store.Queue` of due jobs and reports what happened with :class:`Then`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from hookspecs._markers import hookspec
from hookspecs._store import Event, Job, Queue
from hookspecs._toolkit import Toolkit
from hookspecs._wanderer import Migration, MigrationScript

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def check_name(kind: str, name: str) -> str:
    """Validate the name of a source, trigger, destination, action or flow."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{kind} name {name!r} is not valid: use letters, digits, '_' and '-', "
            "starting with a letter or '_'"
        )
    return name


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter between retries, capped at ``max_delay``.

    The n-th retry waits a random time in ``[0, min(max_delay, base * factor**n)]`` seconds.
    """

    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 3600.0


@dataclass(frozen=True, slots=True)
class Schedule:
    """When an action's jobs run and how often they are retried.

    :param realtime: deliver through the pub/sub broker as soon as stored.
    :param interval: ``"@every <duration>"`` (``30s``, ``5m``, ``1h30m``) or a 5-field CRON
        string; the time between scheduled loads and between retries.
    :param max_retries: attempts after the first before a failed job is ``discarded``.
    :param backoff: retry with exponential backoff and jitter instead of the fixed interval.
    """

    realtime: bool = False
    interval: str = "@every 1h"
    max_retries: int = 72
    backoff: Backoff | None = None


#: The schedule used when neither the action nor its destination sets one.
DEFAULT_SCHEDULE = Schedule()


@dataclass(frozen=True, slots=True)
class Payload:
    """What ``marshal`` returns: the job's context and data (the seeds' ``destination.Job``).

    ``context=None`` keeps the event's context.
    """

    data: Any = None
    context: dict[str, Any] | None = None
    version: str | None = None
    sent_at: datetime | None = None


class Discard(Exception):
    """A terminal error: the jobs it concerns are ``discarded`` at once (their ``on_discarded``
    follow-ups run), whatever retries are left; retrying cannot help (an HTTP 404, a payload the
    destination refuses). Raise it from ``load`` or return it as a :class:`Then`'s ``error``."""


class RetryAfter(Exception):
    """A retryable error with a delay: the jobs ``failed`` and are due again in ``seconds`` (as a
    ``Retry-After`` header asks) instead of at the schedule's next retry.

    The delay is capped by the schedule: never later than its next tick (a fixed interval), or
    than ``backoff.max_delay``. It counts as an attempt: the last attempt still discards.
    """

    def __init__(self, seconds: float, message: str = "") -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= 0:
            raise ValueError(f"RetryAfter: seconds must be a number >= 0, not {seconds!r}")
        self.seconds = float(seconds)
        super().__init__(message or f"retry after {self.seconds:g}s")


# A traceback names each error by its one import path, ``hookspecs.Discard``.
Discard.__module__ = RetryAfter.__module__ = "hookspecs"

@dataclass(frozen=True, slots=True)
class Then:
    """What a ``load`` reports about some of its jobs.

    :param jobs: ids of the jobs concerned; empty means every job of the queue.
    :param error: the error met; ``None`` means the jobs succeeded. A :class:`Discard`
        discards at once; a :class:`RetryAfter` sets when they are retried.
    :param force_discard: discard at once instead of retrying (requires ``error``).
    :param on_succeeded: actions to run as child jobs if the jobs succeeded, written
        ``"action"`` (same destination) or ``"destination.action"``.
    :param on_failed: actions to run if they failed and will be retried.
    :param on_discarded: actions to run if they were discarded.
    """

    jobs: Sequence[str] = ()
    error: str | BaseException | None = None
    force_discard: bool = False
    on_succeeded: Sequence[str] = ()
    on_failed: Sequence[str] = ()
    on_discarded: Sequence[str] = ()

    def __post_init__(self) -> None:
        if self.force_discard and self.error is None:
            raise ValueError("Then(force_discard=True) needs an error saying why")


#: What ``load`` may return: ``None`` (every job succeeded), one Then, or several.
LoadResult = Then | Sequence[Then] | None


class Action:
    """One operation against a destination. Subclass it and set ``name``.

    ``schedule=None`` takes the destination's schedule, else :data:`DEFAULT_SCHEDULE`.
    ``rate_limit`` (``"100/s"``, ``"6000/min"``, ``"50/h"``) caps how many jobs a second are
    loaded, across every scheduler sharing the store, scheduled and realtime alike; up to
    ``rate_burst`` jobs (default: one second of the rate) may go at once after a quiet spell.
    ``None`` takes the destination's, else no limit.

    ``concurrency`` caps how many of the action's jobs are loading at once (``executing``),
    across every scheduler sharing the store, scheduled and realtime alike: a whole number
    ``>= 1``; ``None`` takes the destination's, else no limit. With ``concurrency = 1`` the
    action's loads never overlap (and with ``batch_size`` 1, one job at a time).

    ``ordering_key`` opts in to ordering per key: a dotted path into the job (``"context.user_id"``,
    ``"data.account.id"``), or override :meth:`ordering_key_for` for a function of the job. Jobs
    of the action with the same key are loaded in creation order, one at a time: a job awaiting a
    retry holds back its key only, and a final job (succeeded, discarded) releases it. A job whose
    key is missing (``None``) is not ordered. Without a key, claims are unchanged.
    """

    name: ClassVar[str] = ""
    schedule: Schedule | None = None
    rate_limit: str | None = None
    rate_burst: int | None = None
    concurrency: int | None = None
    migrations: Sequence[Migration] = ()
    ordering_key: ClassVar[str | None] = None

    def ordering_key_for(self, job: Job) -> str | None:
        """The job's ordering key, computed once when the job is created (``None``: unordered).

        The default follows :attr:`ordering_key` through the job's ``context``/``data``
        mappings; a missing step or a ``None`` value gives ``None``; other values become text.
        """
        if self.ordering_key is None:
            return None
        head, _, rest = self.ordering_key.partition(".")
        value: Any = {"context": job.context, "data": job.data}.get(head)
        for step in rest.split(".") if rest else ():
            value = value.get(step) if isinstance(value, dict) else None
        return None if value is None or head not in ("context", "data") else str(value)

    def marshal(self, event: Event, toolkit: Toolkit) -> Payload | Awaitable[Payload | None] | None:
        """Turn an event into this action's job payload (the T); ``None`` skips the event.

        Raising means no job for this action (reported; the event is kept). The default
        passes the event's context and data through unchanged. May be ``async``.
        """
        return Payload(data=event.data)

    async def load(self, toolkit: Toolkit, queue: Queue) -> LoadResult:
        """Load the queue's jobs into the destination (the L).

        Return ``None`` when every job succeeded, or :class:`Then` objects naming jobs
        (jobs named by no Then become ``unknown``). An exception fails every job; raise
        :class:`Discard` to discard them at once, :class:`RetryAfter` to retry them after a delay.
        """
        raise NotImplementedError(f"action {self.name!r} does not implement load()")

    async def init(self, toolkit: Toolkit) -> None:
        """Called when the scheduler starts, after the destination's ``init``."""

    async def shutdown(self, toolkit: Toolkit) -> None:
        """Called when the scheduler stops, before the destination's ``shutdown``."""

    async def migrate(self, toolkit: Toolkit, script: MigrationScript) -> None:
        """Run one direction of a migration file of this action's scope (the seeds' ``Migrate``).

        An action that does not override it inherits its destination's. The default has no logic:
        a file of this scope fails, saying so.
        """
        raise NotImplementedError(f"{self!r} has no migrate() to run {script.path}")


class Destination:
    """A system events go to: a name, actions and a default schedule.

    Use it directly (``Destination("crm", actions=[Identify()])``) or subclass it to add
    ``init`` / ``shutdown`` (e.g. open and close a connection pool). Its ``rate_limit`` and
    ``rate_burst`` apply to each action that sets none (one bucket per action), and so does its
    ``concurrency`` (each action apart).
    """

    rate_limit: str | None = None
    rate_burst: int | None = None
    concurrency: int | None = None

    def __init__(
        self,
        name: str,
        actions: Sequence[Action],
        *,
        schedule: Schedule | None = None,
        migrations: Sequence[Migration] = (),
        rate_limit: str | None = None,
        rate_burst: int | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.name = check_name("destination", name)
        self.schedule = schedule
        self.rate_limit = rate_limit
        self.rate_burst = rate_burst
        self.concurrency = concurrency
        self.migrations = tuple(migrations)
        self.actions: dict[str, Action] = {}
        for action in actions:
            check_name("action", action.name)
            if action.name in self.actions:
                raise ValueError(f"destination {name!r} has two actions named {action.name!r}")
            self.actions[action.name] = action

    def schedule_of(self, action: str) -> Schedule:
        """The schedule of one action: the action's, else the destination's, else the default."""
        return self.actions[action].schedule or self.schedule or DEFAULT_SCHEDULE

    def rate_of(self, action: str) -> tuple[str | None, int | None]:
        """The ``(rate_limit, rate_burst)`` of one action: the action's, else the destination's.

        A destination's limit applies to each of its actions apart (one bucket per action).
        """
        found = self.actions[action]
        if found.rate_limit is not None:
            return found.rate_limit, found.rate_burst
        return self.rate_limit, self.rate_burst

    def concurrency_of(self, action: str) -> int | None:
        """The ``concurrency`` of one action: the action's, else the destination's (each action
        apart), else ``None`` (no limit)."""
        found = self.actions[action].concurrency
        return self.concurrency if found is None else found

    async def init(self, toolkit: Toolkit) -> None:
        """Called when the scheduler starts, before the actions' ``init``."""

    async def shutdown(self, toolkit: Toolkit) -> None:
        """Called when the scheduler stops, after the actions' ``shutdown``."""

    async def migrate(self, toolkit: Toolkit, script: MigrationScript) -> None:
        """Run one direction of a migration file of this destination's scope (the seeds' ``Migrate``).

        ``init`` runs before and ``shutdown`` after a run of its migrations. The default has no logic:
        a file of this scope fails, saying so.
        """
        raise NotImplementedError(f"{self!r} has no migrate() to run {script.path}")

    def __repr__(self) -> str:
        return f"Destination({self.name!r}, actions={list(self.actions)})"


class DestinationSpec:
    """Hook that registers destinations."""

    @hookspec
    def core_register_destinations(self) -> list[Destination]:
        """Offer destinations (with their actions).

        **When called:** once at start-up of the gateway (to marshal) and the scheduler (to
        load), and by CLI commands that show the pipeline.

        :return: :class:`Destination` objects; two with one name are refused, naming both
            plugins.

        **Example**::

            class Log(Action):
                name = "log"
                schedule = Schedule(realtime=True)

                async def load(self, toolkit, queue):
                    for job in queue.jobs:
                        toolkit.logger.info("job %s: %s", job.id, job.data)

            @hookimpl
            def core_register_destinations():
                return [Destination("logger", actions=[Log()])]
        """
        raise NotImplementedError  # declared here, implemented by plugins
