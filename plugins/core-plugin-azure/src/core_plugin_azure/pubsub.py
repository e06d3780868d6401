"""Azure Service Bus as the ``core`` pub/sub: a topic per (prefix, topic), a subscription per
(topic, consumer group), on the SDK's asyncio client (``azure.servicebus.aio``).

Publishing is the hot path: messages published on a topic while a send is on its way wait for
it and then go together, in as few ``ServiceBusMessageBatch`` sends as their size allows (one
sender, and one send at a time, per topic). ``publish`` returns once Service Bus has accepted
every message of the batch; one it did not take raises :class:`~hookspecs.PubSubUnavailable`
and the gateway falls back to the schedule. After a connection failure the senders are closed
and publish fails at once until ``reconnect_wait`` (doubling to ``reconnect_max``) has passed;
then the next publish opens new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from azure.core.exceptions import ResourceExistsError
from azure.servicebus import ServiceBusMessage, ServiceBusMessageBatch
from azure.servicebus.aio import ServiceBusClient, ServiceBusSender
from azure.servicebus.exceptions import MessageSizeExceededError
from core.brokers import DEAD_LETTER_GROUP, DEAD_LETTER_PREFIX, KEY_HEADER, Backoff, BrokerPubSub
from hookspecs import Message, PipelineError, PubSubUnavailable

from core_plugin_azure._options import AzureOptions
from core_plugin_azure._subscription import NOT_SETTLED, UNAVAILABLE, AzureSubscription

if TYPE_CHECKING:  # its asyncio HTTP transport (aiohttp) is imported only when entities are managed
    from azure.servicebus.aio.management import ServiceBusAdministrationClient

#: MaxDeliveryCount of subscriptions the adapter creates with max_deliveries = 0 (Service Bus
#: has no "forever"): int32's maximum.
_FOREVER = 2**31 - 1


@dataclass(slots=True)
class Client:
    """The SDK's client, its administration client (when the adapter manages entities), and
    the azure-identity credential to close (when it uses one)."""

    bus: ServiceBusClient
    admin: ServiceBusAdministrationClient | None
    credential: Any = None


class Outbox:
    """The messages waiting for one topic's sender: one send at a time, carrying everything
    that came while the last one was on its way."""

    def __init__(self, owner: AzurePubSub, client: Client, topic_name: str) -> None:
        self._owner = owner
        self._client = client
        self._topic_name = topic_name
        self._pending: list[tuple[Message, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def put(self, messages: Sequence[Message]) -> list[object]:
        """Send ``messages``; the result (``None``) or the exception of each, in order."""
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in messages]
        self._pending.extend(zip(messages, futures, strict=True))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"azure send {self._topic_name}")
        return list(await asyncio.gather(*futures, return_exceptions=True))

    async def _run(self) -> None:
        while self._pending:
            work, self._pending = self._pending, []
            try:
                await self._owner.send_batches(self._client, self._topic_name, work)
            except BaseException as exc:  # every waiting publish gets it, whatever it is
                for _, future in work:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise

    async def sent(self) -> None:
        """Wait until what is queued has been sent (or failed)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


