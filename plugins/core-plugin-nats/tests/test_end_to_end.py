"""Gateway and scheduler as separate processes (``core start gateway`` / ``core start
scheduler``) exchanging realtime jobs through NATS, and going on while NATS is down."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx
import nats
import pytest
from hookspecs import Message
from nats.js.errors import NotFoundError

from core_plugin_nats._options import NatsOptions
from core_plugin_nats.pubsub import NatsPubSub

pytestmark = pytest.mark.slow

#: A webhook and a subscription trigger (topic ``orders.external``, group ``core.feed.external``),
#: one realtime action that appends the event id of each job it loads to a file.
APP = """
from pathlib import Path
from hookspecs import Action, Destination, Flow, HttpTrigger, Schedule, Source, SubscriptionTrigger, hookimpl

LOADED = Path(__file__).parent / "loaded.txt"

class Record(Action):
    name = "record"
    schedule = Schedule(realtime=True)

    async def load(self, toolkit, queue):
        with LOADED.open("a") as out:
            out.writelines(f"{job.event_id}\\n" for job in queue.jobs)

@hookimpl
def core_register_sources():
    return [
        Source("shop", [HttpTrigger("orders", "/webhooks/orders")]),
        Source("feed", [SubscriptionTrigger("external", "orders.external")]),
    ]

@hookimpl
def core_register_destinations():
    return [Destination("sink", [Record()])]

@hookimpl
def core_register_flows():
    return [
        Flow("orders", source="shop", actions=["sink.record"]),
        Flow("feed", source="feed", actions=["sink.record"]),
    ]
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def services(directory: Path, pubsub: str, poll_seconds: float) -> Iterator[str]:
    """Write the project, run its scheduler and gateway as processes; yield the gateway's URL."""
    port = _free_port()
    (directory / "app.py").write_text(APP)
    (directory / "core.toml").write_text(
        f'app = "app.py"\nstore = "sqlite:///core.db"\npubsub = "{pubsub}"\n'
        f"[gateway]\nport = {port}\n[scheduler]\npoll_seconds = {poll_seconds}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")}
    processes: list[subprocess.Popen[bytes]] = []

    def start(service: str) -> None:
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "core", "start", service], cwd=directory, env=env,
            stdout=(directory / f"{service}.log").open("w"), stderr=subprocess.STDOUT,
        ))

    url = f"http://127.0.0.1:{port}"
    try:
        # One after the other: two processes creating a new SQLite store at once may find it locked.
        start("scheduler")
        wait_until(lambda: _running(processes, directory), "the scheduler to run")
        start("gateway")
        wait_until(lambda: _healthy(url, processes, directory), "the gateway to answer /_health")
        # The stream keeps what is published once a group exists: wait for the scheduler's.
        wait_until(lambda: _consumer_exists(pubsub, "core.jobs", "core.scheduler"), "the scheduler's consumer")
        yield url
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _running(processes: list[subprocess.Popen[bytes]], directory: Path) -> bool:
    for process in processes:
        if process.poll() is not None:
            logs = "\n".join(p.read_text() for p in directory.glob("*.log"))
            raise AssertionError(f"a service exited early:\n{logs}")
    return "scheduler running" in (directory / "scheduler.log").read_text()


def _healthy(url: str, processes: list[subprocess.Popen[bytes]], directory: Path) -> bool:
    _running(processes, directory)
    try:
        return httpx.get(f"{url}/_health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _consumer_exists(pubsub: str, topic: str, group: str) -> bool:
    """Whether the durable consumer of ``group`` on ``topic`` exists."""
    options = NatsOptions.parse(pubsub, {})

    async def check() -> bool:
        nc = await nats.connect(list(options.servers))
        try:
            await nc.jetstream().consumer_info(options.stream, options.durable(topic, group))
        except NotFoundError:
            return False
        finally:
            await nc.close()
        return True

    return asyncio.run(check())


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout}s for {what}")
        time.sleep(0.05)


def post_orders(url: str, count: int) -> set[str]:
    """POST ``count`` orders; every one must be answered 202. Returns their event ids."""
    ids = set()
    with httpx.Client(base_url=url, timeout=10) as client:
        for n in range(count):
            response = client.post("/webhooks/orders", json={"context": {}, "data": {"order": n}})
            assert response.status_code == 202, response.text
            ids.update(response.json()["event_ids"])
    return ids


def loaded(directory: Path) -> set[str]:
    path = directory / "loaded.txt"
    return set(path.read_text().split()) if path.exists() else set()


def test_realtime_jobs_go_from_the_gateway_process_to_the_scheduler_process(tmp_path: Path, nats_url: str) -> None:
    # The poll of realtime actions runs once an hour here: only the broker can bring the jobs.
    with services(tmp_path, nats_url, poll_seconds=3600) as url:
        sent = post_orders(url, 20)
        wait_until(lambda: loaded(tmp_path) >= sent, "the scheduler to load every job through NATS")


def test_while_nats_is_down_the_gateway_answers_202_and_the_schedule_delivers(
    tmp_path: Path, nats_url: str, nats_stopped: Callable[[], AbstractContextManager[None]]
) -> None:
    with services(tmp_path, nats_url, poll_seconds=0.5) as url:
        sent = post_orders(url, 5)
        wait_until(lambda: loaded(tmp_path) >= sent, "the jobs sent before the outage")
        with nats_stopped():
            during = post_orders(url, 10)
            wait_until(lambda: loaded(tmp_path) >= during, "the schedule to deliver the outage's jobs")
        after = post_orders(url, 5)
        wait_until(lambda: loaded(tmp_path) >= after, "the jobs sent after NATS came back")
    lines = (tmp_path / "loaded.txt").read_text().split()
    assert set(lines) == sent | during | after


async def _publish(url: str, topic: str, bodies: list[bytes]) -> None:
    adapter = NatsPubSub(url)
    await adapter.open()
    try:
        await adapter.publish(topic, [Message(body) for body in bodies])
    finally:
        await adapter.close()


async def _first_dead_letter(url: str, topic: str) -> Message:
    adapter = NatsPubSub(url)
    await adapter.open()
    try:
        deliveries = aiter(await adapter.subscribe(f"dead.{topic}", group="dead-letters"))
        delivery = await asyncio.wait_for(anext(deliveries), 30)
        await delivery.ack()
        return delivery.message
    finally:
        await adapter.close()


def test_a_subscription_trigger_makes_events_and_dead_letters_what_it_cannot_read(
    tmp_path: Path, nats_url: str
) -> None:
    url = nats_url + "&max_deliveries=2"
    with services(tmp_path, url, poll_seconds=3600):
        wait_until(lambda: _consumer_exists(url, "orders.external", "core.feed.external"), "the trigger's consumer")
        good = b'{"name": "order.created", "data": {"n": 1}}'
        asyncio.run(_publish(url, "orders.external", [good, b"not json"]))
        wait_until(lambda: len(loaded(tmp_path)) == 1, "the good message's event to be loaded")
        dead = asyncio.run(_first_dead_letter(url, "orders.external"))
        assert len(loaded(tmp_path)) == 1
    assert dead.body == b"not json"
    assert (dead.attributes["Core-Dead-Topic"], dead.attributes["Core-Dead-Group"]) == (
        "orders.external", "core.feed.external"
    )
    assert "message refused" in (tmp_path / "gateway.log").read_text()
