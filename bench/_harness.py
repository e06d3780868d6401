"""The benches' shared harness: interleaved runs, raw baselines, the figures' one format.

Every bench compares core with a baseline taken in the same run: the two are run in turn
(A B A B ..., :func:`interleave`), each figure is the median of its runs, and
:func:`report` prints core's figure, the baseline's, their ratio and the load average, so a
figure taken on a busy shared machine still says something. The raw baselines write the
same rows as core with the driver alone (:mod:`sqlite3` here, asyncpg for PostgreSQL): per
event the event, its job, the job's first transition and its ``job_state`` summary row; per
delivered batch the claim (``job_state`` update + ``executing`` transitions) and the result
(``succeeded`` transitions + ``job_state`` update), one transaction each.

Benches never import the test kit (``core.testing``) or ``tests/``: what they need is here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from hookspecs import new_id

SERVER = os.environ.get("CORE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")

#: The payload every bench sends: one order event.
EVENT = {"name": "order.created", "context": {"ip": "127.0.0.1", "user_agent": "bench"},
         "data": {"order": 42, "total": 99.5, "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}]}}


# -- figures -----------------------------------------------------------------------------------

def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}/{fifteen:.2f} on {os.cpu_count()} cores"


def peak_rss_mb(*, children: bool = False) -> float:
    """Peak resident set size (MiB) of this process, or of its waited-for children."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def interleave_all(runs: dict[str, Callable[[], float]], rounds: int = 3) -> dict[str, list[float]]:
    """Run each of ``runs`` in turn, ``rounds`` times (A B A B ...); every figure of each."""
    figures: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            figures[name].append(run())
    return figures


def interleave(runs: dict[str, Callable[[], float]], rounds: int = 3) -> dict[str, float]:
    """Run each of ``runs`` in turn, ``rounds`` times (A B A B ...); the median of each."""
    return {name: statistics.median(values) for name, values in interleave_all(runs, rounds).items()}


def spread(values: list[float]) -> str:
    """The median of ``values`` with their range and count, e.g. ``9,120 (8,800-9,400, 5 runs)``."""
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f}, {len(values)} runs)"


#: Every figure :func:`report` printed, for a summary or a plot.
REPORTED: list[dict[str, Any]] = []


def report(label: str, core: float, baseline: float, unit: str, baseline_name: str = "raw",
           target: float | None = None) -> float:
    """Print core's figure beside the baseline's, the ratio and the load; return the ratio."""
    ratio = core / baseline if baseline else 0.0
    goal = "" if target is None else f"  target >= {target:.2f}x {'met' if ratio >= target else 'NOT met'}"
    print(f"{label:<38} core {core:>10,.0f} {unit}  {baseline_name} {baseline:>10,.0f} {unit}  "
          f"ratio {ratio:.2f}x{goal}  ({load_average()})", flush=True)
    REPORTED.append({"label": label, "core": core, "baseline": baseline, "unit": unit, "ratio": ratio})
    return ratio


class Clock:
    """Wall and CPU seconds since it was made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def elapsed(self) -> float:
        return time.perf_counter() - self.wall

    def cpu_used(self) -> float:
        return time.process_time() - self.cpu


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Peak resident set size (MiB) of a running process (Linux ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def event_loop_factory() -> Any:
    """The event loop ``core start`` uses: uvloop when installed."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


# -- processes ---------------------------------------------------------------------------------

def start_server(command: list[str], directory: Path, env: dict[str, str],
                 ready: str = r"listening on (http://\S+)") -> tuple[subprocess.Popen[str], str]:
    """Start a server whose first line matches ``ready`` (default: ``listening on http://...``);
    its process and the URL the pattern's group found."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")} | env
    log = (directory / f"server-{secrets.token_hex(2)}.log").open("w")
    process = subprocess.Popen(command, cwd=directory, env=clean, text=True, stdout=subprocess.PIPE, stderr=log)
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(ready, line)
    if not found:
        process.kill()
        raise SystemExit(f"{command} did not start:\n{line}{Path(log.name).read_text()}")
    return process, found.group(1)


def start_gateway(directory: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """``core start gateway`` on the project in ``directory`` (a free port)."""
    return start_server([sys.executable, "-m", "core", "start", "gateway", "--port", "0"], directory, env)


def start_scheduler(directory: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """``core start scheduler`` on the project in ``directory`` (its listener on a free port)."""
    process, _ = start_server([sys.executable, "-m", "core", "start", "scheduler"], directory,
                              env | {"CORE_SCHEDULER_PORT": "0"}, ready=r"metrics on (http://\S+)")
    return process


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- PostgreSQL --------------------------------------------------------------------------------

async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(SERVER)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def scratch_database(prefix: str = "core_bench") -> Iterator[str]:
    """The URL of a new database on :data:`SERVER`, dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    parts = urlsplit(SERVER)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- raw SQLite baselines ----------------------------------------------------------------------

