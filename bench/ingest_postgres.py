"""``bench/ingest.py`` against PostgreSQL (prints figures, asserts nothing).

The same HTTP ingest runs as ``bench/ingest.py`` (single-event requests against 1 and 2 gateway processes beside
as many processes of the parse-only Starlette app, each loaded by its own load generator, then batch requests
beside a raw ``COPY``, from a
separate load-generating process, each ``202`` sent after the commit), with the gateway's
store on a throw-away database of the local server (``CORE_BENCH_POSTGRES``) through
``core-plugin-postgres``.

    python bench/ingest_postgres.py [--duration 10] [--connections 64] [--batch 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import ingest
import orjson
from _harness import EVENT, Clock, interleave, report, scratch_database, start_gateway, start_parse_only, stop

from hookspecs import new_id


async def count_events(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM events")
        return count
    finally:
        await conn.close()


async def raw_copy(url: str, per_request: int, duration: float) -> float:
    """The raw baseline: asyncpg ``COPY`` of the rows core writes, ``per_request`` events per
    transaction (sequence numbers drawn first, so every table is one ``COPY``); events/s."""
    conn = await asyncpg.connect(url)
    body = orjson.dumps({"events": [EVENT] * per_request})
    try:
        clock, done = Clock(), 0
        while clock.elapsed() < duration:
            events = orjson.loads(body)["events"]
            now = datetime.now(UTC)
            async with conn.transaction():
                seqs = [r[0] for r in await conn.fetch(
                    "SELECT nextval(pg_get_serial_sequence('jobs', 'seq')) FROM generate_series(1, $1)", len(events))]
                rows: dict[str, list[tuple[object, ...]]] = {table: [] for table in COLUMNS}
                for seq, event in zip(seqs, events, strict=True):
                    event_id, job_id = new_id(), new_id()
                    context, data = orjson.dumps(event["context"]).decode(), orjson.dumps(event["data"]).decode()
                    rows["events"].append((event_id, "bench", event["name"], context, data, now, None, now))
                    rows["jobs"].append((seq, job_id, event_id, "warehouse", "raw", context, data, None, None, now,
                                         None, None))
                    rows["transitions"].append((new_id(), seq, job_id, event_id, 0, None, "acknowledged", None, None,
                                                now, None, None))
                    rows["job_state"].append((seq, "warehouse", "raw", "acknowledged", 0, None,
                                              datetime(1970, 1, 1, tzinfo=UTC), None, None))
                for table, records in rows.items():
                    await conn.copy_records_to_table(table, records=records, columns=COLUMNS[table])
            done += len(events)
        rate = done / clock.elapsed()
        print(f"  {'raw asyncpg COPY':>24}: {rate:>9,.0f} events/s ({per_request} per transaction)", flush=True)
        return rate
    finally:
        await conn.close()


COLUMNS = {
    "events": ["id", "source", "name", "context", "data", "received_at", "sent_at", "ingested_at"],
    "jobs": ["seq", "id", "event_id", "destination", "action", "context", "data", "version", "parent_job_id",
             "created_at", "idempotency_key", "ordering_key"],
    "transitions": ["id", "job_seq", "job_id", "event_id", "attempt", "state_before", "state_after", "error",
                    "due_at", "created_at", "lease_owner", "lease_expires_at"],
    "job_state": ["job_seq", "destination", "action", "status", "attempt", "due_at", "ready_at", "lease_owner",
                  "lease_expires_at"],
}


def _gateways(urls: list[str], pids: list[int], per_request: int, args: argparse.Namespace,
              name: str = "core") -> float:
    """One load per server process, at once; the events/s of all together."""
    with ThreadPoolExecutor(len(urls)) as pool:
        rates = pool.map(lambda up: ingest._phase(f"{name} x{len(urls)} process(es)", up[1], up[0], per_request, args),
                         zip(urls, pids, strict=True))
        return sum(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per phase")
    parser.add_argument("--connections", type=int, default=64, help="concurrent keep-alive connections")
    parser.add_argument("--batch", type=int, default=100, help="events per batch request")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs of core and baseline (medians)")
    args = parser.parse_args()
    with scratch_database() as url, tempfile.TemporaryDirectory(prefix="core-bench-") as tmp:
        directory = Path(tmp)
        ingest.write_project(directory, url)
        env = {"CORE_LOAD_PLUGINS": "postgres", "BENCH_API_KEY": ingest.API_KEY, "BENCH_WHSEC": ingest.WHSEC}
        gateways = [start_gateway(directory, env) for _ in range(2)]
        parse_only = [start_parse_only(directory) for _ in range(2)]
        urls, pids = [g[1] for g in gateways], [g[0].pid for g in gateways]
        parse_urls, parse_pids = [p[1] for p in parse_only], [p[0].pid for p in parse_only]
        try:
            print(f"gateways {urls} on PostgreSQL, {args.connections} connections each, {args.duration:g}s per "
                  f"phase, {args.rounds} interleaved rounds")
            ingest._run_load(urls[0], 1, 1.0, args.connections)  # warm-up
            for count in (1, 2):
                single = interleave({
                    "core": lambda count=count: _gateways(urls[:count], pids[:count], 1, args),  # type: ignore[misc]
                    "parse": lambda count=count: _gateways(parse_urls[:count], parse_pids[:count], 1, args,  # type: ignore[misc]
                                                           "parse-only"),
                }, args.rounds)
                report(f"PostgreSQL HTTP ingest, 1 event, {count} gw", single["core"], single["parse"], "events/s",
                       "parse-only", target=0.8)
            batch = interleave({
                "core": lambda: ingest._phase(f"core {args.batch}-event", pids[0], urls[0], args.batch, args),
                "raw": lambda: asyncio.run(raw_copy(url, args.batch, args.duration)),
            }, args.rounds)
            report(f"PostgreSQL HTTP ingest, {args.batch} events", batch["core"], batch["raw"], "events/s",
                   "raw COPY", target=0.9)
        finally:
            for process, _ in gateways:
                stop(process)
            for process, _ in parse_only:
                stop(process)
        print(f"store holds {asyncio.run(count_events(url)):,} events")


if __name__ == "__main__":
    main()
