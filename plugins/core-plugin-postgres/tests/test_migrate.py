"""``core migrate`` on PostgreSQL (store, wanderer and supervisor), as real processes.

A project has SQL migrations in two scopes: ``store`` (run on the store's database) and
``destination:warehouse`` (run by the destination's ``migrate``, on the same database). The
sequence ``status`` → ``run`` → ``rollback --version`` → ``run`` leaves the schema as expected;
four ``core migrate run`` processes started at once apply each migration exactly once, because
each scope is migrated under the PostgreSQL supervisor's lease: a runner that finds the scope
held is refused, naming the holder, or waits for it with ``--wait``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

APP = '''
from core.sqlstore import run_script
from hookspecs import Action, Destination, hookimpl


class Insert(Action):
    name = "insert"


class Warehouse(Destination):
    async def migrate(self, toolkit, script):
        await run_script(toolkit.options["url"], script.text)


@hookimpl
def core_register_destinations():
    return [Warehouse("warehouse", actions=[Insert()])]
'''

#: (scope folder, version, name, up, down); each up records itself in mig_applied (made by the
#: fixture: scopes are independent, they run in scope order), slowly.
MIGRATIONS = [
    ("store", "20260101000000", "seen",
     "CREATE TABLE mig_seen (id text PRIMARY KEY);"
     "INSERT INTO mig_applied (version) VALUES ('20260101000000'); SELECT pg_sleep(0.3);",
     "DROP TABLE mig_seen; DELETE FROM mig_applied WHERE version = '20260101000000';"),
    ("store", "20260102000000", "audit",
     "CREATE TABLE mig_audit (id bigserial PRIMARY KEY, note text);"
     "INSERT INTO mig_applied (version) VALUES ('20260102000000'); SELECT pg_sleep(0.3);",
     "DROP TABLE mig_audit; DELETE FROM mig_applied WHERE version = '20260102000000';"),
    ("d:warehouse", "20260103000000", "orders",
     "CREATE TABLE mig_orders (id text PRIMARY KEY, total numeric NOT NULL);"
     "INSERT INTO mig_applied (version) VALUES ('20260103000000'); SELECT pg_sleep(0.3);",
     "DROP TABLE mig_orders; DELETE FROM mig_applied WHERE version = '20260103000000';"),
    ("d:warehouse", "20260104000000", "orders_customer",
     "ALTER TABLE mig_orders ADD COLUMN customer text;"
     "INSERT INTO mig_applied (version) VALUES ('20260104000000'); SELECT pg_sleep(0.3);",
     "ALTER TABLE mig_orders DROP COLUMN customer; DELETE FROM mig_applied WHERE version = '20260104000000';"),
]


@pytest.fixture
async def project(tmp_path: Path, pg_url: str) -> Path:
    conn = await asyncpg.connect(pg_url)
    await conn.execute("CREATE TABLE mig_applied (version text PRIMARY KEY, pid int DEFAULT pg_backend_pid())")
    await conn.close()
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "core.toml").write_text(
        f'app = "app.py"\nstore = "{pg_url}"\nwanderer = "{pg_url}"\nsupervisor = "{pg_url}"\npubsub = ""\n'
        f'[options.warehouse]\nurl = "{pg_url}"\n'
    )
    for folder, version, name, up, down in MIGRATIONS:
        where = tmp_path / "migrations" / folder
        where.mkdir(parents=True, exist_ok=True)
        (where / f"{version}.{name}.up.sql").write_text(up)
        (where / f"{version}.{name}.down.sql").write_text(down)
    return tmp_path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CORE_")}


def core(project: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``core ARGS…`` as a process in the project."""
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=project, env=_env(), capture_output=True,
                          text=True, timeout=timeout, check=False)


