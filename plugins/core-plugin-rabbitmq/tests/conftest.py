"""Each test gets its own exchange; the queues of every test are deleted when the session ends.

The broker is ``CORE_TEST_RABBITMQ`` (default ``amqp://guest:guest@127.0.0.1:5672/``). No test
is skipped when it is down: the fixtures fail, loudly. That broker is shared: no test stops it.
The outage tests run on :func:`private_rabbitmq`, a RabbitMQ node of the session's own (its own
node name, port, distribution port, data and log directories and Erlang cookie), started once
on first use and stopped when the session ends; :func:`rabbitmq_stopped` stops and starts that
node's RabbitMQ application.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import aio_pika
import pytest
from core.testing import ServerError, ServerProcess, free_port

SERVER = os.environ.get("CORE_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672/")
#: RabbitMQ's own scripts (Debian's wrappers in /usr/sbin would run them as the rabbitmq user).
SCRIPTS = Path("/usr/lib/rabbitmq/bin")
_EXCHANGES: list[str] = []


def _script(name: str) -> str:
    direct = SCRIPTS / name
    return str(direct) if direct.exists() else shutil.which(name) or name


class RabbitNode:
    """A RabbitMQ node of the tests' own, under ``directory``: a ``rabbitmq-server`` child
    process in the foreground, named ``core-test-<random>@localhost``, listening on a free
    port of 127.0.0.1 (AMQP and Erlang distribution), with a private cookie. It registers
    with the machine's epmd, which is shared by every Erlang node and left running."""

    def __init__(self, directory: Path) -> None:
        self.name = f"core-test-{secrets.token_hex(4)}@localhost"
        self.port = free_port()
        dist_port = free_port()
        while dist_port == self.port:
            dist_port = free_port()
        home = directory / "home"
        home.mkdir(parents=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)
        config = directory / "rabbitmq.conf"
        config.write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        (directory / "enabled_plugins").write_text("[].\n")
        (directory / "rabbitmq-env.conf").write_text("")
        self.env = {
            **os.environ,
            "HOME": str(home),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(directory / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(directory / "rabbitmq.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        self.server = ServerProcess([_script("rabbitmq-server")], self.port, log=directory / "rabbitmq-server.log",
                                    env=self.env, start_timeout=120.0)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def ctl(self, *args: str) -> None:
        """``rabbitmqctl -n <this node> args…``."""
        done = subprocess.run([_script("rabbitmqctl"), "-n", self.name, *args], env=self.env,
                              capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise ServerError(f"rabbitmqctl -n {self.name} {' '.join(args)} exited {done.returncode}: "
                              f"{done.stdout[-1500:]}{done.stderr[-1500:]}")

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """Stop this node's RabbitMQ application (its listener closes) for the block; always
        start it again."""
        self.ctl("stop_app")
        try:
            yield
        finally:
            self.ctl("start_app")


@pytest.fixture(scope="session")
def private_rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    """The session's own RabbitMQ node (started on first use, stopped at the end, pass or fail)."""
    node = RabbitNode(tmp_path_factory.mktemp("rabbitmq"))
    with node.server:
        yield node


@pytest.fixture
def rabbitmq_stopped(private_rabbitmq: RabbitNode) -> Callable[[], AbstractContextManager[None]]:
    """``with rabbitmq_stopped():`` stops the private node's application, then starts it again."""
    return private_rabbitmq.stopped


@pytest.fixture
def private_rabbitmq_url(private_rabbitmq: RabbitNode) -> str:
    """An adapter URL on the private node, with an exchange of this test alone."""
    return f"{private_rabbitmq.url}?exchange=t_{secrets.token_hex(5)}&reconnect_wait=0.2"


@pytest.fixture
def exchange() -> str:
    """An exchange name of this test alone (its queues are named after it)."""
    name = f"t_{secrets.token_hex(5)}"
    _EXCHANGES.append(name)
    return name


@pytest.fixture
def rabbitmq_url(exchange: str) -> str:
    """The adapter URL for this test's exchange."""
    return f"{SERVER}?exchange={exchange}&reconnect_wait=0.2"


@pytest.fixture(scope="session", autouse=True)
def _delete_test_queues() -> Iterator[None]:
    yield
    if _EXCHANGES:
        asyncio.run(_delete(_EXCHANGES))


async def _delete(exchanges: list[str]) -> None:
    listed = subprocess.run(
        ["rabbitmqctl", "list_queues", "--quiet", "--no-table-headers", "name"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.split()
    connection = await aio_pika.connect(SERVER)
    async with connection:
        channel = await connection.channel()
        for queue in listed:
            if queue.split(":", 1)[0] in exchanges:
                await channel.queue_delete(queue)
        for name in exchanges:
            await channel.exchange_delete(name)
