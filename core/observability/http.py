"""``GET /metrics`` for the gateway, and the scheduler's own small listener.

A scheduler running alone (``core start scheduler``) serves ``/_health`` (the store answers),
``/_ready`` (its destinations are started and its loops run; ``503`` while starting or
stopping) and ``/metrics`` on ``scheduler.host:scheduler.port`` (loopback by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.errors import CoreError
from core.observability import metrics

log = logging.getLogger("core.observability")

METRICS_PATH = "/metrics"


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
    """The scheduler's HTTP listener; :meth:`start`, :attr:`url`, :meth:`stop`."""

    def __init__(self, runtime: Any) -> None:
        from core.gateway.app import health_route

        self.runtime = runtime
        self.ready = False
        self.url = ""
        routes = [health_route(runtime), Route("/_ready", self._ready, methods=["GET"])]
        if metrics.enabled():
            routes.append(metrics_route(runtime.store))
        self.app = Starlette(routes=routes)
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def _ready(self, request: Request) -> Response:
        if not self.ready:
            return JSONResponse({"status": "starting or stopping"}, status_code=503)
        return JSONResponse({"status": "ready", "node": self.runtime.node_id})

    async def start(self) -> None:
        """Listen on ``scheduler.host:scheduler.port``; :class:`CoreError` if that fails."""
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
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name="scheduler listener")
        while not server.started:
            if self._task.done():
                self._task.result()
                raise CoreError(f"the scheduler's listener did not start on {host}:{bound}")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop listening."""
        self.ready = False
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait({self._task})
        self._server = None
