"""The delivery controls an action asks of its store, checked when the scheduler starts.

A ``rate_limit`` needs :attr:`~hookspecs.Capability.RATE_LIMITS`, a ``concurrency``
:attr:`~hookspecs.Capability.CONCURRENCY`, an ``ordering_key`` (or an overridden
``ordering_key_for``) :attr:`~hookspecs.Capability.ORDERING`: the store's registration
declares them. An action asking for one its store does not declare stops the start with a
:class:`~core.errors.CoreError` naming the action, the store and the capability: a limit is
never ignored in silence.
"""

from __future__ import annotations

from collections.abc import Collection

from core.errors import CoreError
from core.runtime import Runtime
from hookspecs import Action, Capability

#: Each action's concurrency limit by ``(destination, action)``.
Limits = dict[tuple[str, str], int]


def require(capabilities: Collection[str], capability: Capability, where: str, option: str, store: object) -> None:
    """Raise unless the store declares ``capability``, which ``option`` of ``where`` needs."""
    if capability not in capabilities:
        raise CoreError(
            f"{where} has {option} but the store {type(store).__name__} does not declare the "
            f"capability {capability.value!r}, so it could not enforce it",
            hint=f"use a store that declares it (sqlite://, postgresql://) or remove the {option.split('=')[0]}",
        )


def orders(action: Action) -> bool:
    """Whether the action orders its jobs: an ``ordering_key``, or its own ``ordering_key_for``."""
    return action.ordering_key is not None or type(action).ordering_key_for is not Action.ordering_key_for


def concurrency_limits(runtime: Runtime) -> Limits:
    """The concurrency limit of every action that has one; refuse the controls the store lacks.

    :raises CoreError: an action has a ``concurrency`` or orders its jobs, and the store does
        not declare the capability.
    """
    limits: Limits = {}
    capabilities = runtime.store_capabilities
    for destination in runtime.pipeline.destinations.values():
        for name, action in destination.actions.items():
            where = f"action {destination.name}.{name}"
            if orders(action):
                require(capabilities, Capability.ORDERING, where, f"ordering_key={action.ordering_key!r}",
                        runtime.store)
            limit = destination.concurrency_of(name)
            if limit is not None:
                require(capabilities, Capability.CONCURRENCY, where, f"concurrency={limit!r}", runtime.store)
                limits[destination.name, name] = limit
    return limits
