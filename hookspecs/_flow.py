"""Flows: what connects a source's trigger to destinations' actions, with an optional transform."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from hookspecs._destination import check_name
from hookspecs._markers import hookspec
from hookspecs._store import Event


@dataclass(frozen=True, slots=True)
class Flow:
    """Send the events of ``source`` (its ``trigger``, or ``"*"`` for all) to ``actions``.

    :param actions: ``"destination.action"`` names.
    :param events: event names to keep (empty: all).
    :param transform: rewrite the event before it is marshaled, or return ``None`` to drop
        it for this flow; may be ``async``. The stored event is the one received.
    """

    name: str
    source: str
    actions: Sequence[str]
    trigger: str = "*"
    events: Sequence[str] = ()
    transform: Callable[[Event], Event | Awaitable[Event | None] | None] | None = field(
        default=None, compare=False
    )

    def __post_init__(self) -> None:
        check_name("flow", self.name)
        for ref in self.actions:
            parts = ref.split(".")
            if len(parts) != 2 or not all(parts):
                raise ValueError(
                    f"flow {self.name!r}: action {ref!r} must be written 'destination.action'"
                )

    def matches(self, source: str, trigger: str, event: str) -> bool:
        """Tell whether an event of ``source``/``trigger`` named ``event`` takes this flow."""
        return (
            self.source == source
            and self.trigger in ("*", trigger)
            and (not self.events or event in self.events)
        )


class FlowSpec:
    """Hook that registers flows."""

    @hookspec
    def core_register_flows(self) -> list[Flow]:
        """Offer flows.

        **When called:** once at gateway start-up.

        :return: :class:`Flow` objects; their sources and actions must be registered, or
            start-up stops with an error naming the missing one.

        **Example**::

            @hookimpl
            def core_register_flows():
                return [Flow("orders-to-crm", source="shop", actions=["crm.identify"])]
        """
        raise NotImplementedError  # declared here, implemented by plugins
