"""Pub/sub: the optional broker between gateway and scheduler, and the carrier of
subscription triggers.

Delivery is at least once: a :class:`Delivery` that is not acknowledged is delivered again,
and members of one consumer ``group`` share a topic's messages (each message goes to one).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from hookspecs._markers import hookspec
from hookspecs._registration import AdapterRegistration

#: The topic the gateway publishes realtime jobs on (prefixed by the adapter's options).
JOBS_TOPIC = "core.jobs"


@dataclass(frozen=True, slots=True)
class Message:
    """A message on a topic: an opaque body and string attributes (headers)."""

    body: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)
    key: str | None = None


@runtime_checkable
class Delivery(Protocol):
    """A received message; settle it exactly once with :meth:`ack` or :meth:`nack`."""

    @property
    def message(self) -> Message:
        """The message delivered."""

    async def ack(self) -> None:
        """The message is handled: never deliver it again to this group."""

    async def nack(self) -> None:
        """The message was not handled: deliver it again (to this or another member)."""


@runtime_checkable
class Subscription(Protocol):
    """A consumer-group membership; iterate it for deliveries, close it to leave."""

    def __aiter__(self) -> AsyncIterator[Delivery]:
        """Yield deliveries until closed."""

    async def close(self) -> None:
        """Leave the group; unacknowledged deliveries go to other members."""


@runtime_checkable
class PubSub(Protocol):
    """A broker adapter. Reconnects by itself; raises :class:`PubSubUnavailable` meanwhile."""

    async def open(self) -> None:
        """Connect. Raise :class:`PubSubUnavailable` if the broker cannot be reached: the
        services then start anyway (realtime jobs wait for their schedule) and the adapter
        connects on a later ``publish`` or ``subscribe``."""

    async def close(self) -> None:
        """Disconnect, flushing what was published."""

    async def publish(self, topic: str, messages: Sequence[Message]) -> None:
        """Publish messages; returns once the broker has accepted them all."""

    async def subscribe(self, topic: str, *, group: str) -> Subscription:
        """Join consumer ``group`` on ``topic``."""


class PubSubUnavailable(Exception):
    """The broker cannot be reached now; callers fall back to the schedule."""


class PubSubSpec:
    """Hook that registers pub/sub adapters."""

    @hookspec
    def core_register_pubsubs(self) -> list[AdapterRegistration[PubSub]]:
        """Offer pub/sub adapters.

        **When called:** once, when the host builds its adapter registry.

        :return: a list of :class:`~hookspecs.AdapterRegistration` whose factories build
            :class:`PubSub` objects.

        **Example**::

            @hookimpl
            def core_register_pubsubs():
                def make(url, options):
                    from my_plugin.broker import MyPubSub
                    return MyPubSub(url, **options)
                return [AdapterRegistration(name="mq", schemes=("mq",), factory=make)]
        """
        raise NotImplementedError  # declared here, implemented by plugins
