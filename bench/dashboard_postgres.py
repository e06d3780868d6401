"""Every dashboard page's answer time with 1,000,000 jobs in a PostgreSQL store (prints
figures, asserts nothing).

Fills a throw-away database (``CORE_BENCH_POSTGRES``): jobs of six actions spread over ten
days, ``--recent`` of them in the last hour (so the overview's chart has work to do), three
transitions each; 95% succeeded, 3% discarded, 1% failed, 1% awaiting. Ids are real KSUIDs of
each row's time (made here, copied in), the rest is SQL ``generate_series``. Then runs
``core start admin`` on it and times each page (p50 and p95 of ``--requests`` requests after a
warm-up; a page meets the 200 ms target when its p95 does), each request following one to the
admin API's ``/_health`` (one store query), the raw baseline of a request to the same listener.

    python bench/dashboard_postgres.py [--jobs 1000000] [--recent 100000] [--requests 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from _harness import load_average, scratch_database
from core_plugin_postgres.store import PostgresStore

from hookspecs import new_id

TARGET_MS = 200
BASELINE = "/admin/api/_health"
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

# Job n of table ids (n, id, at): action n % 6, created at a time that grows with n.
FILL = """
CREATE TEMP TABLE gen AS
SELECT n, id, at,
       (ARRAY['warehouse','warehouse','crm','crm','audit','audit'])[n % 6 + 1] AS destination,
       (ARRAY['insert','upsert','notify','sync','log','archive'])[n % 6 + 1] AS action,
       CASE WHEN n % 100 < 95 THEN 'succeeded' WHEN n % 100 < 98 THEN 'discarded'
            WHEN n % 100 < 99 THEN 'failed' ELSE 'awaiting' END AS status
FROM ids;
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


def rows(count: int, recent: int) -> list[tuple[int, str, datetime]]:
    """``(n, id, time)`` of each job: ``recent`` of them in the last hour, the rest over the ten
    days before; the id a KSUID of its time, as the gateway makes it."""
    now, hour, days = datetime.now(UTC), timedelta(hours=1), timedelta(days=10)
    found = []
    for n in range(1, count + 1):
        if n > count - recent:
            at = now - hour * ((count - n) / recent)
        else:
            at = now - hour - days * ((count - recent - n) / (count - recent))
        found.append((n, new_id(at.timestamp()), at))
    return found


async def fill(url: str, made: list[tuple[int, str, datetime]]) -> tuple[float, str]:
    """Create the store's tables and fill them with ``made`` jobs; the seconds it took and the
    database's collation (``C``-like: ids sort by time, and time filters bound the id)."""
    store = PostgresStore(url)
    await store.open()
    await store.close()
    started = time.perf_counter()
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute("CREATE TEMP TABLE ids (n bigint, id text, at timestamptz)")
        await conn.copy_records_to_table("ids", records=made)
        await conn.execute(FILL.replace("$1", str(len(made))))
        await conn.execute("VACUUM ANALYZE")
        collation = await conn.fetchval("SELECT datcollate FROM pg_database WHERE datname = current_database()")
    finally:
        await conn.close()
    return time.perf_counter() - started, collation


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


def log_in(client: httpx.Client) -> None:
    """Log in as a browser does (no token configured: the form and its CSRF token only)."""
    form = client.get("/admin/login").text
    found = re.search(r'name="csrf" value="([^"]+)"', form)
    if found is None or client.post("/admin/login", data={"csrf": found.group(1)}).status_code != 303:
        raise SystemExit("could not log in to the dashboard")


def _ms(client: httpx.Client, path: str) -> tuple[float, int]:
    started = time.perf_counter()
    status = client.get(path).status_code
    return (time.perf_counter() - started) * 1000, status


def _percentile(times: list[float], share: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def timed(client: httpx.Client, path: str, requests: int) -> tuple[float, float, float, int]:
    """p50 and p95 of ``path`` over ``requests`` requests (after a warm-up), the p50 of the
    baseline request made after each, and the last status."""
    client.get(path)
    times, baseline, status = [], [], 0
    for _ in range(requests):
        ms, status = _ms(client, path)
        times.append(ms)
        baseline.append(_ms(client, BASELINE)[0])
    return _percentile(times, 0.5), _percentile(times, 0.95), _percentile(baseline, 0.5), status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--recent", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    with scratch_database() as server_url, tempfile.TemporaryDirectory() as tmp:
        url = server_url.replace("postgresql://", "postgresql+asyncpg://", 1)
        made = rows(args.jobs, args.recent)
        took, collation = asyncio.run(fill(url, made))
        print(f"{args.jobs:,} jobs ({args.recent:,} in the last hour), {3 * args.jobs:,} transitions "
              f"loaded in {took:.0f}s; database collation {collation}", flush=True)
        project = Path(tmp)
        (project / "app.py").write_text(APP)
        (project / "core.toml").write_text(
            f'app = "app.py"\nstore = "{url}"\npubsub = ""\nsupervisor = "store"\nwanderer = "{url}"\n'
        )
        process, base = start_admin(project)
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                log_in(client)
                middle, last = made[args.jobs // 2][1], made[-5][1]
                pages = [
                    "/admin/", "/admin/destinations/warehouse", "/admin/destinations/warehouse/actions/insert",
                    f"/admin/events/{middle}", f"/admin/jobs/{middle}", f"/admin/jobs/{last}",
                    "/admin/jobs", f"/admin/jobs?after={middle}",
                    "/admin/jobs?actions_in=warehouse.insert&status_in=discarded",
                    f"/admin/jobs?actions_in=warehouse.insert&status_in=failed&after={middle}",
                    "/admin/jobs?created_after=30m&status_in=discarded",
                    "/admin/events", f"/admin/events?after={middle}", "/admin/events?received_after=30m",
                    f"/admin/search?q={middle}", "/admin/search?q=nothing-has-this-id",
                    "/admin/sources", "/admin/nodes", "/admin/migrations", "/admin/options",
                ]
                print(f"{args.requests} requests a page, each followed by GET {BASELINE} (the raw baseline); "
                      f"{load_average()}")
                worst = 0.0
                for path in pages:
                    p50, p95, baseline, status = timed(client, path, args.requests)
                    worst = max(worst, p95)
                    verdict = "ERR" if status not in (200, 303) else "ok" if p95 < TARGET_MS else "SLOW"
                    print(f"{path:<75} {status} p50 {p50:6.1f} ms p95 {p95:6.1f} ms  baseline p50 {baseline:4.1f} ms  "
                          f"{verdict} (target p95 < {TARGET_MS} ms)", flush=True)
                met = "met" if worst < TARGET_MS else "MISSED"
                print(f"slowest p95: {worst:.1f} ms; target {TARGET_MS} ms: {met} ({load_average()})")
        finally:
            process.terminate()
            process.communicate(timeout=30)


if __name__ == "__main__":
    main()
