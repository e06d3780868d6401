"""What a load's result means for its jobs: the transitions to record and the follow-up actions
to run. Pure logic, no I/O, so every rule of the seeds is unit-tested here.

The rules (``docs/scheduler.md`` has the same with examples):

- ``None``: every job succeeded. An exception raised by ``load`` (or a timeout): every job
  failed with that error.
- A :class:`~hookspecs.Then` with empty ``jobs`` applies to every job that no other Then
  names; a Then naming jobs applies to those. A job named twice keeps the first verdict (a
  warning is logged); ids that are not in the queue are ignored with a warning.
- When some Thens name jobs and none has empty ``jobs``, the jobs named by no Then become
  ``unknown`` (final: the scheduler cannot tell whether they were loaded).
- ``error=None``: ``succeeded``. With an error: ``discarded`` when ``force_discard``, when the
  error is a :class:`~hookspecs.Discard` (terminal), or when
  the attempt that just failed was the last one (``attempt >= 1 + max_retries``: the first
  attempt plus ``max_retries`` retries), else ``failed``, due again at
  :func:`core.timing.retry_at` (the next tick of the interval, or backoff with jitter); a
  :class:`~hookspecs.RetryAfter` error sets that delay instead, capped by the schedule
  (:func:`core.timing.retry_after_at`). Either counts as an attempt.
- Isolation: a failure that names no job (``load`` raised or timed out, or a Then with an error
  and no ``jobs``) does not say which job failed. Such jobs are listed in
  :attr:`Outcome.isolate`, so that the runner loads each of them alone at its retry; and a job
  is never discarded for its last attempt by such a failure of a load it shared with other jobs:
  it gets one more attempt, alone (``attempt > 1 + max_retries`` discards whatever the load).
- ``on_succeeded`` / ``on_failed`` / ``on_discarded`` of the Then that decided a job, for the
  status the job got, become :class:`FollowUp` requests (child jobs, made by ``children``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from core.errors import CoreError
from core.timing import retry_after_at, retry_at
from hookspecs import Discard, Job, RetryAfter, Schedule, Status, Then, Transition, new_id

UNKNOWN_ERROR = "the load reported nothing about this job"


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A child job to create: action ``ref`` (``"action"`` or ``"destination.action"``) for ``parent``."""

    ref: str
    parent: Job


@dataclass(slots=True)
class Outcome:
    """What to record after a load: one transition per job, follow-ups, warnings to log, and
    the ids of the failed jobs to retry alone (their failure named no job)."""

    transitions: list[Transition] = field(default_factory=list)
    follow_ups: list[FollowUp] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    isolate: list[str] = field(default_factory=list)


def error_text(error: str | BaseException) -> str:
    """The text recorded for an error: the string, or ``Type: message`` for an exception (a
    :class:`~core.errors.CoreError` is already written for people: its message, no class name)."""
    if isinstance(error, CoreError):
        return str(error)
    if isinstance(error, BaseException):
        message = str(error)
        return f"{type(error).__name__}: {message}" if message else type(error).__name__
    return str(error)


def as_thens(result: object) -> list[Then]:
    """Normalise what ``load`` returned (``None``, a Then, or a sequence of Thens).

    Raises :class:`TypeError` naming what was returned instead, which fails the jobs.
    """
    if result is None:
        return [Then()]
    if isinstance(result, Then):
        return [result]
    if isinstance(result, list | tuple) and all(isinstance(item, Then) for item in result):
        return list(result)
    raise TypeError(f"load() returned {result!r}; return None, a Then or a list of Then")


def decide(
    jobs: Sequence[Job],
    result: object,
    schedule: Schedule,
    *,
    now: datetime,
    retry_from: datetime | None = None,
    rng: random.Random | None = None,
) -> Outcome:
    """Decide the transition of every job of a load.

    :param jobs: the claimed jobs handed to ``load`` (status ``executing``, ``attempt`` >= 1).
    :param result: what ``load`` returned, or the exception it raised.
    :param schedule: the action's schedule (``max_retries``, interval or backoff).
    :param now: the time written on the transitions.
    :param retry_from: the time retries are computed from (the tick that claimed the jobs,
        so that a failed job is due exactly at the next tick); defaults to ``now``.
    """
    outcome = Outcome()
    if isinstance(result, BaseException):
        thens = [Then(error=result)]
    else:
        try:
            thens = as_thens(result)
        except TypeError as exc:
            thens = [Then(error=exc)]
    verdicts = _assign(jobs, thens, outcome.warnings)
    retry_base = retry_from or now
    last_attempt = 1 + schedule.max_retries
    for job in jobs:
        then = verdicts.get(job.id)
        due_at: datetime | None = None
        refs: Sequence[str]
        if then is None:
            status, error, refs = Status.UNKNOWN, UNKNOWN_ERROR, ()
        elif then.error is None:
            status, error, refs = Status.SUCCEEDED, None, then.on_succeeded
        else:
            error = error_text(then.error)
            anonymous = not then.jobs  # the load did not say which job failed
            shared = anonymous and len(jobs) > 1
            terminal = then.force_discard or isinstance(then.error, Discard)
            if terminal or job.attempt > last_attempt or (job.attempt == last_attempt and not shared):
                status, refs = Status.DISCARDED, then.on_discarded
            else:
                status, refs = Status.FAILED, then.on_failed
                if isinstance(then.error, RetryAfter):
                    due_at = retry_after_at(schedule, then.error.seconds, now, retry_base)
                else:
                    due_at = retry_at(schedule, job.attempt, retry_base, rng)
                if anonymous:
                    outcome.isolate.append(job.id)
        outcome.transitions.append(Transition(
            id=new_id(), job_id=job.id, event_id=job.event_id, attempt=job.attempt,
            state_before=Status.EXECUTING, state_after=status, created_at=now, error=error, due_at=due_at,
        ))
        outcome.follow_ups.extend(FollowUp(ref, job) for ref in refs)
    return outcome


def _assign(jobs: Sequence[Job], thens: Sequence[Then], warnings: list[str]) -> dict[str, Then]:
    """Map each job id to the Then that decides it (jobs left out are unknown)."""
    ids = {job.id for job in jobs}
    verdicts: dict[str, Then] = {}
    fallback: Then | None = None
    twice: set[str] = set()
    strangers: set[str] = set()
    for then in thens:
        if isinstance(then.jobs, str):
            warnings.append(f"Then(jobs={then.jobs!r}) names a string, not a list of ids; ignored")
            continue
        if not then.jobs:
            if fallback is None:
                fallback = then
            else:
                warnings.append("two Thens without job ids: the first one applies to the jobs not named")
            continue
        for job_id in then.jobs:
            if job_id not in ids:
                strangers.add(str(job_id))
            elif job_id in verdicts:
                twice.add(job_id)
            else:
                verdicts[job_id] = then
    if strangers:
        warnings.append(f"Thens name job ids that are not in the queue (ignored): {', '.join(sorted(strangers))}")
    if twice:
        warnings.append(f"Thens name jobs more than once (the first applies): {', '.join(sorted(twice))}")
    if fallback is not None:
        for job_id in ids.difference(verdicts):
            verdicts[job_id] = fallback
    return verdicts
