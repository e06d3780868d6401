"""``WebhookDestination``: POST jobs to an HTTP endpoint, signed with Standard Webhooks.

One request per job (``batch = false``, concurrently) or one per load (a JSON array). The answer's
status class becomes the jobs' verdict: 2xx succeeded; 408, 429 and 5xx failed and retried (at the
``Retry-After`` the server asks, as :class:`~hookspecs.RetryAfter`); a redirect (not followed
unless ``follow_redirects``) or another 4xx is terminal (:class:`~hookspecs.Discard`); a
connection error is retried. A pool of connections per destination is opened in ``init`` and
closed in ``shutdown``. Errors and logs name the URL without its secrets, never a header value.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import orjson
from hookspecs import (
    Action,
    CoreError,
    Destination,
    Discard,
    Event,
    Job,
    LoadResult,
    Option,
    Queue,
    RetryAfter,
    Schedule,
    Secret,
    Then,
    Toolkit,
    flag,
    number,
    read_options,
    read_secrets,
    redacted_url,
    sign_webhook,
    table,
    whsec_key,
)

from core_plugin_http._guard import GuardedBackend, Refused, checked_address


def _url(value: Any) -> str:
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError
    return str(value)


#: The destination's options (``[options.NAME]`` or the constructor's keywords).
OPTIONS: dict[str, Option] = {
    "url": Option(_url, "", "an http:// or https:// URL with a host", "where the jobs are POSTed"),
    "headers": Option(table, {}, "a table of header names and values", "headers sent with every request"),
    "timeout": Option(number(float, 0, strict=True), 10.0, "seconds > 0", "timeout of one request"),
    "batch": Option(flag, False, "true or false", "one request per load with a JSON array of the jobs"),
    "follow_redirects": Option(flag, False, "true or false", "follow redirects (off: a redirect is terminal)"),
    "allow_private": Option(
        flag, False, "true or false", "allow private, loopback and link-local targets (off: refused, the SSRF guard)"
    ),
    "max_connections": Option(number(int, 1), 20, "an integer >= 1", "connections in the destination's pool"),
}
RETRIED = frozenset({408, 429})


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds asked by a ``Retry-After`` header (seconds or an HTTP date); ``None`` if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def body_of(event: Event, job: Job) -> dict[str, Any]:
    """What one job is sent as: its event's type and time, and the job's ids, context and data."""
    return {
        "type": f"{event.source}.{event.name}",
        "timestamp": event.received_at.isoformat(),
        "job_id": job.id,
        "event_id": job.event_id,
        "context": job.context,
        "data": job.data,
    }


class WebhookDestination(Destination):
    """An HTTP endpoint. Options (keywords here, or ``[options.NAME]``; the table wins): see
    :data:`OPTIONS`. ``secrets`` hold ``whsec_`` secrets (several during a rotation: each signs).

    ``actions`` default to one action, :class:`Post`.
    """

    def __init__(
        self,
        name: str,
        actions: Sequence[Action] | None = None,
        *,
        secrets: Secret | Sequence[Secret] = (),
        schedule: Schedule | None = None,
        **options: Any,
    ) -> None:
        super().__init__(name, actions if actions is not None else [Post()], schedule=schedule)
        self.secrets = (secrets,) if isinstance(secrets, Secret) else tuple(secrets)
        self.given = options
        self.options = read_options(name, options, OPTIONS, kind="destination")
        self.keys: list[bytes] = []
        self.client: httpx.AsyncClient | None = None
        for action in self.actions.values():
            if isinstance(action, Post):
                action.destination = self

    def __repr__(self) -> str:
        return f"WebhookDestination({self.name!r}, {redacted_url(self.options['url'])!r})"

    @property
    def where(self) -> str:
        return f"destination {self.name!r}"

    async def init(self, toolkit: Toolkit) -> None:
        """Read the options and secrets, check the target, open the connection pool."""
        if self.client is not None:
            return
        self.options = read_options(self.name, {**self.given, **toolkit.options}, OPTIONS, kind="destination")
        url = self.options["url"]
        if not url:
            raise CoreError(f"{self.where} has no url", hint=f'pass url= or set [options.{self.name}] url = "…"')
        self.keys = [whsec_key(s, self.where) for s in read_secrets(self.secrets, self.where)] if self.secrets else []
        parts = urlsplit(url)
        try:
            await checked_address(
                parts.hostname or "",
                parts.port or (443 if parts.scheme == "https" else 80),
                self.options["allow_private"],
            )
        except (Refused, OSError) as exc:
            raise CoreError(
                f"{self.where}: {redacted_url(url)}: {exc}",
                hint="point it at a public address, or set allow_private = true",
            ) from None
        transport = httpx.AsyncHTTPTransport()
        transport._pool = httpcore.AsyncConnectionPool(  # the guard checks every new connection
            ssl_context=httpx.create_ssl_context(),
            max_connections=self.options["max_connections"],
            network_backend=GuardedBackend(self.options["allow_private"]),
        )
        self.client = httpx.AsyncClient(
            transport=transport,
            timeout=self.options["timeout"],
            follow_redirects=self.options["follow_redirects"],
            headers=self.options["headers"],
        )

    async def shutdown(self, toolkit: Toolkit) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.aclose()

    async def post(self, message_id: str, body: bytes) -> Discard | RetryAfter | str | None:
        """POST ``body``; the error it met (classified), or ``None`` when it was accepted."""
        if self.client is None:
            raise CoreError(f"{self.where} is not initialised", hint="the scheduler calls init() before load()")
        headers = {"content-type": "application/json"}
        if self.keys:
            stamp = int(time.time())
            headers |= {
                "webhook-id": message_id,
                "webhook-timestamp": str(stamp),
                "webhook-signature": sign_webhook(self.keys, message_id, stamp, body),
            }
        shown = redacted_url(self.options["url"])
        try:
            response = await self.client.post(self.options["url"], content=body, headers=headers)
        except Refused as exc:
            return f"{shown}: {exc}"
        except httpx.HTTPError as exc:
            return f"{shown}: {type(exc).__name__}: {exc}"
        return _verdict(shown, response)


def _verdict(shown: str, response: httpx.Response) -> Discard | RetryAfter | str | None:
    status = response.status_code
    if 200 <= status < 300:
        return None
    what = f"{shown} answered HTTP {status}"
    if status in RETRIED or status >= 500:
        delay = retry_after(response.headers.get("retry-after"))
        return what if delay is None else RetryAfter(delay, f"{what}, Retry-After: {delay:g}s")
    if 300 <= status < 400:
        return Discard(f"{what} (a redirect, not followed: set follow_redirects = true to follow it)")
    return Discard(what)


class Post(Action):
    """POST each job (or the whole queue, with ``batch``) to the destination's URL."""

    name = "post"
    destination: WebhookDestination

    async def init(self, toolkit: Toolkit) -> None:
        """Nothing to open: the destination holds the pool."""

    async def load(self, toolkit: Toolkit, queue: Queue) -> LoadResult:
        destination = self.destination
        pairs = [(event, job) for event in queue.events for job in event.jobs]
        if destination.options["batch"]:
            ids = [job.id for _, job in pairs]
            message_id = "batch_" + hashlib.sha256(",".join(ids).encode()).hexdigest()[:32]
            error = await destination.post(message_id, orjson.dumps([body_of(e, j) for e, j in pairs]))
            return Then(jobs=ids, error=error)
        errors = await asyncio.gather(
            *(
                destination.post(job.idempotency_key or job.id, orjson.dumps(body_of(event, job)))
                for event, job in pairs
            )
        )
        return [Then(jobs=[job.id], error=error) for (_, job), error in zip(pairs, errors, strict=True)]
