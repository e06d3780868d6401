"""Property 7 of the reliability battery: four processes run ``core migrate`` at once, on the
default configuration (the supervisor follows the store; the wanderer is SQLite in ``.core/``),
on SQLite and PostgreSQL stores.
Up, then down (``rollback --version 0``), then up again, four ``core`` processes at each step,
two waiting for a scope another holds (``--wait``) and two not: each migration is applied (and
rolled back) exactly once per step, a process that did not wait either found nothing to do or
says who holds the scope (exit 1 or 2, no traceback), the wanderer's history is one
``executing`` → ``succeeded`` per migration and step, and up → down → up leaves the same schema."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.chaos_kit import figures, store_url  # noqa: F401 - fixtures
from tests.migrate_kit import APP, sql

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

#: The migrations of the project: two in SQL on the store, one in SQL for the destination (its
#: ``migrate`` runs it), two in code (one declared by the destination, one offered by the hook).
MIGRATIONS = 5
#: What the app notes when a migration runs (``calls.log``), by direction.
RUN_NOTES = {"up": ("code.up", "wh.migrate destination:wh up"), "down": ("code.down", "wh.migrate destination:wh down")}


def _project(root: Path, store: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "app.py").write_text(APP)
    (root / "core.toml").write_text(f'app = "app.py"\nstore = "{store}"\npubsub = ""\n')
    sql(root, "store", "20260101000000", "orders",
        "CREATE TABLE mig_orders (id INTEGER PRIMARY KEY, note TEXT);", "DROP TABLE mig_orders;")
    sql(root, "store", "20260102000000", "orders_index",
        "CREATE INDEX mig_orders_note ON mig_orders (note);", "DROP INDEX mig_orders_note;")
    sql(root, "d:wh", "20260103000000", "wh_tables", "-- up\n", "-- down\n")
    return root / "core.toml"


def _four_at_once(config: Path, *args: str) -> list[subprocess.CompletedProcess[str]]:
    """``core migrate ARGS`` in four processes started together, two of them with ``--wait 120``."""
    command = [sys.executable, "-m", "core", "--config", str(config), "migrate", *args]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CORE_")}, "CORE_ADMIN_PORT": "0"}
    started = [subprocess.Popen([*command, *(["--wait", "120"] if n % 2 else [])], cwd=config.parent, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for n in range(4)]
    done = []
    for process in started:
        output, _ = process.communicate(timeout=180)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, output))
    return done


def _notes(root: Path) -> Counter[str]:
    """The runs the app noted since the last call (``calls.log``, cleared)."""
    log = root / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return Counter(" ".join(line.split()[:3]) if line.startswith("wh.migrate") else line for line in lines)


async def _schema_and_history(store: str, root: Path) -> tuple[set[str], list[tuple[str, str, str, str]]]:
    """The tests' own tables and indexes (``mig_…``) in the store, and the rows of the wanderer
    (the default one: SQLite in ``.core/``), in order."""
    with sqlite3.connect(root / ".core" / "core.db") as conn:
        history = conn.execute("SELECT scope, version, direction, status FROM wanderer_runs ORDER BY seq").fetchall()
    if store.startswith("sqlite"):
        with sqlite3.connect(root / "core.db") as conn:
            names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'mig_%'")}
    else:
        import asyncpg

        pg = await asyncpg.connect(store)
        try:
            names = {r["relname"] for r in await pg.fetch("SELECT relname FROM pg_class WHERE relname LIKE 'mig_%'")}
        finally:
            await pg.close()
    return names, [tuple(row) for row in history]


def _check_step(results: list[subprocess.CompletedProcess[str]], done: str) -> int:
    """Every process exited 0, or (not waiting) was told who holds the scope; how many did the step."""
    for result in results:
        assert "Traceback" not in result.stdout, result.stdout
        waited = "--wait" in result.args
        told = result.returncode in (1, 2) and "is being migrated by" in result.stdout
        assert result.returncode == 0 or (told and not waited), f"{result.args}: {result.returncode}\n{result.stdout}"
    return sum(done in r.stdout for r in results)


async def test_four_processes_migrating_at_once_apply_each_migration_once(
    tmp_path: Path, store_url: str, figures  # noqa: F811 - the fixtures
) -> None:
    config = _project(tmp_path, store_url)
    schemas, told, seen = [], 0, 0
    for step, args, done in [("up", ["run"], "migrations applied"),
                             ("down", ["rollback", "--version", "0"], "rolled back"),
                             ("up", ["run"], "migrations applied")]:
        results = _four_at_once(config, *args)
        doers = _check_step(results, done)
        told += sum(r.returncode != 0 for r in results)
        notes = _notes(tmp_path)
        code, wh = RUN_NOTES[step]
        assert (notes[code], notes[wh]) == (2, 1), f"{step}: the app's migrations ran {dict(notes)}"
        assert doers == 1, f"{step}: {doers} processes said they migrated:\n" + "\n".join(r.stdout for r in results)
        schema, history = await _schema_and_history(store_url, tmp_path)
        schemas.append(schema)
        rows, seen = history[seen:], len(history)
        runs = Counter((scope, version) for scope, version, direction, status in rows
                       if status == "executing" and direction == step)
        ended = Counter((scope, version) for scope, version, direction, status in rows
                        if status == "succeeded" and direction == step)
        assert len(runs) == MIGRATIONS and set(runs.values()) == {1} and ended == runs, f"{step}: history {rows}"
    assert schemas[0] == schemas[2] >= {"mig_orders", "mig_orders_note"} and schemas[1] == set(), schemas
    figures(f"3 steps (up, down, up) of 4 processes each: each of the {MIGRATIONS} migrations run once per step; "
            f"{told} processes told who held a scope; up -> down -> up leaves the same schema")
