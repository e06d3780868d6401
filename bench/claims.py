"""Claim time as the history grows, on SQLite and on PostgreSQL (prints figures, asserts nothing).

For each store (the built-in SQLite store on a temporary file, ``core-plugin-postgres`` on a
throw-away database of ``CORE_BENCH_POSTGRES``), fills the tables with finished jobs up to each
size (default 10,000, 100,000 and 1,000,000 jobs) by batched raw inserts (the rows core writes:
event, job, its ``acknowledged``/``executing``/``succeeded`` transitions, its summary row), adds
a fresh backlog of 10,000 due jobs at each step, and times core's ``claim`` of 100 jobs (median
and p90 of ``--claims`` claims, after ``ANALYZE``). Each size's claim rate is printed beside the
smallest size's with the ratio: flat (0.8x to 1.2x) means the claim index ignores the history.

    python bench/claims.py [--sizes 10000 100000 1000000] [--claims 30] [--store sqlite postgresql] [--backlog]

``--backlog`` makes every job of the store due (a backlog that grows) instead of finished.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from _harness import EVENT, Clock, load_average, raw_connection, report, scratch_database

from hookspecs import Claim, Store, new_id

CHUNK = 20_000
BACKLOG = 10_000
_CONTEXT, _DATA = orjson.dumps(EVENT["context"]).decode(), orjson.dumps(EVENT["data"]).decode()
_NO_DUE = datetime(1970, 1, 1, tzinfo=UTC)
_FINISHED = (("acknowledged", None), ("executing", "acknowledged"), ("succeeded", "executing"))

Rows = dict[str, list[tuple[Any, ...]]]


def rows_of(seqs: range, status: str, now: datetime) -> Rows:
    """The rows core stores for one job per event at each of ``seqs``: a finished job
    (``succeeded``) gets its three transitions, a due one (``acknowledged``) its first."""
    rows: Rows = {"events": [], "jobs": [], "transitions": [], "job_state": []}
    history = _FINISHED if status == "succeeded" else _FINISHED[:1]
    attempt = 1 if status == "succeeded" else 0
    for seq in seqs:
        event_id, job_id = new_id(), new_id()
        rows["events"].append((event_id, "bench", EVENT["name"], _CONTEXT, _DATA, now, None, now))
        rows["jobs"].append((seq, job_id, event_id, "bench", "noop", _CONTEXT, _DATA, None, None, now, None, None))
        for after, before in history:
            rows["transitions"].append((new_id(), seq, job_id, event_id, attempt if before else 0, before, after,
                                        None, None, now, None, None))
        rows["job_state"].append((seq, "bench", "noop", status, attempt, None, _NO_DUE, None, None))
    return rows


_SQLITE_INSERTS = {
    "events": "INSERT INTO events (id, source, name, context, data, received_at, sent_at, ingested_at) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "jobs": "INSERT INTO jobs (seq, id, event_id, destination, action, context, data, version, parent_job_id, "
            "created_at, idempotency_key, ordering_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "transitions": "INSERT INTO transitions (id, job_seq, job_id, event_id, attempt, state_before, state_after, "
                   "error, due_at, created_at, lease_owner, lease_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                   "?, ?, ?)",
    "job_state": "INSERT INTO job_state (job_seq, destination, action, status, attempt, due_at, ready_at, "
                 "lease_owner, lease_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
}


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.replace(tzinfo=None).isoformat(" ", "microseconds")


def sqlite_fill(db: sqlite3.Connection, start: int, count: int, status: str) -> None:
    now = datetime.now(UTC)
    for offset in range(0, count, CHUNK):
        rows = rows_of(range(start + offset + 1, start + min(count, offset + CHUNK) + 1), status, now)
        db.execute("BEGIN IMMEDIATE")
        for table, records in rows.items():
            db.executemany(_SQLITE_INSERTS[table], [
                tuple(_text(v) if isinstance(v, datetime) else v for v in record) for record in records])
        db.execute("COMMIT")


async def postgres_fill(conn: Any, start: int, count: int, status: str) -> None:
    from ingest_postgres import COLUMNS

    now = datetime.now(UTC)
    for offset in range(0, count, CHUNK):
        rows = rows_of(range(start + offset + 1, start + min(count, offset + CHUNK) + 1), status, now)
        async with conn.transaction():
            for table, records in rows.items():
                await conn.copy_records_to_table(table, records=records, columns=COLUMNS[table])


async def time_claims(store: Store, claims: int) -> list[float]:
    """Milliseconds of each of ``claims`` claims of 100 jobs."""
    times = []
    for _ in range(claims):
        begin = time.perf_counter()
        jobs = await store.claim(Claim(owner="bench"), destination="bench", action="noop", limit=100,
                                 now=datetime.now(UTC))
        times.append((time.perf_counter() - begin) * 1000)
        assert len(jobs) == 100, len(jobs)
    return sorted(times)


#: Fills rows raw: ``(first seq - 1, count, status)``; then analyzes the tables.
Fill = Callable[[int, int, str], Awaitable[None]]


async def run_sizes(name: str, store: Store, fill: Fill, sizes: list[int], claims: int, backlog: bool) -> None:
    history = "acknowledged" if backlog else "succeeded"
    held, first = 0, None
    for size in sizes:
        clock = Clock()
        await fill(held, max(0, size - BACKLOG - held), history)
        held = max(held, size - BACKLOG)
        await fill(held, BACKLOG, "acknowledged")
        held += BACKLOG
        filled = clock.elapsed()
        await time_claims(store, 3)  # warm caches and statements
        times = await time_claims(store, claims)
        median = statistics.median(times)
        kind = "due" if backlog else "finished"
        print(f"  {name}: {held:>10,} jobs in the store ({kind}; filled in {filled:.0f}s): claim of 100 jobs "
              f"median {median:.2f} ms, p90 {times[int(len(times) * 0.9)]:.2f} ms ({load_average()})", flush=True)
        rate = 100 / median * 1000
        if first is None:
            first = (held, rate)
        else:
            report(f"{name} claim, {held:,} vs {first[0]:,} jobs", rate, first[1], "jobs/s",
                   f"{first[0]:,} jobs", target=0.8)


async def sqlite_run(sizes: list[int], claims: int, backlog: bool) -> None:
    from core.builtin.sqlite.store import SQLiteStore

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "claims.db"
        store = SQLiteStore(f"sqlite:///{path}")
        await store.open()  # creates the tables
        db = raw_connection(path)

        async def fill(start: int, count: int, status: str) -> None:
            sqlite_fill(db, start, count, status)
            db.execute("ANALYZE")

        try:
            await run_sizes("SQLite", store, fill, sizes, claims, backlog)
        finally:
            await store.close()
            db.close()


async def postgres_run(url: str, sizes: list[int], claims: int, backlog: bool) -> None:
    import asyncpg
    from core_plugin_postgres.store import PostgresStore

    store = PostgresStore(url)
    await store.open()
    conn = await asyncpg.connect(url)

    async def fill(start: int, count: int, status: str) -> None:
        await postgres_fill(conn, start, count, status)
        await conn.execute("SELECT setval(pg_get_serial_sequence('jobs', 'seq'), $1)", start + count + 1)
        await conn.execute("VACUUM ANALYZE")

    try:
        await run_sizes("PostgreSQL", store, fill, sizes, claims, backlog)
    finally:
        await conn.close()
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--claims", type=int, default=30)
    parser.add_argument("--store", choices=["sqlite", "postgresql"], nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--backlog", action="store_true", help="every job due, not finished")
    args = parser.parse_args()
    sizes = sorted(args.sizes)
    print(f"claim time against jobs in the store ({load_average()})")
    if "sqlite" in args.store:
        asyncio.run(sqlite_run(sizes, args.claims, args.backlog))
    if "postgresql" in args.store:
        with scratch_database() as url:
            asyncio.run(postgres_run(url, sizes, args.claims, args.backlog))


if __name__ == "__main__":
    main()
