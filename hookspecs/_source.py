"""Sources and their triggers: where events come from and how they arrive.

A trigger runs in one of four modes: ``http`` (a route on the gateway), ``cron`` (a schedule
that pulls), ``cdc`` (a long-running listener on a database's changes) or ``subscription``
(a pub/sub topic). Each turns what arrives into :class:`EventDraft` objects; the gateway
gives them ids and timestamps and stores them with their jobs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from hookspecs._destination import check_name
from hookspecs._edge import ApiKey, Auth, Cors, HmacSignature, StandardWebhook
from hookspecs._markers import hookspec
from hookspecs._pubsub import Message
from hookspecs._toolkit import Toolkit
from hookspecs._wanderer import Migration, MigrationScript


@dataclass(slots=True)
class EventDraft:
    """An event as a trigger extracts it, before the gateway stores it.

    ``name=None`` takes the trigger's name. ``idempotency_key`` (e.g. Segment's
    ``messageId``): the gateway stores one event per key and source within
    ``gateway.idempotency_window``; a request's ``Idempotency-Key`` header is used for
    drafts that have none.
    """

    data: Any = None
    context: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    sent_at: datetime | None = None
    idempotency_key: str | None = None


class Rejected(Exception):
    """Raised by an extractor for input it refuses: nothing is stored, the sender is told why

    (HTTP ``400`` with this message; a subscription message is recorded as rejected).
    """


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """The request an HTTP trigger's extractor sees (independent of the web framework)."""

    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    path_params: Mapping[str, str] = field(default_factory=dict)


#: Reshapes an HTTP trigger's answer: ``(status, document)`` in, the ``(status, document)`` to send out.
Answer = Callable[[int, dict[str, Any]], tuple[int, Any]]

#: Emits drafts from a long-running trigger; returns once they are durably stored.
Emit = Callable[[Sequence[EventDraft]], Awaitable[list[str]]]


class Trigger:
    """Base of the four trigger modes; ``mode`` says which."""

    mode: ClassVar[str] = ""
    #: Migrations of this trigger's scope (``source/trigger:<s>/<t>``).
    migrations: Sequence[Migration] = ()

    def __init__(self, name: str) -> None:
        self.name = check_name("trigger", name)

    async def init(self, toolkit: Toolkit) -> None:
        """Called when the gateway starts, after the source's ``init``."""

    async def shutdown(self, toolkit: Toolkit) -> None:
        """Called when the gateway stops, before the source's ``shutdown``."""

    async def migrate(self, toolkit: Toolkit, script: MigrationScript) -> None:
        """Run one direction of a migration file of this trigger's scope (the seeds' ``Migrate``).

        A trigger that does not override it inherits its source's. The default has no logic:
        a file of this scope fails, saying so.
        """
        raise NotImplementedError(f"{self!r} has no migrate() to run {script.path}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class HttpTrigger(Trigger):
    """A route on the gateway. The default extractor reads a JSON object
    ``{"name"?, "context"?, "data", "sent_at"?}`` or a batch ``{"events": [ … ]}``.

    ``auth`` (an :class:`ApiKey`, :class:`StandardWebhook` or :class:`HmacSignature`) says who
    may call it (none: anyone); ``cors`` lets browsers of other origins call it.
    ``max_body_bytes`` lowers ``gateway.max_body_bytes`` for this route (a protocol's own limit);
    ``answer(status, document)`` returns the ``(status, document)`` to send instead of the
    gateway's, for senders that expect another protocol's answers (an analytics SDK's).
    """

    mode = "http"

    def __init__(
        self,
        name: str,
        path: str,
        *,
        methods: Sequence[str] = ("POST",),
        extract: Callable[[HttpRequest], Sequence[EventDraft]] | None = None,
        auth: Auth | None = None,
        cors: Cors | None = None,
        max_body_bytes: int | None = None,
        answer: Answer | None = None,
    ) -> None:
        super().__init__(name)
        if not path.startswith("/"):
            raise ValueError(f"HTTP trigger {name!r}: path {path!r} must start with '/'")
        self.path = path
        self.methods = tuple(m.upper() for m in methods)
        self.extract = extract
        if auth is not None and not isinstance(auth, ApiKey | StandardWebhook | HmacSignature):
            raise ValueError(f"HTTP trigger {name!r}: auth={auth!r} is not an ApiKey, StandardWebhook or HmacSignature")
        if cors is not None and not isinstance(cors, Cors):
            raise ValueError(f"HTTP trigger {name!r}: cors={cors!r} is not a Cors")
        if max_body_bytes is not None and (isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int)
                                           or max_body_bytes < 1):
            raise ValueError(f"HTTP trigger {name!r}: max_body_bytes={max_body_bytes!r} is not a positive integer")
        if answer is not None and not callable(answer):
            raise ValueError(f"HTTP trigger {name!r}: answer={answer!r} is not callable")
        self.auth = auth
        self.cors = cors
        self.max_body_bytes = max_body_bytes
        self.answer = answer


