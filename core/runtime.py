"""The runtime: what a running service holds. Settings, the plugin host, the validated
pipeline, the opened adapters and this process's identity in the supervisor's registry.

``core start`` opens one runtime and runs the gateway and the scheduler on it (one store,
so one writer for SQLite); ``core start gateway`` / ``core start scheduler`` open one each.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from core import __version__
from core.config import Settings
from core.errors import CoreError
from core.node_registry import refuse_unshared_neighbours
from core.observability import metrics, tracing
from core.pipeline import Pipeline
from core.plugins import PluginHost
from hookspecs import (
    ADAPTER_KINDS,
    Node,
    PubSub,
    PubSubUnavailable,
    Store,
    Supervisor,
    Toolkit,
    Wanderer,
    new_id,
    redacted_url,
)

log = logging.getLogger("core.runtime")


class Runtime:
    """Adapters and pipeline of one process. Build it with :meth:`open`, end with :meth:`close`."""

    def __init__(self, settings: Settings, host: PluginHost, pipeline: Pipeline) -> None:
        self.settings = settings
        self.host = host
        self.pipeline = pipeline
        self.node_id = new_id()
        self.services: tuple[str, ...] = ()
        adapters = host.create_all(ADAPTER_KINDS)  # every bad URL or option at once
        self.store: Store = adapters["store"]
        #: What the store's registration declares it supports (the scheduler refuses an action
        #: asking for a delivery control its store lacks, :mod:`core.scheduler.limits`).
        self.store_capabilities: frozenset[str] = (
            host.registry.resolve("store", settings["store"]).registration.capabilities)
        self.pubsub: PubSub | None = adapters.get("pubsub")
        self.supervisor: Supervisor | None = adapters.get("supervisor")
        self.wanderer: Wanderer | None = adapters.get("wanderer")
        self._opened: list[Any] = []
        # The node registry: the supervisor's own, or on local:// the one that follows the store,
        # so that a second process on the same store is seen (core.node_registry).
        self.registry: Supervisor | None = self.supervisor
        self.supervisor_scheme = urlsplit(host.store_supervisor_url() if settings["supervisor"] == "store"
                                          else settings["supervisor"]).scheme
        if self.supervisor_scheme == "local" and host.store_supervisor_url() != "local://":
            self.registry = host.create("supervisor", host.store_supervisor_url())
        #: Whether other processes see this registry (not an in-memory ``local://`` one): only
        #: then may a node missing from it be taken for dead (the scheduler's fast recovery).
        self.registry_shared = self.registry is not None and (
            self.registry is not self.supervisor or self.supervisor_scheme != "local")
        self.started_at = datetime.now(UTC)
        self._heartbeat: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, settings: Settings, *, services: Sequence[str], no_plugins: bool = False
    ) -> Runtime:
        """Load plugins and the app, validate the pipeline, open every configured adapter."""
        metrics.enable(bool(settings["metrics.enabled"]))
        tracing.refresh()
        host = PluginHost(settings, no_plugins=no_plugins)
        host.registry.check()
        runtime = cls(settings, host, Pipeline.from_host(host))
        runtime.services = tuple(services)
        try:
            for kind in ADAPTER_KINDS:
                adapter = getattr(runtime, kind)
                if adapter is None:
                    continue
                try:
                    await adapter.open()
                except PubSubUnavailable as exc:
                    log.warning(
                        "the pub/sub at %r is unavailable at start (%s): realtime jobs wait for their "
                        "schedule until it connects", redacted_url(settings[kind]), exc,
                    )
                except Exception as exc:
                    raise CoreError(
                        f"could not open the {kind} at {redacted_url(settings[kind])!r}: {exc}",
                        hint=f"check that the server is running, or change '{kind}' in your configuration",
                    ) from exc
                runtime._opened.append(adapter)
            if runtime.registry is not None and runtime.registry is not runtime.supervisor:
                await runtime.registry.open()
                runtime._opened.append(runtime.registry)
            if runtime.registry is not None:
                if runtime.services:
                    await refuse_unshared_neighbours(runtime.registry, runtime.node())
                await runtime.registry.register(runtime.node())
                if runtime.services:
                    runtime._heartbeat = asyncio.create_task(runtime._beat(), name="node heartbeat")
            for service in runtime.services:
                await runtime.fan_out("core_startup", service=service, toolkit=runtime.toolkit(service))
        except BaseException:
            await runtime.close()
            raise
        return runtime

    async def _beat(self) -> None:
        """Refresh this node's record every ``nodes.heartbeat_seconds`` (a failure is logged, retried)."""
        assert self.registry is not None
        every = float(self.settings["nodes.heartbeat_seconds"])
        while True:
            await asyncio.sleep(every)
            try:
                await self.registry.register(self.node())
            except Exception as exc:  # noqa: BLE001 - the next beat tries again
                log.warning("could not refresh this node's heartbeat in the supervisor: %s", exc)

    def node(self) -> Node:
        """This process as the supervisor's registry sees it (call again for a heartbeat)."""
        return Node(
            id=self.node_id,
            service="+".join(self.services) or "cli",
            host=socket.gethostname(),
            version=__version__,
            started_at=self.started_at,
            heartbeat_at=datetime.now(UTC),
            meta={"pid": str(os.getpid()), "supervisor": self.supervisor_scheme},
        )

    def toolkit(self, owner: str, **fields: Any) -> Toolkit:
        """A toolkit for ``owner`` (a service, source, destination or action name)."""
        return Toolkit(
            logger=logging.getLogger(f"core.{owner}"),
            node_id=self.node_id,
            service=fields.pop("service", self.services[0] if self.services else "cli"),
            options=self.settings.section(owner),
            **fields,
        )

    async def fan_out(self, hook: str, **kwargs: Any) -> None:
        """Call a lifecycle hook on every plugin and await what they return."""
        for result in getattr(self.host.pm.hook, hook)(**kwargs):
            if inspect.isawaitable(result):
                await result

    async def close(self) -> None:
        """Run the shutdown hooks, then close adapters in reverse order; log, never raise."""
        for service in reversed(self.services):
            try:
                await self.fan_out("core_shutdown", service=service, toolkit=self.toolkit(service))
            except Exception:
                log.exception("a core_shutdown hook failed for %s", service)
        self.services = ()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.wait({self._heartbeat})
            self._heartbeat = None
            forget = getattr(self.registry, "forget", None)
            if forget is not None:
                try:
                    await forget(self.node_id)  # stopped cleanly: not a neighbour any more
                except Exception as exc:  # noqa: BLE001 - it lapses by itself
                    log.warning("could not remove this node from the registry: %s", exc)
        while self._opened:
            adapter = self._opened.pop()
            try:
                await adapter.close()
            except Exception:
                log.exception("closing %r failed", adapter)
