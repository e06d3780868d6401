"""End-to-end tests with real processes: a project directory, ``core start`` processes on it,
requests to the gateway, jobs read back through ``core jobs list``, and a clean stop.

A :class:`Deployment` writes ``app.py`` and ``core.toml`` into a directory, starts services
as separate processes (``deploy.start("scheduler")``, ``deploy.start("gateway")``, or
``deploy.start()`` for both in one), and stops them all with SIGTERM on exit, asserting that
each one exited 0 and said ``core: stopped``. Each process writes its output to
``<service>.log`` in the directory (a file: nothing to drain), shown when a check fails.

:data:`RECORDING_APP` is a ready-made pipeline whose realtime action appends the event id of
every job it loads to ``loaded.txt``; :meth:`Deployment.loaded` reads it back.
:data:`QUICKSTART_APP` is the path of the pipeline ``core init`` writes, for tests that run it
as a newcomer would.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest

#: Two sources feeding one realtime action ``sink.record``, which appends the event id of each
#: job it loads to ``loaded.txt`` beside the app: ``shop`` takes ``POST /webhooks/orders``;
#: ``feed`` reads the topic ``orders.external`` (trigger ``external``, so its consumer group is
#: ``core.feed.external``). Its scheduler reads realtime jobs from the group ``core.scheduler``
#: of the topic ``core.jobs``.
RECORDING_APP = """
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

#: The quickstart pipeline that ``core init`` copies into a new project (the ``shop`` source,
#: the ``warehouse`` and ``alerts`` destinations), run as it is by end-to-end tests.
QUICKSTART_APP = Path(__file__).resolve().parents[1] / "scaffold" / "quickstart" / "pipeline.py"

_BANNER = re.compile(r"^core [a-z+]+ (?:listening on (http://\S+)|running)", re.MULTILINE)
_LISTENER = re.compile(r"health and metrics on (http://\S+)")


def wait_until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Poll ``condition`` every 50 ms until it is true; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:g}s for {what}", pytrace=False)
        time.sleep(0.05)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a TOML basic string


