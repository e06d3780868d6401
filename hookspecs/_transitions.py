"""Which status changes a store accepts, and what it answers when it refuses one.

:data:`ALLOWED_TRANSITIONS` is the one table of legal ``state_before -> state_after`` moves:
exactly what the engine writes (insert, claim, a load's outcome, release at shutdown, lease
recovery and its discard, ``core jobs retry``). A store refuses a transition whose
``state_before`` is not its job's current status, whose move is not in the table, or which
leaves ``executing`` naming another attempt than the job's (a stale write), without storing
it and without failing the other transitions of the same call:
:meth:`~hookspecs.Store.add_transitions` returns the refused ones as :class:`RefusedTransition`.
:func:`check_transitions` applies the rule to a batch, for any store to reuse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from hookspecs._store import Status, Transition

_A, _W, _E = Status.ACKNOWLEDGED, Status.AWAITING, Status.EXECUTING
_S, _F, _D, _U = Status.SUCCEEDED, Status.FAILED, Status.DISCARDED, Status.UNKNOWN

#: The legal moves: for each ``state_before`` (``None``: the first transition of a job, which
#: ``insert_queue`` / ``add_jobs`` write), the statuses a job may move to from it.
ALLOWED_TRANSITIONS: Mapping[Status | None, frozenset[Status]] = MappingProxyType({
    None: frozenset({_A, _W, _S, _F, _D, _U}),  # a job is stored in any status but executing
    _A: frozenset({_E}),  # claimed
    _W: frozenset({_E}),  # claimed
    _E: frozenset({_S, _F, _D, _U, _W}),  # the load's outcome; lease recovery (failed); release (awaiting)
    _F: frozenset({_E, _D, _W}),  # claimed again; discarded by recovery when out of retries; retried
    _D: frozenset({_W}),  # core jobs retry
    _U: frozenset({_W}),  # core jobs retry
    _S: frozenset(),
})


def is_allowed(state_before: Status | None, state_after: Status) -> bool:
    """Whether ``state_before -> state_after`` is in :data:`ALLOWED_TRANSITIONS`."""
    return state_after in ALLOWED_TRANSITIONS.get(state_before, frozenset())


def _name(status: Status | None) -> str:
    return "(none)" if status is None else status.value


def ends_its_attempt(transition: Transition, attempt: int) -> bool:
    """Whether a move out of ``executing`` names the attempt it ends: the job's current
    ``attempt`` (a release to ``awaiting`` gives it back: ``attempt - 1``). A write of a
    scheduler whose lease ran out, after the job was recovered and claimed again, names an
    older attempt and is refused (fencing). Other moves are not checked."""
    if transition.state_before != Status.EXECUTING:
        return True
    return transition.attempt == attempt or (
        transition.state_after == Status.AWAITING and transition.attempt == attempt - 1)


@dataclass(frozen=True, slots=True)
class RefusedTransition:
    """A transition a store did not store. ``current`` and ``attempt`` are the job's status and
    attempt when it was refused (``None``: the store has no such job)."""

    transition: Transition
    current: Status | None
    attempt: int | None = None

    @property
    def reason(self) -> str:
        """Why, naming the job, its current status and the attempted move."""
        t = self.transition
        move = f"{_name(t.state_before)} -> {t.state_after.value}"
        if self.current is None:
            return f"job {t.job_id}: transition {move} refused: no such job in the store"
        if t.state_before != self.current:
            return (f"job {t.job_id} is {self.current.value}: transition {move} refused "
                    f"(it does not start from the job's current status)")
        if not is_allowed(self.current, t.state_after):
            return f"job {t.job_id} is {self.current.value}: transition {move} refused (not an allowed move)"
        return (f"job {t.job_id} is {self.current.value} (attempt {self.attempt}): transition {move} of attempt "
                f"{t.attempt} refused (a stale write: the job was claimed again since)")


def check_transitions(
    transitions: Iterable[Transition], current: Mapping[str, tuple[Status, int]]
) -> tuple[list[Transition], list[RefusedTransition]]:
    """Split ``transitions`` (in order) into accepted and refused, given each job's ``current``
    ``(status, attempt)`` (a job missing from it is not in the store).

    Accepted: the transition starts from the job's status, its move is allowed, and a move out
    of ``executing`` names the attempt it ends (:func:`ends_its_attempt`). Transitions of one
    job apply in order: each accepted one becomes the state the next is checked against, so
    one call may move a job several steps.
    """
    state = dict(current)
    accepted: list[Transition] = []
    refused: list[RefusedTransition] = []
    for transition in transitions:
        now, attempt = state.get(transition.job_id, (None, None))
        before = None if transition.state_before is None else Status(transition.state_before)
        after = Status(transition.state_after)
        if (now is None or attempt is None or before != now or not is_allowed(before, after)
                or not ends_its_attempt(transition, attempt)):
            refused.append(RefusedTransition(transition, now, attempt))
        else:
            accepted.append(transition)
            state[transition.job_id] = (after, transition.attempt)
    return accepted, refused
