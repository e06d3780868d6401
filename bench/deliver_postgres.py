"""``bench/deliver.py`` against PostgreSQL (prints figures, asserts nothing).

The same backlog, jobs-per-event and realtime-latency runs as ``bench/deliver.py`` (and its
options, ``--compare`` included), with the store, the pub/sub and the supervisor of
``core-plugin-postgres`` on a throw-away database of the local server
(``CORE_BENCH_POSTGRES``). The raw baseline is asyncpg alone on the same database: the rows
core writes, filled by ``COPY``, then per batch one claim transaction (``SELECT … FOR UPDATE
SKIP LOCKED`` through the claim index, one ``UPDATE`` of ``job_state``, a ``COPY`` of the
``executing`` transitions) and one result transaction (a ``COPY`` of the ``succeeded``
transitions, one ``UPDATE … FROM unnest``), with core's ``synchronous_commit = off``.

    python bench/deliver_postgres.py [--jobs 30000] [--rounds 3] [--batch-size 500] [--compare] ...
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import deliver
import orjson
from _harness import EVENT, Clock, scratch_database
from ingest_postgres import COLUMNS

from core.config import load_settings
from core.runtime import Runtime
from hookspecs import new_id

_NO_DUE = datetime(1970, 1, 1, tzinfo=UTC)
_CLAIM = """
SELECT s.job_seq, j.id, j.event_id, j.context, j.data, s.status, s.attempt
FROM job_state AS s JOIN jobs AS j ON j.seq = s.job_seq
WHERE s.destination = $1 AND s.action = $2 AND s.status IN ('acknowledged', 'awaiting', 'failed')
  AND s.ready_at <= $3
ORDER BY s.ready_at, s.job_seq LIMIT $4 FOR UPDATE OF s SKIP LOCKED"""
_EXECUTING = """UPDATE job_state SET status = 'executing', attempt = attempt + 1, due_at = NULL,
ready_at = $2, lease_owner = 'raw', lease_expires_at = $3 WHERE job_seq = ANY($1::bigint[])"""
_SUCCEEDED = """UPDATE job_state AS s SET status = 'succeeded', attempt = u.attempt, due_at = NULL,
ready_at = $3, lease_owner = NULL, lease_expires_at = NULL
FROM unnest($1::bigint[], $2::int[]) AS u(seq, attempt) WHERE s.job_seq = u.seq"""


async def _raw_fill(conn: asyncpg.Connection, count: int, action: str) -> None:
    """``count`` events of the bench payload, each with its job, first transition and summary row."""
    now = datetime.now(UTC)
    context, data = orjson.dumps(EVENT["context"]).decode(), orjson.dumps(EVENT["data"]).decode()
    async with conn.transaction():
        seqs = [r[0] for r in await conn.fetch(
            "SELECT nextval(pg_get_serial_sequence('jobs', 'seq')) FROM generate_series(1, $1)", count)]
        rows: dict[str, list[tuple[object, ...]]] = {table: [] for table in COLUMNS}
        for seq in seqs:
            event_id, job_id = new_id(), new_id()
            rows["events"].append((event_id, "bench", EVENT["name"], context, data, now, None, now))
            rows["jobs"].append((seq, job_id, event_id, "bench", action, context, data, None, None, now, None, None))
            rows["transitions"].append((new_id(), seq, job_id, event_id, 0, None, "acknowledged", None, None, now,
                                        None, None))
            rows["job_state"].append((seq, "bench", action, "acknowledged", 0, None, _NO_DUE, None, None))
        for table, records in rows.items():
            await conn.copy_records_to_table(table, records=records, columns=COLUMNS[table])


async def _raw_claim_and_result(conn: asyncpg.Connection, action: str, batch: int) -> int:
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=300)
    async with conn.transaction():
        await conn.execute("SET LOCAL synchronous_commit = off")
        found = await conn.fetch(_CLAIM, "bench", action, now, batch)
        if not found:
            return 0
        jobs = [(r[0], r[1], r[2], orjson.loads(r[3]), orjson.loads(r[4]), r[6] + 1, r[5]) for r in found]
        await conn.execute(_EXECUTING, [job[0] for job in jobs], _NO_DUE, expires)
        await conn.copy_records_to_table("transitions", columns=COLUMNS["transitions"], records=[
            (new_id(), seq, job_id, event_id, attempt, status, "executing", None, None, now, "raw", expires)
            for seq, job_id, event_id, _c, _d, attempt, status in jobs])
    done = datetime.now(UTC)
    async with conn.transaction():
        await conn.execute("SET LOCAL synchronous_commit = off")
        await conn.copy_records_to_table("transitions", columns=COLUMNS["transitions"], records=[
            (new_id(), seq, job_id, event_id, attempt, "executing", "succeeded", None, None, done, None, None)
            for seq, job_id, event_id, _c, _d, attempt, _s in jobs])
        await conn.execute(_SUCCEEDED, [job[0] for job in jobs], [job[5] for job in jobs], _NO_DUE)
    return len(jobs)


def main() -> None:
    args = deliver.parser().parse_args()
    with scratch_database() as url, tempfile.TemporaryDirectory(prefix="core-bench-") as tmp:
        raw_runs = itertools.count()

        async def open_runtime(directory: Path, batch_size: int) -> Runtime:
            settings = load_settings(cwd=directory, environ={}, overrides={
                "app": str(Path(deliver.__file__).resolve()),
                "store": url, "pubsub": url, "supervisor": url, "wanderer": "",
                "scheduler.batch_size": batch_size, "scheduler.poll_seconds": 5.0,
                "plugins.load": ["postgres"],
            })
            return await Runtime.open(settings, services=["scheduler"])

        async def raw_async(jobs: int, batch_size: int) -> float:
            action = f"raw{next(raw_runs)}"
            conn = await asyncpg.connect(url)
            try:
                for offset in range(0, jobs, 5000):
                    await _raw_fill(conn, min(5000, jobs - offset), action)
                await conn.execute("ANALYZE job_state")
                clock, done = Clock(), 0
                while count := await _raw_claim_and_result(conn, action, batch_size):
                    done += count
                elapsed = clock.elapsed()
                print(f"  raw:  {done:,} jobs in {elapsed:.2f}s: {done / elapsed:,.0f} jobs/s", flush=True)
                return done / elapsed
            finally:
                await conn.close()

        def raw_backlog(_directory: Path, jobs: int, batch_size: int) -> float:
            return float(asyncio.run(raw_async(jobs, batch_size)))

        deliver.open_runtime = open_runtime
        deliver.STORE, deliver.RAW_NAME = "PostgreSQL", "raw asyncpg claim+result"
        print(f"PostgreSQL database {url}")
        # The store's schema exists before the first raw run (a core run creates it).
        asyncio.run(_create_schema(Path(tmp)))
        deliver.run_benches(args, Path(tmp), raw_backlog)


async def _create_schema(directory: Path) -> None:
    runtime = await deliver.open_runtime(directory / "schema", 500)
    await runtime.close()


if __name__ == "__main__":
    sys.exit(main())