class AzurePubSub(BrokerPubSub[Client, AzureSubscription]):
    """The Service Bus adapter: ``AzurePubSub(url, options)`` (not connected yet)."""

    broker: ClassVar[str] = "Azure Service Bus"
    unavailable = UNAVAILABLE
    log = logging.getLogger("core.pubsub.azure")
    dead_letter_group: ClassVar[str] = DEAD_LETTER_GROUP

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        self.options = AzureOptions.parse(url, options or {})
        super().__init__(reconnect_wait=self.options.reconnect_wait, reconnect_max=self.options.reconnect_max)
        self._senders: dict[str, ServiceBusSender] = {}
        self._outboxes: dict[str, Outbox] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self._sending = Backoff(self.options.reconnect_wait, self.options.reconnect_max)
        self._down = False
        self._closing: set[asyncio.Task[None]] = set()
        #: Entities known to exist (created or found by the administration client).
        self._made: set[str] = set()

    def __repr__(self) -> str:
        return f"AzurePubSub({self.location}, prefix={self.options.prefix!r})"

    @property
    def location(self) -> str:
        return self.options.location

    def destination(self, topic: str) -> str:
        return self.options.topic_name(topic)

    def connected(self, client: Client) -> bool:
        """False from a connection failure until the next attempt is due."""
        return self._sending.ready()

    # -- the connection --------------------------------------------------------------------

    async def connect(self) -> Client:
        """The SDK's client, once the namespace accepts TCP connections (the SDK itself
        connects each sender and receiver when it opens)."""
        host, port = self.options.host_port
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), self.options.connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise PubSubUnavailable(f"no connection to {host}:{port} within {self.options.connect_timeout:g}s "
                                    f"({exc!r})") from None
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        self._sending.reset()
        self._down = False
        return self._new_client()

    def _new_client(self) -> Client:
        options = self.options
        kwargs: dict[str, Any] = {"retry_total": 0}
        if options.tls_ca:
            kwargs["connection_verify"] = options.tls_ca
        manage = options.manage_entities and not options.emulator  # the SDK manages over HTTPS only
        if manage:
            from azure.servicebus.aio.management import ServiceBusAdministrationClient
        if options.connection_string:
            bus = ServiceBusClient.from_connection_string(options.connection_string, **kwargs)
            admin = ServiceBusAdministrationClient.from_connection_string(options.connection_string) if manage else None
            return Client(bus, admin)
        try:
            from azure.identity.aio import DefaultAzureCredential
        except ImportError:
            raise PipelineError(
                f"no connection string in ${options.connection_string_env}, and azure-identity is not installed",
                hint=f"set {options.connection_string_env}, or pip install 'core-plugin-azure[identity]'",
            ) from None
        credential = DefaultAzureCredential()
        bus = ServiceBusClient(options.namespace, credential, **kwargs)
        admin = ServiceBusAdministrationClient(options.namespace, credential) if manage else None
        return Client(bus, admin, credential)

    async def disconnect(self, client: Client) -> None:
        await asyncio.gather(*(outbox.sent() for outbox in self._outboxes.values()))
        self._outboxes.clear()
        senders, self._senders = self._senders, {}
        await asyncio.gather(*(_close(sender) for sender in senders.values()))
        await asyncio.gather(*self._closing, return_exceptions=True)
        with contextlib.suppress(*NOT_SETTLED):
            await asyncio.wait_for(client.bus.close(), 5.0)
        for other in (client.admin, client.credential):
            if other is not None:
                with contextlib.suppress(*NOT_SETTLED):
                    await asyncio.wait_for(other.close(), 5.0)

    def _failed(self, exc: BaseException) -> None:
        """A send met a connection failure: close the senders, fail fast for a while."""
        if not self._down:
            self._down = True
            self.lost(exc)
        else:
            self.last_error = repr(exc)
        self._sending.failed()
        senders, self._senders = self._senders, {}
        for sender in senders.values():
            task = asyncio.create_task(_close(sender))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _succeeded(self) -> None:
        if self._down:
            self._down = False
            self._sending.reset()
            self.restored()

    async def sender(self, client: Client, topic_name: str) -> ServiceBusSender:
        """The open sender of ``topic_name`` (opened once, again after a failure)."""
        sender = self._senders.get(topic_name)
        if sender is not None:
            return sender
        async with self._opening.setdefault(topic_name, asyncio.Lock()):
            sender = self._senders.get(topic_name)
            if sender is None:
                await self.ensure_topic(client, topic_name)
                sender = client.bus.get_topic_sender(topic_name)
                try:
                    await asyncio.wait_for(sender.__aenter__(), self.options.open_timeout)
                except BaseException:
                    await _close(sender)
                    raise
                self._senders[topic_name] = sender
        return sender

    # -- publishing ------------------------------------------------------------------------

    async def send_all(self, client: Client, destination: str, messages: Sequence[Message]) -> list[object]:
        outbox = self._outboxes.get(destination)
        if outbox is None:
            outbox = self._outboxes[destination] = Outbox(self, client, destination)
        return await outbox.put(messages)

    async def send(self, client: Client, destination: str, message: Message) -> None:
        [result] = await self.send_all(client, destination, [message])
        if isinstance(result, BaseException):
            raise result

    async def send_batches(
        self, client: Client, topic_name: str, work: list[tuple[Message, asyncio.Future[None]]]
    ) -> None:
        """Send ``work`` in as few batches as fit; settle each message's future."""
        try:
            sender = await self.sender(client, topic_name)
            batch: ServiceBusMessageBatch = await sender.create_message_batch()
            futures: list[asyncio.Future[None]] = []
            for message, future in work:
                converted = _message(message)
                try:
                    batch.add_message(converted)
                except MessageSizeExceededError:
                    if not futures:  # too large on its own
                        future.set_exception(PipelineError(
                            f"a message of {len(message.body):,} bytes is too large for Service Bus topic "
                            f"{topic_name!r}", hint="Standard namespaces take 256 KiB, Premium 100 MiB"))
                        continue
                    await self._send(sender, batch, futures)
                    batch, futures = await sender.create_message_batch(), []
                    batch.add_message(converted)
                futures.append(future)
            if futures:
                await self._send(sender, batch, futures)
        except UNAVAILABLE as exc:
            self._failed(exc)
            raise
        self._succeeded()

    async def _send(self, sender: ServiceBusSender, batch: ServiceBusMessageBatch,
                    futures: list[asyncio.Future[None]]) -> None:
        timeout = self.options.publish_timeout
        await asyncio.wait_for(sender.send_messages(batch, timeout=timeout), timeout + 1)
        for future in futures:
            if not future.done():
                future.set_result(None)

    # -- topics and subscriptions ----------------------------------------------------------

    def member(self, client: Client, topic: str, group: str) -> AzureSubscription:
        return AzureSubscription(self, client, topic=topic, group=group)

    async def ensure_topic(self, client: Client, topic_name: str) -> None:
        """Create the topic ``topic_name`` unless it exists (with ``manage_entities``)."""
        if client.admin is None or topic_name in self._made:
            return
        with contextlib.suppress(ResourceExistsError):
            await asyncio.wait_for(client.admin.create_topic(topic_name), self.options.publish_timeout)
        self._made.add(topic_name)

    async def ensure_subscription(self, client: Client, topic: str, group: str, *, attaching: bool = False) -> None:
        """Make the subscription of ``group`` on ``topic`` exist: with the administration client
        (``manage_entities``, its MaxDeliveryCount ``max_deliveries``), or, on the development
        emulator, by attaching a receiver (the stand-in makes subscriptions on attach; nothing to
        do when the caller is ``attaching`` one anyway). Else it is expected to be provisioned."""
        options = self.options
        topic_name, name = options.topic_name(topic), options.subscription_name(group)
        if f"{topic_name}/{name}" in self._made:
            return
        if client.admin is not None:
            await self.ensure_topic(client, topic_name)
            dead = topic.startswith(DEAD_LETTER_PREFIX) or not options.max_deliveries
            with contextlib.suppress(ResourceExistsError):
                await asyncio.wait_for(client.admin.create_subscription(
                    topic_name, name, max_delivery_count=_FOREVER if dead else options.max_deliveries,
                ), options.publish_timeout)
        elif options.emulator and not attaching:
            receiver = client.bus.get_subscription_receiver(topic_name, name)
            try:
                await asyncio.wait_for(receiver.__aenter__(), options.open_timeout)
            finally:
                await _close(receiver)
        if client.admin is not None or not attaching:
            self._made.add(f"{topic_name}/{name}")


def _message(message: Message) -> ServiceBusMessage:
    properties: dict[str | bytes, Any] = {name: value for name, value in message.attributes.items()}
    if message.key is not None:
        properties[KEY_HEADER] = message.key
    return ServiceBusMessage(message.body, application_properties=properties or None)


async def _close(handler: Any) -> None:
    """Close an SDK handler, bounded, whatever state it is in."""
    with contextlib.suppress(*NOT_SETTLED):
        await asyncio.wait_for(handler.close(), 5.0)