class CoreProcess:
    """One ``core start [service]`` process of a :class:`Deployment`, output in ``log``."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.process = process
        self.log = log

    def output(self) -> str:
        """What the process printed so far (stdout and stderr)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait up to ``timeout`` s (killed after that); the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class Deployment:
    """A project in ``directory`` and the ``core start`` processes running it.

    :param app: the pipeline module's source, written to ``app.py``.
    :param store: the store URL (default: SQLite in the directory).
    :param pubsub: the pub/sub URL (``""``: none; the default ``memory://`` does not cross processes).
    :param settings: more of ``core.toml``: ``{"scheduler": {"poll_seconds": 0.5}}`` or top-level keys.
    :param env: environment variables for the processes, over the caller's minus every ``CORE_*``.
    """

    def __init__(
        self, directory: Path, app: str = RECORDING_APP, *, store: str = "sqlite:///core.db", pubsub: str = "",
        settings: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.url = ""
        #: The listener of a lone scheduler (``/_health``, ``/_ready``, ``/metrics``), once started.
        self.scheduler_url = ""
        self.processes: list[CoreProcess] = []
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")}
        # A lone scheduler listens on a free port, unless the test says otherwise.
        self._env.update({"PYTHONUNBUFFERED": "1", "CORE_SCHEDULER_PORT": "0", "CORE_ADMIN_PORT": "0", **(env or {})})
        self._client: httpx.Client | None = None
        top = {"app": "app.py", "store": store, "pubsub": pubsub}
        tables: dict[str, Mapping[str, Any]] = {}
        for key, value in (settings or {}).items():
            if isinstance(value, Mapping):
                tables[key] = value
            else:
                top[key] = value
        lines = [f"{key} = {_toml(value)}" for key, value in top.items()]
        for name, table in tables.items():
            lines += [f"[{name}]", *(f"{key} = {_toml(value)}" for key, value in table.items())]
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "app.py").write_text(app)
        (directory / "core.toml").write_text("\n".join(lines) + "\n")

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop(check=kind is None)

    def start(self, *services: str, timeout: float = 60.0) -> CoreProcess:
        """Start ``core start [services]`` and wait for its banner (the gateway's gives ``url``).

        Start the services one after the other: two processes creating a new SQLite store at
        the same moment may find it locked. The gateway listens on a free port.
        """
        name = "+".join(services) or "core"
        log = self.directory / f"{name}.log"
        command = [sys.executable, "-m", "core", "start", *services]
        if not services or "gateway" in services:
            command += ["--port", "0"]
        with log.open("wb") as out:
            process = subprocess.Popen(command, cwd=self.directory, env=self._env, stdout=out, stderr=subprocess.STDOUT)
        started = CoreProcess(name, process, log)
        self.processes.append(started)
        self.wait_until(lambda: _BANNER.search(started.output()), f"{name} to start", timeout)
        banner = _BANNER.search(started.output())
        if banner and banner.group(1):
            self.url = banner.group(1)
        listener = _LISTENER.search(started.output())
        if listener:
            self.scheduler_url = listener.group(1)
        return started

    def start_apart(self, scheduler_ready: Callable[[], object] | None = None, what: str = "") -> None:
        """Start the scheduler, wait for ``scheduler_ready`` (say, its consumer group exists on the
        broker, so that the first jobs published are kept for it), then start the gateway."""
        self.start("scheduler")
        if scheduler_ready is not None:
            self.wait_until(scheduler_ready, what or "the scheduler to be ready")
        self.start("gateway")

    def logs(self) -> str:
        """The output of every process, each under its name."""
        return "\n".join(f"--- {p.name}.log\n{p.output()}" for p in self.processes)

    def check_alive(self) -> None:
        """Fail, with the logs, if a process has exited."""
        for process in self.processes:
            if process.process.poll() is not None:
                pytest.fail(f"{process.name} exited early with status {process.process.returncode}:\n{self.logs()}",
                            pytrace=False)

    def wait_until(self, condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
        """:func:`wait_until`, failing at once (with the logs) if a process exits meanwhile."""

        def alive_and() -> object:
            self.check_alive()
            return condition()

        try:
            wait_until(alive_and, what, timeout)
        except pytest.fail.Exception:
            if any(p.process.poll() is not None for p in self.processes):
                raise
            pytest.fail(f"waited {timeout:g}s for {what}:\n{self.logs()}", pytrace=False)

    def post(self, path: str, *documents: Any) -> list[str]:
        """POST each JSON document to the gateway's ``path``; each must get ``202``. The event ids."""
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=10)
        ids: list[str] = []
        for document in documents:
            response = self._client.post(path, json=document)
            assert response.status_code == 202, f"{path}: {response.status_code} {response.text}"
            ids.extend(response.json()["event_ids"])
        return ids

    def check_one_key_stores_one_event(self, *, gateways: int = 2, posts: int = 1000,
                                       path: str = "/webhooks/orders") -> None:
        """Start ``gateways`` gateway processes on this store and send ``posts`` concurrent
        POSTs with one ``Idempotency-Key``, spread over them: each must answer ``202`` with the
        same event id, and the store must hold exactly one event (with :data:`RECORDING_APP`:
        one job)."""
        urls = [self.start("gateway") and self.url for _ in range(gateways)]
        key = f"one-key-{os.getpid()}-{time.monotonic_ns()}"

        async def storm() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=posts, max_keepalive_connections=posts)
            async with httpx.AsyncClient(timeout=60, limits=limits) as client:
                return await asyncio.gather(*(
                    client.post(f"{urls[i % gateways]}{path}", json={"data": {"order": 1}},
                                headers={"Idempotency-Key": key})
                    for i in range(posts)))

        answers = asyncio.run(storm())
        codes = sorted({answer.status_code for answer in answers})
        assert codes == [202], f"answers {codes}: {[a.text for a in answers if a.status_code != 202][:3]}"
        ids = {answer.json()["event_id"] for answer in answers}
        assert len(ids) == 1, f"{len(ids)} different event ids answered for one key"
        replayed = sum(answer.headers.get("idempotent-replayed") == "true" for answer in answers)
        assert replayed == posts - 1, f"{replayed} answers were replays, not {posts - 1}"
        stored = {job["event_id"] for job in self.jobs()}
        assert stored == ids, f"the store holds events {sorted(stored)[:5]}, not the one answered {ids}"

    def jobs(
        self, *, event: str | None = None, status: str | None = None, limit: int = 100_000
    ) -> list[dict[str, Any]]:
        """The jobs in the store (``core jobs list --json``), optionally of one event or status."""
        args = ["--limit", str(limit)]
        args += ["--event", event] if event else []
        args += ["--status", status] if status else []
        found: list[dict[str, Any]] = json.loads(self.core("jobs", "list", "--json", *args))
        return found

    def wait_for_status(self, event: str, status: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait until every job of ``event`` (one at least) has ``status``; those jobs."""
        found: list[dict[str, Any]] = []

        def reached() -> bool:
            found[:] = self.jobs(event=event)
            return bool(found) and all(job["status"] == status for job in found)

        self.wait_until(reached, f"the jobs of event {event} to be {status}", timeout)
        return found

    def core(self, *args: str) -> str:
        """Run ``core ARGS`` in the project directory; its output (fails unless it exits 0)."""
        done = subprocess.run([sys.executable, "-m", "core", *args], cwd=self.directory, env=self._env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"core {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
        return done.stdout

    def loaded(self) -> list[str]:
        """With :data:`RECORDING_APP`: the event id of each job ``sink.record`` loaded, in order."""
        path = self.directory / "loaded.txt"
        return path.read_text().split() if path.exists() else []

    def stop(self, check: bool = True) -> None:
        """SIGTERM every process, the last started first; with ``check``, each must exit 0, stopped."""
        if self._client is not None:
            self._client.close()
            self._client = None
        statuses = [(process, process.stop()) for process in reversed(self.processes)]
        if check:
            for process, status in statuses:
                assert status == 0 and "core: stopped" in process.output(), (
                    f"{process.name} did not stop cleanly (exit status {status}):\n{self.logs()}"
                )
        self.processes = []

