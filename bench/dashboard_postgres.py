"""Every dashboard page's answer time with 1,000,000 jobs in a PostgreSQL store (prints
figures, asserts nothing).

Fills a throw-away database (``CORE_BENCH_POSTGRES``) with SQL ``generate_series``: jobs of six
actions spread over ten days, ``--recent`` of them in the last hour (so the overview's chart has
work to do), three transitions each; 95% succeeded, 3% discarded, 1% failed, 1% awaiting. Then
runs ``core start admin`` on it and times each page (median of ``--requests`` requests after a
warm-up) against the 200 ms target, beside the admin API's ``/_health`` (one store query) as
the raw baseline of a request to the same listener.

    python bench/dashboard_postgres.py [--jobs 1000000] [--recent 100000] [--requests 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
from core_plugin_postgres.store import PostgresStore
from postgres_common import scratch_database

TARGET_MS = 200
ACTIONS = [("warehouse", "insert"), ("warehouse", "upsert"), ("crm", "notify"), ("crm", "sync"),
           ("audit", "log"), ("audit", "archive")]
APP = """
from hookspecs import Action, Destination, Flow, HttpTrigger, Schedule, Source, hookimpl

def action(name):
    return type(name.title(), (Action,), {"name": name, "schedule": Schedule(interval="@every 1h")})()

@hookimpl
def core_register_sources():
    return [Source("web", [HttpTrigger("track", "/track")])]

@hookimpl
def core_register_destinations():
    return [Destination("warehouse", [action("insert"), action("upsert")]),
            Destination("crm", [action("notify"), action("sync")]),
            Destination("audit", [action("log"), action("archive")])]

@hookimpl
def core_register_flows():
    return [Flow("web-to-all", "web", ["warehouse.insert", "warehouse.upsert", "crm.notify", "crm.sync",
                                       "audit.log", "audit.archive"])]
"""

# $1 jobs, $2 of them in the last hour. Job n: action n % 6, created at a time that grows with n;
# ids are zero-padded numbers (they sort like KSUIDs: by creation).
FILL = """
CREATE TEMP TABLE gen AS
SELECT n,
       lpad(n::text, 27, '0') AS id,
       CASE WHEN n > $1 - $2 THEN now() - interval '1 hour' * (($1 - n)::float / $2)
            ELSE now() - interval '1 hour' - interval '10 days' * (($1 - $2 - n)::float / ($1 - $2)) END AS at,
       (ARRAY['warehouse','warehouse','crm','crm','audit','audit'])[n % 6 + 1] AS destination,
       (ARRAY['insert','upsert','notify','sync','log','archive'])[n % 6 + 1] AS action,
       CASE WHEN n % 100 < 95 THEN 'succeeded' WHEN n % 100 < 98 THEN 'discarded'
            WHEN n % 100 < 99 THEN 'failed' ELSE 'awaiting' END AS status
FROM generate_series(1, $1) AS n;
INSERT INTO events (id, source, name, context, data, received_at, ingested_at)
  SELECT id, 'web', 'track', '{}', '{"n": ' || n || ', "note": "<b>bench</b>"}', at, at FROM gen;
INSERT INTO jobs (seq, id, event_id, destination, action, context, data, created_at)
  SELECT n, id, id, destination, action, '{}', '{}', at FROM gen;
INSERT INTO transitions (id, job_seq, job_id, event_id, attempt, state_before, state_after, error, created_at)
  SELECT 'a' || right(id, 26), n, id, id, 0, NULL, 'acknowledged', NULL, at FROM gen
  UNION ALL SELECT 'e' || right(id, 26), n, id, id, 1, 'acknowledged', 'executing', NULL,
    at + interval '1 second' FROM gen WHERE status <> 'awaiting'
  UNION ALL SELECT 'f' || right(id, 26), n, id, id, 1, 'executing', status,
    CASE WHEN status IN ('failed', 'discarded') THEN 'HTTP ' || (500 + n % 4) || ': the destination refused' END,
    at + interval '2 seconds' FROM gen WHERE status <> 'awaiting';
