"""Google Cloud Pub/Sub as the ``core`` pub/sub: a topic per (prefix, topic), a subscription
per (topic, consumer group).

Publishing goes through the SDK's batching publisher and waits for the server's message ID of
every message (the publisher's futures, bridged to asyncio), so a message Pub/Sub did not take
raises :class:`~hookspecs.PubSubUnavailable` and the gateway falls back to the schedule. The
gRPC channels reconnect by themselves; the adapter watches the publisher's channel, so while
it is down publish fails at once instead of waiting. Topics and subscriptions are created when
first used, and again when Pub/Sub says they are gone (an emulator that restarted empty).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import grpc
from core.brokers import DEAD_LETTER_GROUP, DEAD_LETTER_PREFIX, KEY_HEADER, BrokerPubSub
from google.api_core import exceptions as api
from google.api_core.retry import Retry, if_exception_type
from google.cloud import pubsub_v1
from google.pubsub_v1.services.publisher.transports.grpc import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.async_client import SubscriberAsyncClient
from google.pubsub_v1.services.subscriber.transports.grpc_asyncio import SubscriberGrpcAsyncIOTransport
from hookspecs import Message, PubSubUnavailable

from core_plugin_google._options import GoogleOptions
from core_plugin_google._subscription import UNAVAILABLE, GoogleSubscription, escaped

#: Errors worth another try within one publish (the channel flickered).
_RETRIED = if_exception_type(api.ServiceUnavailable, api.Aborted, api.InternalServerError, api.Unknown)
#: Pub/Sub's own dead-letter policy, a backstop behind the adapter's (and what counts deliveries).
_MOST_ATTEMPTS = 100
_GOOGLE = "pubsub.googleapis.com:443"
_POLLER_WAKES = 0.3
_DOWN = (grpc.ChannelConnectivity.TRANSIENT_FAILURE, grpc.ChannelConnectivity.SHUTDOWN)


@dataclass(slots=True)
class Client:
    """The SDK's batching publisher (threads) and its asyncio subscriber client, on channels of
    the adapter's own."""

    publisher: pubsub_v1.PublisherClient
    subscriber: SubscriberAsyncClient
    channels: tuple[grpc.Channel, grpc.aio.Channel]
    watcher: Callable[[grpc.ChannelConnectivity], None]


