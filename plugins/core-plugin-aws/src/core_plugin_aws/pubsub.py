"""AWS SNS/SQS as the ``core`` pub/sub: an SNS topic per (prefix, topic), fanning out to one
SQS queue per (topic, consumer group).

boto3 is synchronous: every call runs in a bounded thread pool of the adapter's own
(``max_threads`` threads, and as many again for the members' long polls, so that polls never
starve a publish), bridged to asyncio and bounded in time. Publishing sends ``PublishBatch``
(or ``SendMessageBatch`` to a configured queue) in chunks of 10 at once and waits for each
message's ID, so a message AWS did not take raises :class:`~hookspecs.PubSubUnavailable` and the
gateway falls back to the schedule.

boto3 has no connection to lose: a call that cannot reach AWS marks the adapter down
(:meth:`~core.brokers.BrokerPubSub.lost`), so that publishing fails at once meanwhile, and a
probe tries again every ``reconnect_wait`` seconds (doubling to ``reconnect_max``) until AWS
answers (:meth:`~core.brokers.BrokerPubSub.restored`). Topics, queues and subscriptions are
created when first used, and again when AWS says they are gone (a moto server that restarted
empty).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound
from core.brokers import DEAD_LETTER_GROUP, DEAD_LETTER_PREFIX, BrokerPubSub
from hookspecs import ConfigError, Message, PipelineError, PubSubUnavailable, redacted_url

from core_plugin_aws._errors import CONNECTION, QUEUE_GONE, TOPIC_GONE, UNAVAILABLE, code, gone, transient
from core_plugin_aws._messages import encode, size
from core_plugin_aws._options import AwsOptions
from core_plugin_aws._subscription import AwsSubscription

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

T = TypeVar("T")

#: Most entries in one SNS or SQS batch call, and most bytes (256 KiB).
BATCH, BATCH_BYTES = 10, 262_144
_NOT_PINGED: tuple[type[BaseException], ...] = (PubSubUnavailable, *UNAVAILABLE)


@dataclass(slots=True)
class Client:
    """boto3's SNS and SQS clients (thread-safe), and the threads that call them."""

    sns: SNSClient
    sqs: SQSClient
    calls: ThreadPoolExecutor
    polls: ThreadPoolExecutor


