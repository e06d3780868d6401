"""Fixtures: a Kafka-protocol broker (the librdkafka mock cluster) and per-test URLs.

The shared cluster is the one ``.ci/services.py kafka`` started (its bootstrap list is in
``$CORE_KAFKA_BOOTSTRAP_FILE``, default ``.ci/.kafka-bootstrap``); when that file is missing
or stale, the session starts its own holder process, so ``pytest`` alone works. Every holder a
test starts is stopped when its fixture ends, pass or fail (and when the interpreter exits, as a
last resort); the one ``.ci/services.py`` started is stopped by the nox session that asked for it.
"""

from __future__ import annotations

import atexit
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Consumer

HERE = Path(__file__).resolve().parent
HOLDER = HERE / "mock_cluster.py"
#: Longest wait for a holder process to start or stop, or for a test's consumer to close.
WAIT_SECONDS = 30.0
BOOTSTRAP_FILE = Path(os.environ.get("CORE_KAFKA_BOOTSTRAP_FILE", HERE.parents[2] / ".ci" / ".kafka-bootstrap"))


@dataclass
class Cluster:
    """A mock cluster held by a child process; ``down()``/``up()`` inject a full outage."""

    process: subprocess.Popen[str]
    bootstrap: str

    def down(self) -> None:
        self.process.send_signal(signal.SIGUSR1)

    def up(self) -> None:
        self.process.send_signal(signal.SIGUSR2)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(WAIT_SECONDS)


def start_cluster() -> Cluster:
    """Start a holder process and read its bootstrap list from its first line of output."""
    process = subprocess.Popen([sys.executable, str(HOLDER)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], WAIT_SECONDS)
    line = process.stdout.readline().strip() if ready else ""
    if not line:
        process.kill()
        raise RuntimeError(f"{HOLDER} printed no bootstrap list within {WAIT_SECONDS:g} s "
                           f"(exit status {process.wait(WAIT_SECONDS)})")
    cluster = Cluster(process, line)
    atexit.register(cluster.stop)
    return cluster


def close_consumer(consumer: Consumer) -> None:
    """Close a test's own raw consumer, waiting at most ``WAIT_SECONDS`` (``close()`` has no
    timeout of its own; a daemon thread stuck in librdkafka cannot hold up the exit)."""
    thread = threading.Thread(target=consumer.close, name="close-test-consumer", daemon=True)
    thread.start()
    thread.join(WAIT_SECONDS)
    assert not thread.is_alive(), f"a test consumer did not close within {WAIT_SECONDS:g} s"


def _answers(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def bootstrap() -> Iterator[str]:
    """The bootstrap list of a running mock cluster shared by the session."""
    if BOOTSTRAP_FILE.is_file():
        shared = BOOTSTRAP_FILE.read_text().strip()
        if shared and _answers(shared):
            yield shared
            return
    cluster = start_cluster()
    try:
        yield cluster.bootstrap
    finally:
        cluster.stop()


@pytest.fixture
def private_cluster() -> Iterator[Cluster]:
    """A cluster of this test's own, for fault injection that must not disturb others."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


def url_for(bootstrap: str, **query: object) -> str:
    """A ``kafka://`` URL with prefixes unique to the caller, so parallel runs never collide."""
    tag = uuid.uuid4().hex[:10]
    params = {"topic_prefix": f"t{tag}.", "group_prefix": f"g{tag}.", "session_timeout_ms": 3000, **query}
    return f"kafka://{bootstrap}?" + "&".join(f"{k}={v}" for k, v in params.items())


@pytest.fixture
def kafka_url(bootstrap: str) -> str:
    """A URL on the shared cluster with this test's own topic and group prefixes."""
    return url_for(bootstrap)


@pytest.fixture
def make_url() -> Callable[..., str]:
    """``make_url(bootstrap, **query)``: a URL with fresh prefixes and the given options."""
    return url_for