class GooglePubSub(BrokerPubSub[Client, GoogleSubscription]):
    """The Pub/Sub adapter: ``GooglePubSub(url, options)`` (not connected yet)."""

    broker: ClassVar[str] = "Google Pub/Sub"
    unavailable = UNAVAILABLE
    log = logging.getLogger("core.pubsub.google")

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        self.options = GoogleOptions.parse(url, options or {})
        super().__init__(reconnect_wait=self.options.reconnect_wait, reconnect_max=self.options.reconnect_max)
        #: Topic paths known to exist (publish creates a topic once, then when it is gone).
        self._made: set[str] = set()
        self._state = grpc.ChannelConnectivity.IDLE
        self._retry = Retry(predicate=_RETRIED, initial=0.05, maximum=1.0, timeout=self.options.publish_timeout)

    def __repr__(self) -> str:
        return f"GooglePubSub({self.location}, prefix={self.options.prefix!r})"

    @property
    def location(self) -> str:
        return self.options.location

    def destination(self, topic: str) -> str:
        return self.options.topic_path(topic)

    def connected(self, client: Client) -> bool:
        return self._state not in _DOWN

    # -- the connection --------------------------------------------------------------------

    async def connect(self) -> Client:
        client = self._clients(asyncio.get_running_loop())
        try:
            await asyncio.to_thread(self._ready, client.channels[0])
        except BaseException:
            await self.disconnect(client)
            raise
        return client

    def _clients(self, loop: asyncio.AbstractEventLoop) -> Client:
        """A publisher and a subscriber (the asyncio channel needs the running loop)."""
        options = self.options
        wait, ceiling = int(options.reconnect_wait * 1000), int(options.reconnect_max * 1000)
        settings = [
            ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1),
            ("grpc.initial_reconnect_backoff_ms", wait), ("grpc.min_reconnect_backoff_ms", wait),
            ("grpc.max_reconnect_backoff_ms", ceiling),
        ]

        if options.emulator_host:  # no TLS, no credentials
            sending = grpc.insecure_channel(options.emulator_host, options=settings)
            receiving = grpc.aio.insecure_channel(options.emulator_host, options=settings)
        else:  # Google's application default credentials
            sending = PublisherGrpcTransport.create_channel(_GOOGLE, options=settings)
            receiving = SubscriberGrpcAsyncIOTransport.create_channel(_GOOGLE, options=settings)
        publisher = pubsub_v1.PublisherClient(
            batch_settings=pubsub_v1.types.BatchSettings(max_latency=options.batch_latency),
            transport=PublisherGrpcTransport(channel=sending),
        )
        subscriber = SubscriberAsyncClient(transport=SubscriberGrpcAsyncIOTransport(channel=receiving))

        def watch(state: grpc.ChannelConnectivity) -> None:  # a gRPC thread
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._changed, state)

        sending.subscribe(watch, try_to_connect=True)
        return Client(publisher, subscriber, (sending, receiving), watch)

    def _ready(self, channel: grpc.Channel) -> None:
        ready = grpc.channel_ready_future(channel)
        try:
            ready.result(timeout=self.options.connect_timeout)
        except grpc.FutureTimeoutError:
            raise PubSubUnavailable(f"no gRPC connection within {self.options.connect_timeout:g}s") from None
        finally:
            ready.cancel()
        self._state = grpc.ChannelConnectivity.READY

    def _changed(self, state: grpc.ChannelConnectivity) -> None:
        was, self._state = self._state, state
        if state in _DOWN and was not in _DOWN:
            self.lost(PubSubUnavailable(f"gRPC channel {state.name.lower()}"))
        elif state is grpc.ChannelConnectivity.READY and was in _DOWN:
            self.restored()

    async def disconnect(self, client: Client) -> None:
        client.channels[0].unsubscribe(client.watcher)
        try:
            await asyncio.to_thread(client.publisher.stop)  # sends what is batched
        finally:
            # gRPC's connectivity poller wakes every 0.2 s and would find the channel closed under it
            closing = threading.Timer(_POLLER_WAKES, client.channels[0].close)
            closing.daemon = True
            closing.start()
            await client.channels[1].close()
        self._state = grpc.ChannelConnectivity.IDLE

    # -- publishing ------------------------------------------------------------------------

    async def send_all(self, client: Client, destination: str, messages: Sequence[Message]) -> list[object]:
        if destination not in self._made:
            await self.ensure_topic(client, destination)
        results = await super().send_all(client, destination, messages)
        if not any(isinstance(result, api.NotFound) for result in results):
            return results
        # The topic is gone (deleted, or an emulator restarted empty): make it, and the
        # subscriptions of this adapter's members on it, then send what failed again.
        self._made.discard(destination)
        await self.ensure_topic(client, destination)
        for member in [s for s in self.subscriptions if s.topic_path == destination]:
            await self.ensure_subscription(client, member.topic, member.group)
        again = [m for m, r in zip(messages, results, strict=True) if isinstance(r, api.NotFound)]
        retried = iter(await super().send_all(client, destination, again))
        return [next(retried) if isinstance(r, api.NotFound) else r for r in results]

    async def send(self, client: Client, destination: str, message: Message) -> None:
        attributes = escaped(message.attributes)
        if message.key is not None:
            attributes[KEY_HEADER] = message.key
        timeout = self.options.publish_timeout
        future = client.publisher.publish(destination, message.body, retry=self._retry, timeout=timeout, **attributes)
        await asyncio.wait_for(asyncio.wrap_future(future), timeout)

    # -- topics and subscriptions ----------------------------------------------------------

    def member(self, client: Client, topic: str, group: str) -> GoogleSubscription:
        return GoogleSubscription(self, client, topic=topic, group=group)

    async def ensure_topic(self, client: Client, path: str) -> None:
        """Create the topic ``path`` unless it exists."""
        create = functools.partial(client.publisher.create_topic, name=path, timeout=self.options.publish_timeout)
        try:
            await asyncio.to_thread(create)
        except api.AlreadyExists:
            pass
        self._made.add(path)

    async def ensure_subscription(self, client: Client, topic: str, group: str) -> None:
        """The subscription of ``group`` on ``topic`` (created if missing, with its topic), and
        the dead-letter group's on ``dead.<topic>`` so its dead letters are kept from now on."""
        options = self.options
        policy = None
        if not topic.startswith(DEAD_LETTER_PREFIX):
            dead = options.dead_letter_topic(topic)
            await self._ensure_subscription(client, dead, DEAD_LETTER_GROUP, None)
            if options.max_deliveries:
                policy = {"dead_letter_topic": options.topic_path(dead), "max_delivery_attempts": _MOST_ATTEMPTS}
        await self._ensure_subscription(client, topic, group, policy)

    async def _ensure_subscription(self, client: Client, topic: str, group: str, policy: dict[str, Any] | None) -> None:
        await self.ensure_topic(client, self.options.topic_path(topic))
        request: dict[str, Any] = {
            "name": self.options.subscription_path(topic, group),
            "topic": self.options.topic_path(topic),
            "ack_deadline_seconds": self.options.ack_deadline,
        }
        if policy:
            request["dead_letter_policy"] = policy
        try:
            await client.subscriber.create_subscription(request=request, timeout=self.options.publish_timeout)
        except api.AlreadyExists:
            pass

    async def subscription_exists(self, topic: str, group: str) -> bool:
        """Whether the subscription of ``group`` on ``topic`` exists (for tests and tools)."""
        client = await self.client()
        try:
            await client.subscriber.get_subscription(
                subscription=self.options.subscription_path(topic, group), timeout=self.options.publish_timeout
            )
        except api.NotFound:
            return False
        return True
