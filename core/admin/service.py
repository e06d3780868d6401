"""Run the admin API on ``admin.host:admin.port``, on the runtime's event loop (one store).

The socket is bound before the runtime opens (:func:`listen`), so a taken port or a
non-loopback bind without tokens is reported before anything starts.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import uvicorn

from core.admin.app import build_app
from core.admin.tokens import check_bind, tokens_of
from core.config import Settings
from core.errors import CoreError
from core.observability.http import _Server


def listen(settings: Settings) -> socket.socket:
    """Bind the admin socket; :class:`CoreError` for a non-loopback bind without tokens or a taken port."""
    host, port = settings["admin.host"], settings["admin.port"]
    check_bind(host, tokens_of(settings["admin.tokens"]))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise CoreError(
            f"the admin API cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="another process may use the port: set admin.port / CORE_ADMIN_PORT (0: any free one)",
        ) from None


def url_of(sock: socket.socket, host: str) -> str:
    """``http://host:port`` of a bound socket."""
    port = sock.getsockname()[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def run_admin(
    runtime: Any,
    stop: asyncio.Event,
    *,
    sock: socket.socket | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the admin API of ``runtime`` until ``stop`` is set; ``on_ready(url)`` once it listens."""
    sock = sock or listen(runtime.settings)
    url = url_of(sock, runtime.settings["admin.host"])
    config = uvicorn.Config(
        build_app(runtime),
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if serving.done():
                serving.result()
                raise CoreError(f"the admin API did not start on {url}; see the log above")
            await asyncio.sleep(0.01)
        if on_ready is not None:
            on_ready(url)
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if serving.done():
            serving.result()
    finally:
        server.should_exit = True
        await asyncio.wait({serving})
        sock.close()
