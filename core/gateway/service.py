"""The gateway service: initialize sources and triggers, serve HTTP with uvicorn, run the
cron, CDC and subscription triggers, and stop in the right order.

Start-up: the application is built (route clashes refused), then each source's ``init`` and
its triggers' ``init`` run in registration order; an ``init`` error shuts down what was
initialized and stops start-up with a :class:`~core.errors.CoreError` carrying the message.
Stop: stop accepting and finish in-flight requests, cancel the long-running triggers, then
the triggers' ``shutdown`` and the sources' ``shutdown`` in reverse order (errors logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
from collections.abc import Callable, Coroutine, Generator
from typing import Any

import uvicorn

from core.errors import CoreError, PipelineError
from core.gateway.app import build_app
from core.gateway.cdc import run_cdc
from core.gateway.cron import run_cron
from core.gateway.ingest import Ingestor
from core.gateway.singleton import run_singleton, trigger_key
from core.gateway.subscription import SubscriptionRunner
from core.plugins._collect import describe
from core.runtime import Runtime
from hookspecs import CdcTrigger, CronTrigger, Source, SubscriptionTrigger, Toolkit, Trigger

log = logging.getLogger("core.gateway")

#: Seconds in-flight HTTP requests get to finish when the gateway stops.
GRACEFUL_SECONDS = 30


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the command line owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def listen(host: str, port: int) -> socket.socket:
    """Bind the gateway's socket; a :class:`CoreError` saying what to do if the port is taken.

    ``core start`` binds it before anything else starts, so a port in use is reported before
    the runtime opens (and before "listening on" could be printed)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise CoreError(
            f"the gateway cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="another process may use the port: pass --port, or set gateway.port / CORE_GATEWAY_PORT",
        ) from None


def tls_files(runtime: Runtime) -> tuple[str, str] | None:
    """The certificate and key files of ``gateway.tls_*`` (relative to the project), checked
    by loading them; ``None`` for plain HTTP. :class:`CoreError` naming the file at fault."""
    settings = runtime.settings
    cert, key = settings["gateway.tls_certfile"], settings["gateway.tls_keyfile"]
    if not cert:
        return None
    cert, key = str(settings.root / cert), str(settings.root / key)
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise CoreError(
            f"the gateway cannot serve HTTPS with gateway.tls_certfile = {cert} and gateway.tls_keyfile = {key}: "
            f"{getattr(exc, 'strerror', None) or exc}",
            hint="both are PEM files: the certificate (chain) and its unencrypted private key",
        ) from None
    return cert, key


class Gateway:
    """One gateway on a runtime: :meth:`start`, then :meth:`stop`."""

    def __init__(self, runtime: Runtime, sock: socket.socket | None = None) -> None:
        self.runtime = runtime
        self._sock = sock
        self.ingestor = Ingestor(runtime)
        self.app = build_app(runtime, self.ingestor)
        for source, trigger in runtime.pipeline.triggers():
            if isinstance(trigger, SubscriptionTrigger) and runtime.pubsub is None:
                raise PipelineError(
                    f"source {source.name!r}, subscription trigger {trigger.name!r} reads topic "
                    f"{trigger.topic!r}, but no pubsub is configured",
                    hint="set 'pubsub' in core.toml (e.g. 'memory://' or a broker URL)",
                )
        self.url = ""
        self._server: _Server | None = None
        self._serving: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._initialized: list[tuple[str, Source | Trigger, Toolkit]] = []

    def _toolkit(self, source: Source) -> Toolkit:
        return self.runtime.toolkit(source.name, service="gateway")

    async def start(self) -> None:
        """Initialize, listen, and start the triggers; :class:`CoreError` if anything fails."""
        await self._init()
        try:
            await self._serve()
            self._start_triggers()
        except BaseException:
            await self.stop()
            raise

    async def _init(self) -> None:
        for source in self.runtime.pipeline.sources.values():
            toolkit = self._toolkit(source)
            steps: list[tuple[str, Source | Trigger]] = [(f"source {source.name!r}", source)]
            steps += [(f"source {source.name!r}, trigger {t.name!r}", t) for t in source.triggers.values()]
            for where, item in steps:
                try:
                    await item.init(toolkit)
                except Exception as exc:
                    await self._shutdown()
                    raise CoreError(
                        f"{where} failed to start: {describe(exc)}",
                        hint="its init() raised; fix the cause, then start again",
                    ) from exc
                self._initialized.append((where, item, toolkit))

    async def _serve(self) -> None:
        settings = self.runtime.settings
        host, port = settings["gateway.host"], settings["gateway.port"]
        tls = tls_files(self.runtime)
        sock, self._sock = self._sock or listen(host, port), None
        bound = sock.getsockname()[1]
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://[{host}]:{bound}" if ":" in host else f"{scheme}://{host}:{bound}"
        config = uvicorn.Config(
            self.app, lifespan="on", log_level="warning", access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SECONDS, server_header=False, proxy_headers=False,
            ssl_certfile=tls[0] if tls else None, ssl_keyfile=tls[1] if tls else None,
        )
        self._server = server = _Server(config)
        self._serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._serving.done():
                self._serving.result()
                raise CoreError(f"the gateway's web server did not start on {host}:{bound}; see the log above")
            await asyncio.sleep(0.01)

    def _start_triggers(self) -> None:
        runtime = self.runtime
        ttl = float(runtime.settings["gateway.lease_seconds"])
        for source, trigger in runtime.pipeline.triggers():
            toolkit = self._toolkit(source)
            key = trigger_key(source.name, trigger.name)
            work: Callable[[], Coroutine[Any, Any, None]]
            if isinstance(trigger, CronTrigger):
                work = functools.partial(run_cron, self.ingestor, source.name, trigger, toolkit)
            elif isinstance(trigger, CdcTrigger):
                work = functools.partial(run_cdc, self.ingestor, source.name, trigger, toolkit)
            elif isinstance(trigger, SubscriptionTrigger):
                assert runtime.pubsub is not None  # checked in __init__
                self._spawn(key, SubscriptionRunner(self.ingestor, runtime.pubsub, source.name, trigger).run())
                continue
            else:
                continue
            self._spawn(key, run_singleton(runtime.supervisor, key, owner=runtime.node_id, ttl=ttl, work=work))

    def _spawn(self, key: str, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine, name=key)
        task.add_done_callback(_report)
        self._tasks.append(task)

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests, stop the triggers, run the shutdowns."""
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            await asyncio.wait({self._serving})
            self._server = None
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        self._tasks.clear()
        await self.ingestor.close()
        await self._shutdown()

    async def _shutdown(self) -> None:
        """Shut down what was initialized, triggers before their source; log errors, go on."""
        while self._initialized:
            where, item, toolkit = self._initialized.pop()
            try:
                await item.shutdown(toolkit)
            except Exception:
                log.exception("%s: shutdown failed", where)


def _report(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("trigger %s stopped: %s", task.get_name(), describe(task.exception()))  # type: ignore[arg-type]


async def run_gateway(
    runtime: Runtime, stop: asyncio.Event, *, on_ready: Callable[[Gateway], None] | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Run a gateway on ``runtime`` until ``stop`` is set; ``on_ready`` is told once it listens.

    :param sock: a socket bound with :func:`listen` already (else it binds its own).
    """
    gateway = Gateway(runtime, sock)
    await gateway.start()
    try:
        if on_ready is not None:
            on_ready(gateway)
        await stop.wait()
    finally:
        await gateway.stop()
