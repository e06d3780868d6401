"""Helpers of the chaos tests (``nox -s chaos``): a scheduler project whose load is steered by a
file, its store (SQLite in the project, or a fresh PostgreSQL database: :func:`store_url`) read
straight from the test, and the figures a test measured, printed in pytest's terminal summary
(and at once, with ``-s``).

PostgreSQL is the shared server on 127.0.0.1:5432 (trust auth, as the machine and CI run it);
each test gets a database of its own, dropped after it. The chaos session installs the
``core-plugin-postgres`` distribution for it. An outage test stops a server of its own instead:
:class:`PrivatePostgres`, a cluster it creates (``initdb``) on a free port in a temporary
directory, and a private ``nats-server`` (:func:`private_nats`)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from core.builtin.sqlite.store import SQLiteStore
from core.testing import ServerProcess, free_port
from core.testing.processes import Deployment
from hookspecs import Job, Page, Status, Store, WhereJob

#: The PostgreSQL server whose fresh databases the PostgreSQL cases use.
POSTGRES = "postgresql://postgres@127.0.0.1:5432"

#: A scheduled batch action ``warehouse.export`` (``@every 1s``) whose load appends a line per
#: load to ``loads.log`` (``<time> start|done <job ids>``) and does what the file ``mode``
#: says: ``ok``; ``slow <s>`` (awaits); ``poison`` (raises for a queue holding the event
#: ``n == 3``); ``block <s>`` (``time.sleep``: blocks the event loop, first load only).
APP = """
import asyncio
import time
from pathlib import Path
from hookspecs import Action, Destination, Schedule, hookimpl

HERE = Path(__file__).parent

def note(what, queue):
    with (HERE / "loads.log").open("a") as out:
        out.write(f"{time.time():.6f} {what} {','.join(job.id for job in queue.jobs)}\\n")

class Export(Action):
    name = "export"
    schedule = Schedule(interval="@every 1s", max_retries=MAX_RETRIES)

    async def load(self, toolkit, queue):
        note("start", queue)
        mode, *arg = (HERE / "mode").read_text().split()
        if mode == "slow":
            await asyncio.sleep(float(arg[0]))
        elif mode == "poison" and any(job.data["n"] == 3 for job in queue.jobs):
            raise ValueError("poison event")
        elif mode == "block" and not (HERE / "blocked").exists():
            (HERE / "blocked").write_text("")
            time.sleep(float(arg[0]))
        note("done", queue)

@hookimpl
def core_register_destinations():
    return [Destination("warehouse", [Export()])]
"""

#: ``POST /webhooks/orders`` feeding two scheduled actions (``warehouse.export`` and ``.audit``, due
#: hourly): every event stored has two jobs. For the gateway's tests; no broker needed.
INGEST_APP = """
from hookspecs import Action, Destination, Flow, HttpTrigger, Schedule, Source, hookimpl

class Export(Action):
    name = "export"
    schedule = Schedule(interval="@every 1h")

    async def load(self, toolkit, queue):
        pass

class Audit(Export):
    name = "audit"

@hookimpl
def core_register_sources():
    return [Source("shop", [HttpTrigger("orders", "/webhooks/orders")])]

@hookimpl
def core_register_destinations():
    return [Destination("warehouse", [Export(), Audit()])]

@hookimpl
def core_register_flows():
    return [Flow("orders", source="shop", actions=["warehouse.export", "warehouse.audit"])]
"""


def deployment(
    directory: Path, mode: str, *, max_retries: int = 3, store: str = "sqlite:///core.db", **scheduler: Any
) -> Deployment:
    """A project in ``directory`` running :data:`APP` on ``store``, no broker, supervisor or wanderer."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mode").write_text(mode)
    settings = {"poll_seconds": 0.2, "lease_seconds": 30, "load_timeout": 20, "grace_seconds": 5, **scheduler}
    return Deployment(directory, APP.replace("MAX_RETRIES", str(max_retries)), store=store, pubsub="",
                      settings={"supervisor": "", "wanderer": "", "scheduler": settings})


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A store URL for the test's project: SQLite in ``tmp_path``, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'core.db'}"
        return
    async with postgres_database() as url:
        yield url


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """The URL of a fresh database on :data:`POSTGRES`, dropped (its sessions ended) after."""
    import asyncpg

    name = f"core_chaos_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(f"{POSTGRES}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"{POSTGRES}/{name}"
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def open_store(where: Path | str) -> Store:
    """The project's store (a project directory: its SQLite file; or a URL), opened from the test."""
    url = f"sqlite:///{where / 'core.db'}" if isinstance(where, Path) else where
    store: Store
    if url.startswith("postgresql:"):
        from core_plugin_postgres.store import PostgresStore

        store = PostgresStore(url)
    else:
        store = SQLiteStore(url)
    await store.open()
    return store


async def jobs_of(store: Store, *statuses: Status) -> list[Job]:
    """Every job, or those in ``statuses``."""
    where = WhereJob(page=Page(limit=1_000_000), status_in=list(statuses) if statuses else None)
    return await store.find_jobs(where)


def loads(directory: Path, what: str = "start") -> list[tuple[float, list[str]]]:
    """The loads noted in ``loads.log``: (time, job ids) of each ``start`` (or ``done``) line."""
    path = directory / "loads.log"
    found = []
    for line in path.read_text().splitlines() if path.exists() else []:
        parts = line.split()
        if len(parts) == 3 and parts[1] == what:
            found.append((float(parts[0]), parts[2].split(",")))
    return found


