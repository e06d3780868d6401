"""Delivery throughput of core-plugin-http to a loopback receiver: per job and batched, with and
without Standard Webhooks signing, beside a raw httpx POST loop (the baseline) in the same run.

Run: ``python bench/webhook_http.py [jobs]`` (needs core-plugin-http installed).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from core_plugin_http import WebhookDestination

from hookspecs import Event, Job, Queue, Secret, Status, Toolkit, new_id

TOOLKIT = Toolkit(logger=logging.getLogger("bench.http"), service="scheduler")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def queues(jobs: int, size: int) -> list[Queue]:
    """Queues of ``size`` executing ``hooks.post`` jobs of one event each, ``jobs`` jobs in all."""
    out = []
    now = datetime.now(UTC)
    for _ in range(jobs // size):
        event = Event(id=new_id(), source="bench", name="order", context={}, data=None, received_at=now)
        event.jobs = [Job(id=new_id(), destination="hooks", action="post", event_id=event.id, context={},
                          data={"n": n, "text": "x" * 200}, created_at=now, status=Status.EXECUTING, attempt=1)
                      for n in range(size)]
        out.append(Queue(events=[event]))
    return out


async def deliver(url: str, jobs: int, *, signed: bool, batch: bool) -> float:
    destination = WebhookDestination(
        "hooks", url=url, allow_private=True, batch=batch, secrets=Secret(env="BENCH_WHSEC") if signed else ()
    )
    await destination.init(TOOLKIT)
    loads = queues(jobs, 100 if batch else 10)
    started = time.perf_counter()
    for queue in loads:
        await destination.actions["post"].load(TOOLKIT, queue)
    elapsed = time.perf_counter() - started
    await destination.shutdown(TOOLKIT)
    return jobs / elapsed


async def raw(url: str, jobs: int) -> float:
    async with httpx.AsyncClient() as client:
        started = time.perf_counter()
        for n in range(0, jobs, 10):
            await asyncio.gather(*(client.post(url, json={"n": n + i, "text": "x" * 200}) for i in range(10)))
        return jobs / (time.perf_counter() - started)


async def main(jobs: int) -> None:
    os.environ["BENCH_WHSEC"] = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/in"
    try:
        print(f"{jobs} jobs to a loopback receiver (jobs/s)")
        print(f"  raw httpx POST loop (10 at once, baseline): {await raw(url, jobs):8.0f}")
        for batch in (False, True):
            for signed in (False, True):
                rate = await deliver(url, jobs, signed=signed, batch=batch)
                print(
                    f"  {'batched (100/request)' if batch else 'per job (10 at once)':22} "
                    f"{'signed' if signed else 'unsigned':9}: {rate:8.0f}"
                )
    finally:
        server.shutdown()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