class CronTrigger(Trigger):
    """Pulls events on a schedule (``"@every 30s"`` or a CRON string); one node runs it."""

    mode = "cron"

    def __init__(
        self,
        name: str,
        interval: str,
        extract: Callable[[Toolkit], Awaitable[Sequence[EventDraft]]],
    ) -> None:
        super().__init__(name)
        self.interval = interval
        self.extract = extract


class CdcTrigger(Trigger):
    """A long-running listener on a database's changes; one node runs it.

    ``listen(toolkit, emit)`` runs until cancelled (clean shutdown is a cancellation) and
    calls ``emit`` with drafts; ``emit`` returns once they are stored, so the listener can
    then advance its own position (nothing missed across a restart).
    """

    mode = "cdc"

    def __init__(self, name: str, listen: Callable[[Toolkit, Emit], Awaitable[None]]) -> None:
        super().__init__(name)
        self.listen = listen


class SubscriptionTrigger(Trigger):
    """Reads a pub/sub topic through the configured pubsub adapter, in consumer ``group``
    (default ``core.<source>.<trigger>``). The default extractor decodes a JSON body like
    :class:`HttpTrigger`'s.
    """

    mode = "subscription"

    def __init__(
        self,
        name: str,
        topic: str,
        *,
        group: str | None = None,
        extract: Callable[[Message], Sequence[EventDraft]] | None = None,
    ) -> None:
        super().__init__(name)
        self.topic = topic
        self.group = group
        self.extract = extract


class Source:
    """A system events come from: a name and its triggers.

    Use it directly or subclass it to add ``init`` / ``shutdown``.
    """

    def __init__(
        self, name: str, triggers: Sequence[Trigger], *, migrations: Sequence[Migration] = ()
    ) -> None:
        self.name = check_name("source", name)
        self.migrations = tuple(migrations)
        self.triggers: dict[str, Trigger] = {}
        for trigger in triggers:
            if trigger.name in self.triggers:
                raise ValueError(f"source {name!r} has two triggers named {trigger.name!r}")
            self.triggers[trigger.name] = trigger

    async def init(self, toolkit: Toolkit) -> None:
        """Called when the gateway starts, before the triggers' ``init``."""

    async def shutdown(self, toolkit: Toolkit) -> None:
        """Called when the gateway stops, after the triggers' ``shutdown``."""

    async def migrate(self, toolkit: Toolkit, script: MigrationScript) -> None:
        """Run one direction of a migration file of this source's scope (the seeds' ``Migrate``).

        ``init`` runs before and ``shutdown`` after a run of its migrations. The default has no logic:
        a file of this scope fails, saying so.
        """
        raise NotImplementedError(f"{self!r} has no migrate() to run {script.path}")

    def __repr__(self) -> str:
        return f"Source({self.name!r}, triggers={list(self.triggers)})"


class SourceSpec:
    """Hook that registers sources."""

    @hookspec
    def core_register_sources(self) -> list[Source]:
        """Offer sources (with their triggers).

        **When called:** once at gateway start-up, and by CLI commands that show the pipeline.

        :return: :class:`Source` objects; two with one name are refused, naming both plugins.

        **Example**::

            @hookimpl
            def core_register_sources():
                return [Source("shop", triggers=[HttpTrigger("orders", "/webhooks/orders")])]
        """
        raise NotImplementedError  # declared here, implemented by plugins
