"""Helpers of the gateway tests: a pipeline to ingest into, a runtime on the kit's in-memory
store (a test about SQL passes ``store=sqlite_url(tmp_path)``) with a private memory broker and
local supervisor, a gateway serving real HTTP on a free port, and waiting with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from core.config import load_settings
from core.gateway import Gateway
from core.runtime import Runtime
from hookspecs import (
    Action,
    Destination,
    Event,
    Flow,
    HttpTrigger,
    Payload,
    Schedule,
    Source,
    Toolkit,
    WhereEvent,
    new_id,
)
from tests import gateway_app


class Keep(Action):
    """Loads nothing; its jobs wait for the schedule (not realtime)."""

    name = "keep"


class Live(Action):
    """A realtime action: its jobs are published after the commit."""

    name = "live"
    schedule = Schedule(realtime=True)


class Picky(Action):
    """Its marshal raises for events whose data says ``{"fail": true}``."""

    name = "picky"

    def marshal(self, event: Event, toolkit: Toolkit) -> Payload | None:
        if isinstance(event.data, dict) and event.data.get("fail"):
            raise ValueError("picky refuses this event")
        return Payload(data={"seen": event.data}, context={"by": "picky"})


def shop(*extra: Any) -> tuple[list[Source], list[Destination], list[Flow]]:
    """A source ``shop`` with ``POST /webhooks/orders`` to ``sink.keep`` (plus ``extra`` triggers)."""
    source = Source("shop", triggers=[HttpTrigger("orders", "/webhooks/orders"), *extra])
    sink = Destination("sink", actions=[Keep(), Live(), Picky()])
    return [source], [sink], [Flow("orders", source="shop", actions=["sink.keep"])]


def sqlite_url(tmp_path: Path) -> str:
    """The store URL of a SQLite file in ``tmp_path``, for the tests that need a SQL database."""
    return f"sqlite:///{tmp_path / 'core.db'}"


def settings_for(tmp_path: Path, *, options: str = "", **overrides: Any) -> Any:
    """Settings on the in-memory store (one database per test: one event loop); ``options`` is
    extra TOML (``[options.NAME]`` tables)."""
    suffix = new_id()[-8:]
    config = tmp_path / "core.toml"
    config.write_text(options)
    values = {
        "store": "memory://",
        "pubsub": f"memory://gw-{suffix}",
        "supervisor": f"local://gw-{suffix}",
        "wanderer": "",
        "app": "tests.gateway_app",
        "gateway.port": 0,
        "gateway.lease_seconds": 3,
    }
    values.update(overrides)
    return load_settings(config, cwd=tmp_path, environ={}, overrides=values)


@contextlib.asynccontextmanager
async def opened(
    tmp_path: Path,
    sources: Sequence[Source],
    destinations: Sequence[Destination] = (),
    flows: Sequence[Flow] = (),
    routes: Sequence[Any] = (),
    **overrides: Any,
) -> AsyncIterator[Runtime]:
    """An opened runtime whose pipeline is what is given."""
    gateway_app.SOURCES[:] = sources
    gateway_app.DESTINATIONS[:] = destinations
    gateway_app.FLOWS[:] = flows
    gateway_app.ROUTES[:] = routes
    runtime = await Runtime.open(settings_for(tmp_path, **overrides), services=["gateway"], no_plugins=True)
    try:
        yield runtime
    finally:
        await runtime.close()


@contextlib.asynccontextmanager
async def serving(runtime: Runtime) -> AsyncIterator[Gateway]:
    """A started gateway for the block, stopped after it."""
    gateway = Gateway(runtime)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(0.05)


async def count(runtime: Runtime) -> int:
    """How many events the runtime's store holds."""
    return len(await runtime.store.find_events(WhereEvent()))