def create_store_file(path: Path) -> None:
    """A SQLite file with core's tables and indexes (opened and closed once by core's store)."""
    from core.builtin.sqlite.store import SQLiteStore

    async def create() -> None:
        store = SQLiteStore(f"sqlite:///{path}")
        await store.open()
        await store.close()

    asyncio.run(create())


def raw_connection(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection with core's settings (WAL, synchronous NORMAL, own BEGIN)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA busy_timeout = 5000")
    return db


def _text(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(" ", "microseconds")


_NO_DUE = "1970-01-01 00:00:00.000000"


def raw_insert(db: sqlite3.Connection, events: list[dict[str, Any]], destination: str = "warehouse",
               action: str = "export") -> None:
    """One transaction of ``events`` (dicts like :data:`EVENT`), each with one job, its first
    transition and its summary row: the rows core's ``insert_queue`` writes."""
    now = _text(datetime.now(UTC))
    event_rows, job_rows, transition_rows, state_rows = [], [], [], []
    seq = db.execute("SELECT coalesce(max(seq), 0) FROM jobs").fetchone()[0]
    for event in events:
        event_id, job_id = new_id(), new_id()
        context, data = orjson.dumps(event["context"]).decode(), orjson.dumps(event["data"]).decode()
        seq += 1
        event_rows.append((event_id, "bench", event["name"], context, data, now, None, now))
        job_rows.append((seq, job_id, event_id, destination, action, context, data, None, None, now, None, None))
        transition_rows.append((new_id(), seq, job_id, event_id, 0, None, "acknowledged", None, None, now,
                                None, None))
        state_rows.append((seq, destination, action, "acknowledged", 0, None, _NO_DUE, None, None))
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT INTO events (id, source, name, context, data, received_at, sent_at, ingested_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", event_rows)
    db.executemany("INSERT INTO jobs (seq, id, event_id, destination, action, context, data, version, "
                   "parent_job_id, created_at, idempotency_key, ordering_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                   "?, ?, ?)", job_rows)
    db.executemany(_TRANSITION_INSERT, transition_rows)
    db.executemany("INSERT INTO job_state (job_seq, destination, action, status, attempt, due_at, ready_at, "
                   "lease_owner, lease_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", state_rows)
    db.execute("COMMIT")


_TRANSITION_INSERT = ("INSERT INTO transitions (id, job_seq, job_id, event_id, attempt, state_before, state_after, "
                      "error, due_at, created_at, lease_owner, lease_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                      "?, ?, ?)")
_CLAIM = ("SELECT s.job_seq, j.id, j.event_id, j.context, j.data, s.status, s.attempt FROM job_state AS s "
          "JOIN jobs AS j ON j.seq = s.job_seq WHERE s.destination = ? AND s.action = ? "
          "AND s.status IN ('acknowledged', 'awaiting', 'failed') AND s.ready_at <= ? "
          "ORDER BY s.ready_at, s.job_seq LIMIT ?")


def raw_claim_and_result(db: sqlite3.Connection, destination: str, action: str, batch: int) -> int:
    """Claim up to ``batch`` due jobs of ``action`` (one transaction: select, update, insert the
    ``executing`` transitions; JSON decoded as a worker would), then record them ``succeeded``
    (one transaction: insert transitions, update summaries). Returns the jobs claimed."""
    now = datetime.now(UTC)
    stamp, expires = _text(now), _text(now + timedelta(seconds=300))
    db.execute("BEGIN IMMEDIATE")
    found = db.execute(_CLAIM, (destination, action, stamp, batch)).fetchall()
    if not found:
        db.execute("COMMIT")
        return 0
    jobs = [(seq, job_id, event_id, orjson.loads(context), orjson.loads(data), attempt + 1)
            for seq, job_id, event_id, context, data, _status, attempt in found]
    seqs = [job[0] for job in jobs]
    db.execute(f"UPDATE job_state SET status = 'executing', attempt = attempt + 1, due_at = NULL, ready_at = ?, "
               f"lease_owner = 'raw', lease_expires_at = ? WHERE job_seq IN ({', '.join('?' * len(seqs))})",
               (_NO_DUE, expires, *seqs))
    db.executemany(_TRANSITION_INSERT, [
        (new_id(), seq, job_id, event_id, attempt, status, "executing", None, None, stamp, "raw", expires)
        for (seq, job_id, event_id, _c, _d, attempt), (*_, status, _a) in zip(jobs, found, strict=True)
    ])
    db.execute("COMMIT")
    done = _text(datetime.now(UTC))
    db.execute("BEGIN IMMEDIATE")
    db.executemany(_TRANSITION_INSERT, [
        (new_id(), seq, job_id, event_id, attempt, "executing", "succeeded", None, None, done, None, None)
        for seq, job_id, event_id, _c, _d, attempt in jobs
    ])
    db.executemany("UPDATE job_state SET status = 'succeeded', attempt = ?, due_at = NULL, ready_at = ?, "
                   "lease_owner = NULL, lease_expires_at = NULL WHERE job_seq = ?",
                   [(attempt, _NO_DUE, seq) for seq, _i, _e, _c, _d, attempt in jobs])
    db.execute("COMMIT")
    return len(jobs)


#: The parse-only baseline of HTTP ingest: a Starlette app that parses the JSON body and answers
#: ``202``, served by uvicorn with the gateway's settings (``core.gateway.service``).
PARSE_ONLY = """
import socket, orjson, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def ingest(request):
    orjson.loads(await request.body())
    return Response(b'{"id":"parse-only"}', status_code=202, media_type="application/json")

app = Starlette(routes=[Route("/ingest", ingest, methods=["POST"])])
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(2048)
print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, server_header=False,
                        proxy_headers=False, loop="auto", http="auto")
uvicorn.Server(config).run(sockets=[sock])
"""


def start_parse_only(directory: Path) -> tuple[subprocess.Popen[str], str]:
    """The parse-only Starlette app (:data:`PARSE_ONLY`) on a free port."""
    script = directory / "parse_only.py"
    script.write_text(PARSE_ONLY)
    return start_server([sys.executable, str(script)], directory, {})


def plot_latencies(waits_ms: list[float], path: Path, title: str) -> None:
    """A histogram of latencies (ms) as a PNG at ``path``, when matplotlib is installed (bench extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"(no plot {path.name}: pip install -e '.[bench]' for matplotlib)")
        return
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.hist(waits_ms, bins=60)
    axes.set_xlabel("commit -> load (ms)")
    axes.set_ylabel("jobs")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    print(f"plot written: {path}")


def plot_throughput(sizes: list[int], series: dict[str, list[float]], path: Path, title: str) -> None:
    """Throughput (jobs/s) against batch size, one line per series, as a PNG at ``path`` when
    matplotlib is installed (bench extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"(no plot {path.name}: pip install -e '.[bench]' for matplotlib)")
        return
    figure, axes = plt.subplots(figsize=(7, 4))
    for name, values in series.items():
        axes.plot(sizes, values, marker="o", label=name)
    axes.set_xscale("log")
    axes.set_xticks(sizes, [str(size) for size in sizes])
    axes.set_xlabel("batch size (jobs per claim)")
    axes.set_ylabel("jobs/s")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    print(f"plot written: {path}")


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 answer off a keep-alive connection: its status and body (Content-Length
    framed, as uvicorn answers), read with as little Python as the load generators can afford."""
    status = int((await reader.readline()).split(b" ", 2)[1])
    length = 0
    while (line := await reader.readline()) != b"\r\n":
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a server that cannot bind port 0 itself)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
