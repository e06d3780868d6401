"""``core migrate`` on the built-in SQLite wanderer with the local supervisor: collection from
every place, scopes, status / run / rollback / ack / discard, checksums, init and shutdown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.migrate_kit import calls, cli, make_project, sql, tables


@pytest.fixture
def project(tmp_path: Path) -> Path:
    config = make_project(tmp_path)
    sql(tmp_path, "store", "20260101000000", "orders",
        "CREATE TABLE mig_orders (id INTEGER PRIMARY KEY, note TEXT DEFAULT 'a;b');",
        "DROP TABLE mig_orders;")
    sql(tmp_path, "store", "20260102000000", "orders_index",
        "CREATE INDEX mig_orders_note ON mig_orders (note);", "DROP INDEX mig_orders_note;")
    sql(tmp_path, "d:wh", "20260103000000", "wh_tables", "-- up\n", "-- down\n")
    return config


def status(config: Path) -> dict[tuple[str, str], dict[str, object]]:
    result = cli(config, "migrate", "status", "--json")
    assert result.exit_code == 0, result.output
    return {(row["scope"], row["version"]): row for row in json.loads(result.output)}


def test_migrations_are_collected_from_every_place_with_canonical_scopes(project: Path) -> None:
    rows = status(project)
    assert sorted(rows) == [
        ("destination:wh", "20250101000000"),  # Destination(migrations=…)
        ("destination:wh", "20250102000000"),  # core_register_migrations, scope 'd:wh'
        ("destination:wh", "20260103000000"),  # migrations/d:wh/
        ("store", "20260101000000"), ("store", "20260102000000"),
    ]
    assert {row["status"] for row in rows.values()} == {"pending"}
    table = cli(project, "migrate", "status").output
    assert table.splitlines()[0].split() == ["VERSION", "NAME", "SCOPE", "STATUS", "WHEN", "BY"]
    assert "5 pending, 0 applied" in table


def test_status_run_rollback_run_leaves_the_schema_as_expected(project: Path, tmp_path: Path) -> None:
    db = tmp_path / "core.db"
    dry = cli(project, "migrate", "run", "--dry-run")
    assert dry.exit_code == 0 and "5 pending (dry run: nothing ran)" in dry.output
    assert tables(db) == set()
    result = cli(project, "migrate", "run")
    assert result.exit_code == 0, result.output
    assert "5 migrations applied" in result.output
    assert "applying 1/5: destination:wh 20250101000000" in result.output  # plain lines off a terminal
    assert tables(db) == {"mig_orders", "mig_orders_note"}
    assert calls(tmp_path) == ["wh.init", "code.up", "code.up", "wh.migrate destination:wh up 20260103000000",
                               "wh.shutdown"]
    rows = status(project)
    assert {row["status"] for row in rows.values()} == {"succeeded (up)"}
    assert all(row["by"] and "@" in str(row["by"]) and row["when"] for row in rows.values())

    back = cli(project, "migrate", "rollback", "--scope", "store", "--version", "20260101000000")
    assert back.exit_code == 0, back.output
    assert tables(db) == {"mig_orders"}
    assert status(project)[("store", "20260102000000")]["status"] == "succeeded (down)"
    assert cli(project, "migrate", "run", "--scope", "store").exit_code == 0
    assert tables(db) == {"mig_orders", "mig_orders_note"}
    # without --version, rollback undoes the newest applied migration of the scope only
    assert cli(project, "migrate", "rollback", "--scope", "s:shop").output.strip() == "nothing to roll back"
    assert "store 20260102000000" in cli(project, "migrate", "rollback", "--scope", "store").output
    assert tables(db) == {"mig_orders"}
    assert cli(project, "migrate", "run", "--version", "20260101000000").output.strip() == "nothing to apply"


def test_the_history_is_append_only_and_a_failure_stops_the_run(project: Path, tmp_path: Path) -> None:
    sql(tmp_path, "store", "20260104000000", "broken", "CREATE TABEL mig_nope (x INT);", "SELECT 1;")
    sql(tmp_path, "store", "20260105000000", "after", "CREATE TABLE mig_after (x INT);", "DROP TABLE mig_after;")
    result = cli(project, "migrate", "run", "--scope", "store")
    assert result.exit_code == 2
    error = result.output.strip().splitlines()[-2]
    assert error.startswith("error: migration store 20260104000000 (broken) failed going up:")
    assert "syntax error" in error and "Traceback" not in result.output
    assert tables(tmp_path / "core.db") == {"mig_orders", "mig_orders_note"}  # the ones before it stay
    rows = status(project)
    assert rows[("store", "20260104000000")]["status"] == "failed (up)"
    assert rows[("store", "20260105000000")]["status"] == "pending"
    import sqlite3

    with sqlite3.connect(tmp_path / "core.db") as conn:
        seen = conn.execute("SELECT status FROM wanderer_runs WHERE version = '20260104000000' ORDER BY seq").fetchall()
    assert [s for (s,) in seen] == ["acknowledged", "executing", "failed"]
    # a migration that must never run: discarded, and the run goes on past it
    assert "discarded: store 20260104000000" in cli(project, "migrate", "discard", "--scope", "store",
                                                    "--version", "20260104000000").output
    assert cli(project, "migrate", "run", "--scope", "store").exit_code == 0
    rows = status(project)
    assert rows[("store", "20260104000000")]["status"] == "discarded"
    assert rows[("store", "20260105000000")]["status"] == "succeeded (up)"
    refused = cli(project, "migrate", "discard", "--scope", "store", "--version", "20260105000000")
    assert refused.exit_code == 2 and "is applied: it cannot be discarded" in refused.output


def test_a_file_changed_after_it_ran_is_refused_until_acknowledged(project: Path, tmp_path: Path) -> None:
    assert cli(project, "migrate", "run").exit_code == 0
    up = tmp_path / "migrations" / "store" / "20260102000000.orders_index.up.sql"
    up.write_text("CREATE INDEX mig_orders_id ON mig_orders (id);")
    assert status(project)[("store", "20260102000000")]["changed"] is True
    refused = cli(project, "migrate", "run")
    assert refused.exit_code == 2
    assert "migration store 20260102000000 (orders index) changed after it ran" in refused.output
    assert "core migrate ack --scope store --version 20260102000000" in refused.output
    acked = cli(project, "migrate", "ack", "--scope", "store", "--version", "20260102000000")
    assert "acknowledged: store 20260102000000 orders index" in acked.output
    row = status(project)[("store", "20260102000000")]
    assert row["changed"] is False and row["status"] == "succeeded (up)"  # accepted as it is, not rerun
    assert cli(project, "migrate", "run").exit_code == 0


def test_new_migrations_can_be_acknowledged_before_they_run(project: Path) -> None:
    result = cli(project, "migrate", "ack", "--scope", "store")
    assert "2 acknowledged" in result.output
    assert {row["status"] for key, row in status(project).items() if key[0] == "store"} == {"acknowledged"}
    assert cli(project, "migrate", "ack", "--scope", "store").output.strip() == "nothing to acknowledge"


def test_triggers_and_actions_inherit_their_parents_logic_and_init_runs_around(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    sql(tmp_path, "s/t:shop/orders", "20260101000000", "a", "-- t", "-- t")
    sql(tmp_path, "d/a:wh/keep", "20260101000000", "b", "-- k", "-- k")
    sql(tmp_path, "destination/action:wh/own", "20260101000000", "c", "-- o", "-- o")
    for scope in ("source/trigger:shop/orders", "d/a:wh/keep", "d/a:wh/own"):
        assert cli(config, "migrate", "run", "--scope", scope).exit_code == 0
    assert calls(tmp_path) == [
        "shop.init", "shop.migrate source/trigger:shop/orders up 20260101000000", "shop.shutdown",
        "wh.init", "wh.migrate destination/action:wh/keep up 20260101000000", "wh.shutdown",
        "wh.init", "own.migrate up 20260101000000", "wh.shutdown",
    ]


@pytest.mark.parametrize(("args", "message"), [
    (["migrate", "run", "--scope", "d:nope"], "error: unknown scope 'd:nope'"),
    (["migrate", "run", "--scope", "warehouse"], "error: scope 'warehouse' is not valid"),
    (["migrate", "run", "--version", "42"], "error: bad version '42'"),
    (["migrate", "rollback", "--scope", "store", "--version", "x"], "error: bad version 'x'"),
    (["migrate", "discard", "--scope", "store", "--version", "20990101000000"],
     "error: store has no migration of version"),
])
def test_bad_input_is_one_clear_error(project: Path, args: list[str], message: str) -> None:
    result = cli(project, *args)
    assert result.exit_code == 2
    assert result.output.startswith(message), result.output
    assert "Traceback" not in result.output and "hint:" in result.output


def test_bad_files_are_named(project: Path, tmp_path: Path) -> None:
    (tmp_path / "migrations" / "store" / "20260109000000.lonely.up.sql").write_text("SELECT 1;")
    result = cli(project, "migrate", "status")
    assert result.exit_code == 2 and "20260109000000.lonely.up.sql has no down file" in result.output
    (tmp_path / "migrations" / "store" / "20260109000000.lonely.up.sql").unlink()
    (tmp_path / "migrations" / "store" / "notes.sql").write_text("")
    assert "notes.sql is not named YYYYMMDDHHMMSS" in cli(project, "migrate", "status").output
    (tmp_path / "migrations" / "store" / "notes.sql").unlink()
    sql(tmp_path, "d:ghost", "20260101000000", "x", "", "")
    result = cli(project, "migrate", "status")
    assert result.exit_code == 2 and "no destination 'ghost' is registered" in result.output


def test_a_destination_without_migrate_says_so(tmp_path: Path) -> None:
    config = make_project(tmp_path, app=(
        "from hookspecs import Action, Destination, hookimpl\n"
        "class Keep(Action):\n    name = 'keep'\n"
        "@hookimpl\ndef core_register_destinations():\n    return [Destination('plain', actions=[Keep()])]\n"))
    sql(tmp_path, "d:plain", "20260101000000", "x", "SELECT 1;", "SELECT 1;")
    result = cli(config, "migrate", "run")
    assert result.exit_code == 2
    assert "destination 'plain' has no migrate() to run" in result.output


def test_no_wanderer_is_a_clear_error(project: Path) -> None:
    project.write_text(project.read_text().replace('wanderer = "', 'old_wanderer = "'))
    project.write_text(project.read_text().replace("old_wanderer", "wanderer").replace(
        f'wanderer = "sqlite:///{project.parent / "core.db"}"', 'wanderer = ""'))
    result = cli(project, "migrate", "status")
    assert result.exit_code == 2 and "no wanderer is configured" in result.output


def test_generate_migration_writes_both_files(project: Path, tmp_path: Path) -> None:
    result = cli(project, "generate", "migration", "add_totals", "--scope", "d/a:wh/keep")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "migrations" / "destination" / "action:wh" / "keep"
    [up] = folder.glob("*.add_totals.up.sql")
    assert len(up.name.split(".")[0]) == 14 and up.with_name(up.name.replace(".up.", ".down.")).exists()
    rows = status(project)
    assert any(key[0] == "destination/action:wh/keep" and row["name"] == "add totals" for key, row in rows.items())
    bad = cli(project, "generate", "migration", "x y", "--scope", "store")
    assert bad.exit_code == 2 and "migration name 'x y' is not valid" in bad.output


def test_start_warns_about_pending_migrations_or_refuses(project: Path) -> None:
    refused = cli(project, "start", "--require-migrations", "--port", "0")
    assert refused.exit_code == 2
    assert "5 pending migration(s)" in refused.output and "refusing to start (--require-migrations)" in refused.output


def test_an_owner_whose_init_fails_is_named(tmp_path: Path) -> None:
    config = make_project(tmp_path, app=(
        "from hookspecs import Action, Destination, hookimpl\n"
        "class Keep(Action):\n    name = 'keep'\n"
        "class Down(Destination):\n"
        "    async def init(self, toolkit):\n        raise ConnectionRefusedError('db is down')\n"
        "    async def migrate(self, toolkit, script):\n        pass\n"
        "@hookimpl\ndef core_register_destinations():\n    return [Down('wh', actions=[Keep()])]\n"))
    sql(tmp_path, "d:wh", "20260101000000", "x", "SELECT 1;", "SELECT 1;")
    result = cli(config, "migrate", "run")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.startswith("error: Destination('wh', actions=['keep']) failed to start (init) before the "
                                    "migrations of destination:wh: ConnectionRefusedError: db is down")
    assert status(config)[("destination:wh", "20260101000000")]["status"] == "pending"
