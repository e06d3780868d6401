"""Claim time as the history grows, on SQLite and on PostgreSQL (prints figures, asserts nothing).

For each store (the built-in SQLite store on a temporary file, ``core-plugin-postgres`` on a
throw-away database of ``CORE_BENCH_POSTGRES``), fills the tables with finished jobs up to each
size (default 10,000, 100,000 and 1,000,000 jobs) by batched raw inserts (the rows core writes:
event, job, its ``acknowledged``/``executing``/``succeeded`` transitions, its summary row), adds
a fresh backlog of 10,000 due jobs at each step, and times core's ``claim`` of 100 jobs (median
and p90 of ``--claims`` claims, after ``ANALYZE``), interleaved with the claims of a reference
store of the same kind that holds only a backlog of 10,000 due jobs. Each size's claim rate is
printed beside the reference's with the ratio: flat (0.8x to 1.2x at every size) means the
claim index ignores the history.

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
    return times


#: Fills rows raw: ``(first seq - 1, count, status)``; then analyzes the tables.
Fill = Callable[[int, int, str], Awaitable[None]]


async def run_sizes(name: str, stores: tuple[Store, Store], fills: tuple[Fill, Fill], sizes: list[int], claims: int,
                    backlog: bool) -> None:
    """Grow the first store through ``sizes``; at each, time its claims interleaved with those of
    the second, a reference store of :data:`BACKLOG` due jobs (A B B A, 5 claims a turn), so
    the ratio of the two medians holds under a changing load."""
    (store, reference), (fill, fill_reference) = stores, fills
    history = "acknowledged" if backlog else "succeeded"
    held = held_reference = 0
    for size in sizes:
        clock = Clock()
        await fill(held, max(0, size - BACKLOG - held), history)
        held = max(held, size - BACKLOG)
        await fill(held, BACKLOG, "acknowledged")
        held += BACKLOG
        await fill_reference(held_reference, BACKLOG, "acknowledged")  # the reference's backlog, topped up
        held_reference += BACKLOG
        filled = clock.elapsed()
        for each in (store, reference):
            await time_claims(each, 3)  # warm caches and statements
        times: list[float] = []
        reference_times: list[float] = []
        for turn in range(0, claims, 5):  # A B B A ...: neither store always goes first
            for each in (store, reference) if turn % 10 == 0 else (reference, store):
                (times if each is store else reference_times).extend(await time_claims(each, 5))
        times.sort()
        median, reference_median = statistics.median(times), statistics.median(reference_times)
        kind = "due" if backlog else "finished"
        print(f"  {name}: {held:>10,} jobs in the store ({kind}; filled in {filled:.0f}s): claim of 100 jobs "
              f"median {median:.2f} ms, p90 {times[int(len(times) * 0.9)]:.2f} ms; reference store of "
              f"{BACKLOG:,} due jobs {reference_median:.2f} ms ({load_average()})", flush=True)
        report(f"{name} claim, {held:,} jobs", 100 / median * 1000, 100 / reference_median * 1000, "jobs/s",
               f"{BACKLOG:,}-job store", target=0.8)


async def sqlite_run(sizes: list[int], claims: int, backlog: bool) -> None:
    from core.builtin.sqlite.store import SQLiteStore

    with tempfile.TemporaryDirectory() as tmp:
        stores, fills, dbs = [], [], []
        for name in ("claims", "reference"):
            path = Path(tmp) / f"{name}.db"
            store = SQLiteStore(f"sqlite:///{path}")
            await store.open()  # creates the tables
            db = raw_connection(path)

            async def fill(start: int, count: int, status: str, db: sqlite3.Connection = db) -> None:
                sqlite_fill(db, start, count, status)
                db.execute("ANALYZE")

            stores.append(store)
            fills.append(fill)
            dbs.append(db)
        try:
            await run_sizes("SQLite", (stores[0], stores[1]), (fills[0], fills[1]), sizes, claims, backlog)
        finally:
            for store, db in zip(stores, dbs, strict=True):
                await store.close()
                db.close()


async def postgres_run(urls: list[str], sizes: list[int], claims: int, backlog: bool) -> None:
    import asyncpg
    from core_plugin_postgres.store import PostgresStore

    stores, fills, conns = [], [], []
    for url in urls:
        store = PostgresStore(url)
        await store.open()
        conn = await asyncpg.connect(url)

        async def fill(start: int, count: int, status: str, conn: Any = conn) -> None:
            await postgres_fill(conn, start, count, status)
            await conn.execute("SELECT setval(pg_get_serial_sequence('jobs', 'seq'), $1)", start + count + 1)
            await conn.execute("VACUUM ANALYZE")

        stores.append(store)
        fills.append(fill)
        conns.append(conn)
    try:
        await run_sizes("PostgreSQL", (stores[0], stores[1]), (fills[0], fills[1]), sizes, claims, backlog)
    finally:
        for store, conn in zip(stores, conns, strict=True):
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
        with scratch_database() as url, scratch_database() as reference:
            asyncio.run(postgres_run([url, reference], sizes, args.claims, args.backlog))


if __name__ == "__main__":
    main()