INSERT INTO job_state (job_seq, destination, action, status, attempt, due_at, ready_at)
  SELECT n, destination, action, status, CASE WHEN status = 'awaiting' THEN 0 ELSE 1 END, NULL,
         '1970-01-01 00:00:00+00' FROM gen;
SELECT setval(pg_get_serial_sequence('jobs', 'seq'), $1);
"""


async def fill(url: str, count: int, recent: int) -> float:
    """Create the store's tables and fill them; the seconds it took."""
    store = PostgresStore(url)
    await store.open()
    await store.close()
    started = time.perf_counter()
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        sql = FILL.replace("$1", str(count)).replace("$2", str(recent))
        await conn.execute(sql)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


def start_admin(project: Path) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")}
    env |= {"CORE_LOAD_PLUGINS": "postgres", "CORE_ADMIN_PORT": "0"}
    process = subprocess.Popen([sys.executable, "-m", "core", "start", "admin"], cwd=project, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    seen = []
    while True:
        line = process.stdout.readline()
        if not line:
            raise SystemExit("core start admin exited:\n" + "".join(seen))
        seen.append(line)
        if found := re.search(r"(http://[\d.]+:\d+)/admin/api|listening on (http://[\d.]+:\d+)", line):
            return process, found.group(1) or found.group(2)


def median_ms(client: httpx.Client, path: str, requests: int) -> tuple[float, int]:
    client.get(path)  # warm-up
    times, status = [], 0
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        status = response.status_code
    return statistics.median(times), status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--recent", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=7)
    args = parser.parse_args()
    with scratch_database() as server_url, tempfile.TemporaryDirectory() as tmp:
        url = server_url.replace("postgresql://", "postgresql+asyncpg://", 1)
        took = asyncio.run(fill(url, args.jobs, args.recent))
        print(f"{args.jobs:,} jobs ({args.recent:,} in the last hour), {3 * args.jobs:,} transitions "
              f"loaded in {took:.0f}s", flush=True)
        project = Path(tmp)
        (project / "app.py").write_text(APP)
        (project / "core.toml").write_text(
            f'app = "app.py"\nstore = "{url}"\npubsub = ""\nsupervisor = "store"\nwanderer = "{url}"\n'
        )
        process, base = start_admin(project)
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                client.post("/admin/login", data={})
                middle, last = f"{args.jobs // 2:027d}", f"{args.jobs - 5:027d}"
                baseline, _ = median_ms(client, "/admin/api/_health", args.requests)
                pages = [
                    "/admin/", "/admin/destinations/warehouse/actions/insert",
                    f"/admin/events/{middle}", f"/admin/jobs/{middle}", f"/admin/jobs/{last}",
                    "/admin/jobs", f"/admin/jobs?after={middle}",
                    "/admin/jobs?actions_in=warehouse.insert&status_in=discarded",
                    f"/admin/jobs?actions_in=warehouse.insert&status_in=failed&after={middle}",
                    "/admin/jobs?created_after=30m&status_in=discarded",
                    "/admin/events", f"/admin/events?after={middle}", "/admin/events?received_after=30m",
                    f"/admin/search?q={middle}", "/admin/search?q=nothing-has-this-id",
                    "/admin/sources", "/admin/nodes", "/admin/migrations", "/admin/options",
                ]
                print(f"raw baseline: GET /admin/api/_health median {baseline:.1f} ms")
                worst = 0.0
                for path in pages:
                    ms, status = median_ms(client, path, args.requests)
                    worst = max(worst, ms)
                    verdict = "ok" if ms < TARGET_MS and status in (200, 303) else "SLOW" if ms >= TARGET_MS else "ERR"
                    print(f"{path:<75} {status} median {ms:7.1f} ms ({ms / baseline:5.1f}x baseline) "
                          f"{verdict} (target {TARGET_MS} ms)", flush=True)
                met = "met" if worst < TARGET_MS else "MISSED"
                print(f"slowest page: {worst:.1f} ms; target {TARGET_MS} ms: {met}")
        finally:
            process.terminate()
            process.communicate(timeout=30)


if __name__ == "__main__":
    main()