async def columns(url: str) -> dict[str, list[str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT table_name, column_name FROM information_schema.columns "
                                "WHERE table_name LIKE 'mig_%' ORDER BY table_name, ordinal_position")
    finally:
        await conn.close()
    out: dict[str, list[str]] = {}
    for row in rows:
        out.setdefault(row["table_name"], []).append(row["column_name"])
    return out


def statuses(project: Path) -> dict[str, str]:
    done = core(project, "migrate", "status", "--json")
    assert done.returncode == 0, done.stderr
    return {row["version"]: row["status"] for row in json.loads(done.stdout)}


async def test_status_run_rollback_run_on_postgresql(project: Path, pg_url: str) -> None:
    assert set(statuses(project).values()) == {"pending"}
    done = core(project, "migrate", "run")
    assert done.returncode == 0, done.stderr
    assert "4 migrations applied" in done.stdout
    assert await columns(pg_url) == {
        "mig_applied": ["version", "pid"], "mig_audit": ["id", "note"], "mig_orders": ["id", "total", "customer"],
        "mig_seen": ["id"]}

    back = core(project, "migrate", "rollback", "--scope", "destination:warehouse", "--version", "20260103000000")
    assert back.returncode == 0, back.stderr
    assert (await columns(pg_url))["mig_orders"] == ["id", "total"]
    assert statuses(project)["20260104000000"] == "succeeded (down)"
    back = core(project, "migrate", "rollback", "--scope", "store", "--version", "20260101000000")
    assert back.returncode == 0, back.stderr
    assert "mig_audit" not in await columns(pg_url)

    again = core(project, "migrate", "run")
    assert again.returncode == 0, again.stderr
    assert "2 migrations applied" in again.stdout
    assert await columns(pg_url) == {
        "mig_applied": ["version", "pid"], "mig_audit": ["id", "note"], "mig_orders": ["id", "total", "customer"],
        "mig_seen": ["id"]}
    assert set(statuses(project).values()) == {"succeeded (up)"}


async def _once_each(project: Path, pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        applied = await conn.fetch("SELECT version FROM mig_applied ORDER BY version")
        runs = await conn.fetch("SELECT version, count(*) AS n FROM wanderer_runs "
                                "WHERE status = 'succeeded' AND direction = 'up' GROUP BY version ORDER BY version")
    finally:
        await conn.close()
    versions = [m[1] for m in MIGRATIONS]
    assert [r["version"] for r in applied] == versions  # a second run would have hit the primary key
    assert [(r["version"], r["n"]) for r in runs] == [(v, 1) for v in versions]


def _start_four(project: Path, *args: str) -> list[subprocess.Popen[str]]:
    go = project / "go"
    # the processes import everything, then wait for the same moment to start migrating
    starter = ("import pathlib, sys, time\n"
               "from core.cli import main\n"
               f"while not pathlib.Path({str(go)!r}).exists(): time.sleep(0.005)\n"
               f"sys.exit(main(['migrate', 'run', *{list(args)!r}]))\n")
    procs = [subprocess.Popen([sys.executable, "-c", starter], cwd=project, env=_env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
    return procs


def _finish(procs: list[subprocess.Popen[str]], project: Path) -> list[tuple[int, str, str]]:
    (project / "go").touch()
    out = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=120)
            out.append((proc.returncode, stdout, stderr))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return out


@pytest.mark.slow
async def test_four_runners_at_once_apply_each_migration_exactly_once(project: Path, pg_url: str) -> None:
    procs = _start_four(project)
    await asyncio.sleep(1.5)  # let them all import and wait at the line
    results = _finish(procs, project)
    for code, _, stderr in results:
        assert code == 0 or (code == 2 and "is being migrated by" in stderr and "pid" in stderr), stderr
        assert "Traceback" not in stderr
    assert any(code == 0 and "applied" in stdout for code, stdout, _ in results)
    # they did meet: the scopes stay held for over a second, the four start within milliseconds
    assert any(code == 2 for code, _, _ in results), results
    await _once_each(project, pg_url)
    assert set(statuses(project).values()) == {"succeeded (up)"}


@pytest.mark.slow
async def test_four_runners_that_wait_all_succeed_and_still_apply_once(project: Path, pg_url: str) -> None:
    procs = _start_four(project, "--wait", "60")
    await asyncio.sleep(1.5)
    results = _finish(procs, project)
    assert [code for code, _, _ in results] == [0, 0, 0, 0], [stderr for _, _, stderr in results]
    await _once_each(project, pg_url)


def test_an_unreachable_wanderer_is_one_line_without_the_password(project: Path) -> None:
    config = project / "core.toml"
    config.write_text(config.read_text().replace('wanderer = "postgresql://postgres@',
                                                 'wanderer = "postgresql://postgres:hunter2@127.0.0.1:1/x?k=', 1))
    done = core(project, "migrate", "status")
    assert done.returncode == 2 and done.stderr.startswith("error: could not open the wanderer at postgresql://")
    assert "hunter2" not in done.stderr and "Traceback" not in done.stderr
