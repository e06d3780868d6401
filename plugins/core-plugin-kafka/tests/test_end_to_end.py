"""Gateway and scheduler as separate processes (``core start gateway`` / ``core start
scheduler``) exchanging realtime jobs through Kafka, and going on while the brokers are down."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from conftest import Cluster
from core.testing.pubsub import Inbox
from hookspecs import Message

from core_plugin_kafka.pubsub import KafkaPubSub

pytestmark = pytest.mark.slow

#: One webhook, one realtime action that appends the event id of each job it loads to a file.
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
    return [Source("shop", [HttpTrigger("orders", "/webhooks/orders"), SubscriptionTrigger("feed", "orders")])]

@hookimpl
def core_register_destinations():
    return [Destination("sink", [Record()])]

@hookimpl
def core_register_flows():
    return [Flow("orders", source="shop", actions=["sink.record"])]
"""
#: The subscription trigger's consumer group (core.<source>.<trigger>) and topic.
FEED_GROUP, FEED_TOPIC = "core.shop.feed", "orders"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout}s for {what}")
        time.sleep(0.05)


def joined(pubsub: str, topic: str, group: str) -> bool:
    """True once ``group`` has its start offsets on ``topic``: a member subscribed."""
    parts = urlsplit(pubsub)
    query = dict(parse_qsl(parts.query))
    reader = Consumer({"bootstrap.servers": parts.netloc, "group.id": query["group_prefix"] + group})
    try:
        topic = query["topic_prefix"] + topic
        offsets = reader.committed([TopicPartition(topic, p) for p in range(4)], timeout=5)
        return all(tp.offset >= 0 for tp in offsets)
    finally:
        reader.close()


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
    url = f"http://127.0.0.1:{port}"
    try:
        for service in ("scheduler", "gateway"):
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "core", "start", service], cwd=directory, env=env,
                stdout=(directory / f"{service}.log").open("w"), stderr=subprocess.STDOUT,
            ))
            if service == "scheduler":
                wait_until(lambda: _alive(processes, directory) and joined(pubsub, "core.jobs", "core.scheduler"),
                           "the scheduler to join its consumer group")
        wait_until(lambda: _alive(processes, directory) and _healthy(url)
                   and joined(pubsub, FEED_TOPIC, FEED_GROUP), "the gateway to answer and read its feed")
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


def _alive(processes: list[subprocess.Popen[bytes]], directory: Path) -> bool:
    if any(process.poll() is not None for process in processes):
        logs = "\n".join(p.read_text() for p in directory.glob("*.log"))
        raise AssertionError(f"a service exited early:\n{logs}")
    return True


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/_health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


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


def test_realtime_jobs_go_from_the_gateway_process_to_the_scheduler_process(tmp_path: Path, kafka_url: str) -> None:
    # The poll of realtime actions runs once an hour here: only the broker can bring the jobs.
    with services(tmp_path, kafka_url, poll_seconds=3600) as url:
        sent = post_orders(url, 20)
        wait_until(lambda: loaded(tmp_path) >= sent, "the scheduler to load every job through Kafka")


def test_while_the_brokers_are_down_the_gateway_answers_202_and_the_schedule_delivers(
    tmp_path: Path, make_url: Callable[..., str], private_cluster: Cluster
) -> None:
    pubsub = make_url(private_cluster.bootstrap, publish_timeout_ms=1500)
    with services(tmp_path, pubsub, poll_seconds=0.5) as url:
        sent = post_orders(url, 5)
        wait_until(lambda: loaded(tmp_path) >= sent, "the jobs sent before the outage")
        private_cluster.down()
        try:
            during = post_orders(url, 10)
            wait_until(lambda: loaded(tmp_path) >= during, "the schedule to deliver the outage's jobs")
        finally:
            private_cluster.up()
        after = post_orders(url, 5)
        wait_until(lambda: loaded(tmp_path) >= after, "the jobs sent after the brokers came back")
    lines = (tmp_path / "loaded.txt").read_text().split()
    assert set(lines) == sent | during | after


async def test_a_subscription_trigger_turns_records_into_events_and_dead_letters_the_bad_one(
    tmp_path: Path, make_url: Callable[..., str], bootstrap: str
) -> None:
    pubsub = make_url(bootstrap, max_redeliveries=1, redelivery_delay_ms=10)
    feed = KafkaPubSub(pubsub)
    await feed.open()
    inbox = Inbox(timeout=30.0, quiet=0.5)
    try:
        inbox.follow(await feed.subscribe(f"{FEED_TOPIC}.dlq", group="inspect"), "dlq")
        with services(tmp_path, pubsub, poll_seconds=3600):
            good = [Message(json.dumps({"data": {"order": n}}).encode()) for n in range(3)]
            await feed.publish(FEED_TOPIC, [*good, Message(b"not json", key="bad")])
            [(_, letter)] = await inbox.take(1)
            assert (letter.message.body, letter.message.key) == (b"not json", "bad")
            assert letter.message.attributes["core-dlq-group"] == feed.options.group(FEED_GROUP)
            await letter.ack()
            await asyncio.to_thread(wait_until, lambda: len(loaded(tmp_path)) >= 3, "the feed's events to be loaded")
        assert len(loaded(tmp_path)) == 3
    finally:
        await inbox.close()
        await feed.close()
