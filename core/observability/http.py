"""``GET /metrics`` for the gateway, and the scheduler's own small listener.

A scheduler running alone (``core start scheduler``) serves ``/_health`` (the store answers),
``/_ready`` (its destinations are started and its loops run; ``503`` while starting or
stopping) and ``/metrics`` on ``scheduler.host:scheduler.port`` (loopback by default).

That listener runs in a thread with its own event loop, so a load that blocks the scheduler's
loop (synchronous code in ``async def load``) does not silence it: ``/_health`` asks the
scheduler's loop to query the store and, without an answer within :data:`LOOP_ANSWER_SECONDS`,
answers ``503`` ``{"status": "stalled"}``; ``/metrics`` still answers, with the last backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.errors import CoreError
from core.observability import metrics

log = logging.getLogger("core.observability")

METRICS_PATH = "/metrics"
#: Seconds the scheduler's listener waits for the scheduler's event loop before saying it stalled.
LOOP_ANSWER_SECONDS = 2.0
T = TypeVar("T")


def metrics_route(store: object) -> Route:
    """``GET /metrics``: the Prometheus text exposition, backlog read from ``store``'s summary."""

    async def serve(request: Request) -> Response:
        try:
            await metrics.BACKLOG.refresh(store)
        except Exception as exc:  # noqa: BLE001 - a scrape still answers, with the last backlog
            log.warning("reading the backlog for /metrics failed: %s", exc)
        return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)

    return Route(METRICS_PATH, serve, methods=["GET"])


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the command line owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class SchedulerListener:
    """The scheduler's HTTP listener, in a thread of its own; :meth:`start`, :attr:`url`, :meth:`stop`."""

    def __init__(self, runtime: Any) -> None:
        from core.gateway.app import health_route

        self.runtime = runtime
        self.ready = False
        self.url = ""
        self._health = health_route(runtime).endpoint
        routes = [Route("/_health", self._health_of_loop, methods=["GET"]),
                  Route("/_ready", self._ready, methods=["GET"])]
        if metrics.enabled():
            routes.append(Route(METRICS_PATH, self._metrics, methods=["GET"]))
        self.app = Starlette(routes=routes)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _on_loop(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` on the scheduler's loop; :class:`TimeoutError` if it does not answer in time."""
        assert self._loop is not None

        async def call() -> T:
            return await work()

        future = asyncio.run_coroutine_threadsafe(call(), self._loop)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), LOOP_ANSWER_SECONDS)
        except TimeoutError:
            future.cancel()
            raise

    async def _health_of_loop(self, request: Request) -> Response:
        try:
            response: Response = await self._on_loop(lambda: self._health(request))
        except TimeoutError:
            return JSONResponse({"status": "stalled", "error": (
                f"the scheduler's event loop did not answer within {LOOP_ANSWER_SECONDS:g}s: a load may be "
                "running synchronous code (see the scheduler's log)")}, status_code=503)
        return response

    async def _metrics(self, request: Request) -> Response:
        try:
            await self._on_loop(lambda: metrics.BACKLOG.refresh(self.runtime.store))
        except Exception as exc:  # noqa: BLE001 - a scrape still answers, with the last backlog
            log.warning("reading the backlog for /metrics failed: %s", exc or type(exc).__name__)
        return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)

    async def _ready(self, request: Request) -> Response:
        if not self.ready:
            return JSONResponse({"status": "starting or stopping"}, status_code=503)
        return JSONResponse({"status": "ready", "node": self.runtime.node_id})

    async def start(self) -> None:
        """Listen on ``scheduler.host:scheduler.port``; :class:`CoreError` if that fails."""
        self._loop = asyncio.get_running_loop()
        host, port = self.runtime.settings["scheduler.host"], self.runtime.settings["scheduler.port"]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            sock = socket.create_server((host, port), family=family)
        except OSError as exc:
            raise CoreError(
                f"the scheduler cannot listen on {host}:{port}: {exc.strerror or exc}",
                hint="another process may use the port: set scheduler.port / CORE_SCHEDULER_PORT (0: any free one)",
            ) from None
        bound = sock.getsockname()[1]
        self.url = f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"
        config = uvicorn.Config(self.app, lifespan="off", log_level="warning", access_log=False,
                                server_header=False, timeout_graceful_shutdown=5)
        self._server = server = _Server(config)
        self._thread = thread = threading.Thread(
            target=asyncio.run, args=(server.serve(sockets=[sock]),), name="scheduler listener", daemon=True
        )
        thread.start()
        while not server.started:
            if not thread.is_alive():
                sock.close()
                raise CoreError(f"the scheduler's listener did not start on {host}:{bound}")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop listening."""
        self.ready = False
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            await asyncio.to_thread(self._thread.join, 10)
        self._server = None