class _Summary:
    """A pytest plugin, registered by the first :func:`figures` fixture: the figures section."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.lines:
            terminalreporter.section("chaos figures")
            for line in self.lines:
                terminalreporter.write_line(line)


@pytest.fixture()
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """``figures("what: value")`` prints a measured figure now and in the terminal summary."""
    manager = request.config.pluginmanager
    summary = manager.get_plugin("core-chaos-figures")
    if summary is None:
        summary = _Summary()
        manager.register(summary, "core-chaos-figures")
    name = request.node.name

    def record(line: str) -> None:
        summary.lines.append(f"{name}: {line}")
        print(f"[chaos] {name}: {line}")

    return record


#: Client threads an :class:`Ingest` posts from at once.
CLIENTS = 4


class Answer(NamedTuple):
    """One answer an :class:`Ingest` client got: when its request was sent and answered (``time.time()``)."""

    sent: float
    answered: float
    status: int
    body: str


class Ingest:
    """Clients posting ``{"data": {"n": …}}`` to ``POST /webhooks/orders`` of the gateway at
    ``url`` until told to stop (``url = ""`` pauses them), recording every ``202``'s event id in
    ``acknowledged`` (its answer in ``accepted``, at the same index) and every other answer in
    ``refused``. A request the gateway died under (or that timed out) is neither. Each client
    waits ``pause`` seconds between posts."""

    def __init__(self, timeout: float = 5, pause: float = 0) -> None:
        self.url = ""
        self.acknowledged: list[str] = []
        self.refused: list[Answer] = []
        self.accepted: list[Answer] = []
        self.sent = 0
        self._timeout = timeout
        self._pause = pause
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._post, daemon=True) for _ in range(CLIENTS)]

    def __enter__(self) -> Ingest:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def more(self, count: int) -> Callable[[], bool]:
        """A condition: ``count`` more events acknowledged than now."""
        target = len(self.acknowledged) + count
        return lambda: len(self.acknowledged) >= target

    def _post(self) -> None:
        with httpx.Client(timeout=self._timeout) as client:
            while not self._stop.is_set():
                url = self.url
                if not url:
                    self._stop.wait(0.01)
                    continue
                with self._lock:
                    self.sent += 1
                    n = self.sent
                sent = time.time()
                try:
                    response = client.post(f"{url}/webhooks/orders", json={"data": {"n": n}})
                except httpx.HTTPError:
                    continue  # the gateway died under the request: not acknowledged
                answer = Answer(sent, time.time(), response.status_code, response.text)
                with self._lock:
                    if response.status_code == 202:
                        self.acknowledged.append(response.json()["event_ids"][0])
                        self.accepted.append(answer)
                    else:
                        self.refused.append(answer)
                self._stop.wait(self._pause if response.status_code == 202 else max(self._pause, 0.05))


#: Where Debian's PostgreSQL puts ``initdb`` and ``postgres`` (not on ``PATH``), newest first.
_PG_BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _pg_binary(name: str) -> str:
    found = shutil.which(name) or next((str(d / name) for d in _PG_BINARIES if (d / name).exists()), None)
    if found is None:
        pytest.fail(f"{name} not found: install PostgreSQL's server package (the chaos session needs it)",
                    pytrace=False)
    return found


class PrivatePostgres(ServerProcess):
    """A PostgreSQL cluster of the test's own: ``initdb`` in a temporary directory, ``postgres``
    on a free port of 127.0.0.1 (trust auth), never the shared server. As root, the server runs
    as the ``postgres`` user (PostgreSQL refuses root). :meth:`stop` is a fast shutdown
    (SIGINT: sessions ended, the data kept), so :meth:`stopped` is an outage, not a loss."""

    def __init__(self) -> None:
        self.data = Path(tempfile.mkdtemp(prefix="core-chaos-pg-"))
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
            self._as = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
        port = free_port()
        subprocess.run([*self._as, _pg_binary("initdb"), "-D", str(self.data / "pg"), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=120)
        command = [*self._as, _pg_binary("postgres"), "-D", str(self.data / "pg"), "-p", str(port),
                   "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.data}",
                   "-c", "fsync=off"]
        super().__init__(command, port, log=self.data / "postgres.log")

    @property
    def url(self) -> str:
        """The URL of its database ``postgres``."""
        return f"postgresql://postgres@{self.address}/postgres"

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then the group's SIGTERM/SIGKILL if it lingers."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                pass
        super().stop()

    def remove(self) -> None:
        """Stop it and delete its directory."""
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL cluster, started; stopped and deleted after the test."""
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def private_nats() -> Iterator[ServerProcess]:
    """A ``nats-server -js`` of the test's own (a free port, its JetStream store in a temporary
    directory), started; stopped and deleted after it. The shared server is never stopped."""
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    directory = Path(tempfile.mkdtemp(prefix="core-chaos-nats-"))
    port = free_port()
    command = [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(directory / "js")]
    try:
        with ServerProcess(command, port, log=directory / "nats-server.log") as server:
            yield server
    finally:
        shutil.rmtree(directory, ignore_errors=True)