class AwsPubSub(BrokerPubSub[Client, AwsSubscription]):
    """The SNS/SQS adapter: ``AwsPubSub(url, options)`` (not connected yet)."""

    broker: ClassVar[str] = "AWS SNS/SQS"
    unavailable = UNAVAILABLE
    log = logging.getLogger("core.pubsub.aws")

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        self.options = AwsOptions.parse(url, options or {})
        try:
            self._session = boto3.session.Session(
                region_name=self.options.region or None, profile_name=self.options.profile or None
            )
        except ProfileNotFound:
            raise ConfigError(
                "[options.aws] or the pubsub URL query", "profile", self.options.profile,
                "a profile of the shared AWS config (~/.aws/config)",
            ) from None
        self.region = self._session.region_name or ""
        if not self.region:
            raise ConfigError(
                "pubsub URL", "region", "", "aws://?region=REGION (e.g. us-east-1), or AWS_REGION / "
                "AWS_DEFAULT_REGION, or a profile with a region",
            )
        super().__init__(reconnect_wait=self.options.reconnect_wait, reconnect_max=self.options.reconnect_max)
        #: SNS topic ARNs and SQS queue URLs known to exist, by core topic / queue name.
        self.topic_arns: dict[str, str] = {}
        self.queue_urls: dict[str, str] = {}
        self._down = False
        self._up = asyncio.Event()
        self._up.set()
        self._probe: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"AwsPubSub({self.location}, prefix={self.options.prefix!r})"

    @property
    def location(self) -> str:
        where = f" at {redacted_url(self.options.endpoint_url)}" if self.options.endpoint_url else ""
        return f"region {self.region}{where}"

    def destination(self, topic: str) -> str:
        return self.options.check_topic(topic)

    def connected(self, client: Client) -> bool:
        return not self._down

    # -- calls in the thread pool -----------------------------------------------------------

    async def call(self, pool: ThreadPoolExecutor, function: Callable[..., T], timeout: float, **kwargs: Any) -> T:
        """``function(**kwargs)`` in ``pool``, at most ``timeout`` seconds; an unreachable AWS
        marks the adapter down, AWS's throttling and faults become :class:`PubSubUnavailable`."""
        future = asyncio.get_running_loop().run_in_executor(pool, functools.partial(function, **kwargs))
        try:
            return await asyncio.wait_for(future, timeout)
        except CONNECTION as exc:
            self.down(exc)
            raise
        except TimeoutError as exc:
            raise TimeoutError(f"{getattr(function, '__name__', 'call')} took more than {timeout:g}s") from exc
        except ClientError as exc:
            if transient(exc):
                raise PubSubUnavailable(f"AWS said {code(exc)}: {exc}") from exc
            raise

    async def connect(self) -> Client:
        options = self.options
        config = Config(
            region_name=self.region,
            connect_timeout=options.connect_timeout,
            # A long poll must come back before botocore gives up on it.
            read_timeout=options.wait_seconds + options.publish_timeout,
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=2 * options.max_threads,
            tcp_keepalive=True,
        )
        extra: dict[str, Any] = {"config": config}
        if options.endpoint_url:
            extra["endpoint_url"] = options.endpoint_url
        if options.tls_ca:
            extra["verify"] = options.tls_ca
        # Creating clients reads botocore's service models (tens of ms): not on the event loop.
        sns, sqs = await asyncio.to_thread(lambda: (self._session.client("sns", **extra),
                                                    self._session.client("sqs", **extra)))
        client = Client(
            sns, sqs,
            ThreadPoolExecutor(options.max_threads, thread_name_prefix="core-aws"),
            ThreadPoolExecutor(options.max_threads, thread_name_prefix="core-aws-poll"),
        )
        try:
            await self._ping(client)
        except BaseException:
            await self.disconnect(client)
            raise
        self._down = False
        self._up.set()
        return client

    async def _ping(self, client: Client) -> None:
        """One cheap call: AWS answers, and the credentials are good."""
        try:
            await self.call(client.calls, client.sqs.list_queues, self.options.connect_timeout, MaxResults=1)
        except ClientError as exc:  # refused: bad credentials, no permission (never transient here)
            raise PubSubUnavailable(f"AWS refused the adapter's credentials or request: {code(exc)}") from exc
        except BotoCoreError as exc:
            if isinstance(exc, UNAVAILABLE):
                raise
            raise PubSubUnavailable(f"boto3 could not call AWS: {exc!r}") from exc

    async def disconnect(self, client: Client) -> None:
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
            self._probe = None
        client.calls.shutdown(wait=False, cancel_futures=True)
        client.polls.shutdown(wait=False, cancel_futures=True)
        client.sns.close()
        client.sqs.close()
        self._down = False
        self._up.set()

    # -- down and up again --------------------------------------------------------------------

    def down(self, exc: BaseException) -> None:
        """A call could not reach AWS: fail fast from now on, and probe until it answers."""
        if self._down or not self._open:
            return
        self._down = True
        self._up.clear()
        self.lost(exc)
        self._probe = asyncio.create_task(self._probing(), name=f"probe {self.location}")

    async def up(self) -> None:
        """Wait until AWS is reachable (at once when it is)."""
        await self._up.wait()

    async def _probing(self) -> None:
        wait = self.options.reconnect_wait
        while self._open:
            await asyncio.sleep(wait)
            client = self._client
            if client is None:
                return
            try:
                await self._ping(client)
            except _NOT_PINGED as exc:
                self.last_error = repr(exc)
                wait = min(wait * 2, self.options.reconnect_max)
                continue
            self._down = False
            self._up.set()
            self._probe = None
            self.restored()
            return

    # -- publishing ----------------------------------------------------------------------------

    async def send(self, client: Client, destination: str, message: Message) -> None:
        [result] = await self.send_all(client, destination, [message])
        if isinstance(result, BaseException):
            raise result

    async def send_all(self, client: Client, destination: str, messages: Sequence[Message]) -> list[object]:
        entries = [encode(message) for message in messages]
        chunks: list[list[int]] = []
        filled = 0
        for index, (body, attributes) in enumerate(entries):
            bytes_ = size(body, attributes)
            if chunks and len(chunks[-1]) < BATCH and filled + bytes_ <= BATCH_BYTES:
                chunks[-1].append(index)
                filled += bytes_
            else:
                chunks.append([index])
                filled = bytes_
        results: list[object] = [None] * len(messages)
        answers = await asyncio.gather(
            *(self._send_chunk(client, destination, [entries[i] for i in chunk]) for chunk in chunks),
            return_exceptions=True,
        )
        for chunk, answer in zip(chunks, answers, strict=True):
            for position, index in enumerate(chunk):
                results[index] = answer if isinstance(answer, BaseException) else answer[position]
        return results

    async def _send_chunk(
        self, client: Client, topic: str, entries: list[tuple[str, dict[str, dict[str, str]]]]
    ) -> list[object]:
        """One batch call; the result of each entry (``None`` or the exception). A topic that
        is gone is made again, with the queues of this adapter's members on it."""
        for attempt in (1, 2):
            try:
                if topic in self.options.queues:
                    return await self._send_to_queue(client, topic, entries)
                return await self._publish_batch(client, topic, entries)
            except ClientError as exc:
                if attempt == 2 or code(exc) not in TOPIC_GONE | QUEUE_GONE or topic in self.options.queues:
                    if code(exc) in QUEUE_GONE:
                        raise PubSubUnavailable(f"SQS queue {self.options.queues.get(topic)!r} does not exist") from exc
                    raise
                self.log.warning("AWS SNS/SQS: topic %r was gone; making it again", topic)
                self.topic_arns.pop(topic, None)
                for member in [s for s in self.subscriptions if s.topic == topic]:
                    await member.rejoin()
        raise AssertionError("unreachable")

    async def _publish_batch(
        self, client: Client, topic: str, entries: list[tuple[str, dict[str, dict[str, str]]]]
    ) -> list[object]:
        arn = await self.topic_arn(client, topic)
        answer = await self.call(
            client.calls, client.sns.publish_batch, self.options.publish_timeout, TopicArn=arn,
            PublishBatchRequestEntries=[
                {"Id": str(i), "Message": body, "MessageAttributes": attributes}
                for i, (body, attributes) in enumerate(entries)
            ],
        )
        return self._entry_results(len(entries), answer.get("Failed", []), f"SNS topic {arn}")

    async def _send_to_queue(
        self, client: Client, topic: str, entries: list[tuple[str, dict[str, dict[str, str]]]]
    ) -> list[object]:
        url = await self.queue_url(client, self.options.queues[topic])
        answer = await self.call(
            client.calls, client.sqs.send_message_batch, self.options.publish_timeout, QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": body, "MessageAttributes": attributes}
                for i, (body, attributes) in enumerate(entries)
            ],
        )
        return self._entry_results(len(entries), answer.get("Failed", []), f"SQS queue {url}")

    @staticmethod
    def _entry_results(count: int, failed: Sequence[Mapping[str, Any]], where: str) -> list[object]:
        results: list[object] = [None] * count
        for entry in failed:
            what = f"{where} refused a message: {entry.get('Code')}: {entry.get('Message', '')}"
            # A sender's fault (too large, bad attributes) will not pass later either: a bug to show.
            results[int(entry["Id"])] = PipelineError(what) if entry.get("SenderFault") else PubSubUnavailable(what)
        return results

    # -- topics, queues and subscriptions --------------------------------------------------------

    def member(self, client: Client, topic: str, group: str) -> AwsSubscription:
        return AwsSubscription(self, client, topic=topic, group=group)

    async def topic_arn(self, client: Client, topic: str) -> str:
        """The ARN of ``topic``'s SNS topic, created unless it exists (or is configured by ARN)."""
        known = self.topic_arns.get(topic)
        if known is not None:
            return known
        name = self.options.topic_name(topic)
        if name.startswith("arn:"):
            arn = name
        else:
            made = await self.call(client.calls, client.sns.create_topic, self.options.publish_timeout, Name=name)
            arn = made["TopicArn"]
        self.topic_arns[topic] = arn
        return arn

    async def queue_url(self, client: Client, name: str) -> str:
        """The URL of the existing queue ``name`` (a URL is its own)."""
        if name.startswith(("https://", "http://")):
            return name
        known = self.queue_urls.get(name)
        if known is None:
            timeout = self.options.publish_timeout
            found = await self.call(client.calls, client.sqs.get_queue_url, timeout, QueueName=name)
            known = self.queue_urls[name] = found["QueueUrl"]
        return known

    async def ensure_queue(self, client: Client, topic: str, group: str) -> str:
        """The URL of the queue ``group`` reads on ``topic``: a configured one as it is, else
        its own queue subscribed to the topic (created if missing), whose redrive policy sends
        what was received ``max_deliveries`` times to the queue of group ``dead-letters`` on
        ``dead.<topic>``, made first so that dead letters are kept from now on."""
        try:
            return await self._ensure_queue(client, topic, group)
        except ClientError as exc:
            if not gone(exc):
                raise
        # A topic or queue known to exist is gone (a moto server restarted empty): forget them.
        for known in (topic, self.options.dead_letter_topic(topic)):
            self.topic_arns.pop(known, None)
        self.queue_urls.clear()
        return await self._ensure_queue(client, topic, group)

    async def _ensure_queue(self, client: Client, topic: str, group: str) -> str:
        dead_arn = ""
        if not topic.startswith(DEAD_LETTER_PREFIX):
            dead_url = await self._ensure_fanout(client, self.options.dead_letter_topic(topic), DEAD_LETTER_GROUP, "")
            if self.options.max_deliveries:
                dead_arn = await self._queue_arn(client, dead_url)
        if topic in self.options.queues:
            return await self.queue_url(client, self.options.queues[topic])
        return await self._ensure_fanout(client, topic, group, dead_arn)

    async def _queue_arn(self, client: Client, url: str) -> str:
        got = await self.call(client.calls, client.sqs.get_queue_attributes, self.options.publish_timeout,
                              QueueUrl=url, AttributeNames=["QueueArn"])
        return got["Attributes"]["QueueArn"]

    async def _ensure_fanout(self, client: Client, topic: str, group: str, dead_arn: str) -> str:
        options, timeout = self.options, self.options.publish_timeout
        topic_arn = await self.topic_arn(client, topic)
        name = options.queue_name(topic, group)
        made = await self.call(client.calls, client.sqs.create_queue, timeout, QueueName=name)
        url = self.queue_urls[name] = made["QueueUrl"]
        queue_arn = await self._queue_arn(client, url)
        attributes = {
            "VisibilityTimeout": str(options.ack_deadline),
            "Policy": json.dumps({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "core-sns-fanout", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage", "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
                }],
            }),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_arn, "maxReceiveCount": options.max_deliveries}
            ) if dead_arn else "",
        }
        await self.call(client.calls, client.sqs.set_queue_attributes, timeout, QueueUrl=url,
                        Attributes=attributes)
        await self.call(client.calls, client.sns.subscribe, timeout, TopicArn=topic_arn, Protocol="sqs",
                        Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}, ReturnSubscriptionArn=True)
        return url

    async def group_exists(self, topic: str, group: str) -> bool:
        """Whether ``group``'s queue on ``topic`` exists and is subscribed to its topic, so that
        what is published from now on is kept for it (for tests and tools)."""
        client = await self.client()
        if topic in self.options.queues:
            return True
        timeout = self.options.publish_timeout
        try:
            found = await self.call(client.calls, client.sqs.get_queue_url, timeout,
                                    QueueName=self.options.queue_name(topic, group))
            queue_arn = await self._queue_arn(client, found["QueueUrl"])
            arn = self.topic_arns.get(topic) or self.options.topic_name(topic)
            if not arn.startswith("arn:"):
                arn = (await self.call(client.calls, client.sns.create_topic, timeout, Name=arn))["TopicArn"]
            listed = await self.call(client.calls, client.sns.list_subscriptions_by_topic, timeout, TopicArn=arn)
        except ClientError as exc:
            if gone(exc):
                return False
            raise
        return any(s.get("Endpoint") == queue_arn for s in listed.get("Subscriptions", []))
