"""Scopes as Blacksmith writes them, the local supervisor's limits, and the wanderer's upgrade."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.builtin.local.supervisor import LocalSupervisor
from core.builtin.sqlite.wanderer import SQLiteWanderer
from core.wanderer.runner import MigrationFailed, MigrationRunner
from core.wanderer.scopes import ScopeError, canonical, parse_scope
from hookspecs import Direction, Migration, MigrationRun, Status, new_id


@pytest.mark.parametrize(("text", "expected"), [
    ("source:shop", "source:shop"), ("s:shop", "source:shop"),
    ("source/trigger:shop/orders", "source/trigger:shop/orders"), ("s/t:shop/orders", "source/trigger:shop/orders"),
    ("destination:wh", "destination:wh"), ("d:wh", "destination:wh"),
    ("destination/action:wh/insert", "destination/action:wh/insert"), ("d/a:wh/insert", "destination/action:wh/insert"),
    ("store", "store"),
])
def test_every_spelling_has_one_canonical_form(text: str, expected: str) -> None:
    assert canonical(text) == expected


@pytest.mark.parametrize("text", ["wh", "x:wh", "d:", "d:wh/insert", "d/a:wh", "d:w h", "s/t:a/b/c"])
def test_bad_scopes_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ScopeError, match="write it as one of: source:S"):
        parse_scope(text)


def test_a_scope_knows_its_parent() -> None:
    assert str(parse_scope("d/a:wh/insert").parent) == "destination:wh"
    assert parse_scope("d:wh").parent is None


async def _noop() -> None:
    return None


async def test_local_supervisor_refuses_a_run_another_process_has_in_progress(tmp_path: Path) -> None:
    wanderer = SQLiteWanderer(f"sqlite:///{tmp_path / 'core.db'}")
    await wanderer.open()
    supervisor = LocalSupervisor("local://race")
    try:
        migration = Migration("001", "destination:wh", "create", _noop, _noop)
        for status in (Status.ACKNOWLEDGED, Status.EXECUTING):  # what another process left, just now
            await wanderer.record(MigrationRun(
                id=new_id(), version="001", scope="destination:wh", name="create", direction=Direction.UP,
                status=status, created_at=datetime.now(UTC), actor="bob@other (pid 9)"))
        runner = MigrationRunner(wanderer, [migration], supervisor=supervisor, owner="ann@here (pid 1)",
                                 shared=False)
        with pytest.raises(MigrationFailed, match=r"being migrated by bob@other \(pid 9\).*local://"):
            await runner.up()
        # a shared supervisor decides alone: the lease is free, so that run is taken as crashed
        runner = MigrationRunner(wanderer, [migration], supervisor=supervisor, owner="ann@here (pid 1)")
        assert [m.version for m in await runner.up()] == ["001"]
    finally:
        await supervisor.close()
        await wanderer.close()


async def test_a_second_runner_is_told_who_holds_the_scope(tmp_path: Path) -> None:
    wanderer = SQLiteWanderer(f"sqlite:///{tmp_path / 'core.db'}")
    await wanderer.open()
    supervisor = LocalSupervisor("local://holder")
    try:
        held = await supervisor.acquire("migrations:destination:wh", owner="bob@other (pid 9)", ttl=60)
        assert held is not None
        runner = MigrationRunner(wanderer, [Migration("001", "destination:wh", "create", _noop, _noop)],
                                 supervisor=supervisor, owner="ann", wait=0.3)
        with pytest.raises(MigrationFailed, match=r"destination:wh is being migrated by bob@other \(pid 9\)"):
            await runner.up()
    finally:
        await supervisor.close()
        await wanderer.close()


async def test_the_wanderer_table_is_upgraded_from_schema_1(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.executescript("""
            CREATE TABLE schema_versions (component VARCHAR(64) PRIMARY KEY, version INTEGER NOT NULL,
                                          migrated_at DATETIME NOT NULL);
            INSERT INTO schema_versions VALUES ('wanderer', 1, '2026-01-01 00:00:00');
            CREATE TABLE wanderer_runs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id VARCHAR(27) NOT NULL UNIQUE,
                scope VARCHAR(255) NOT NULL, version VARCHAR(64) NOT NULL, name VARCHAR(255) NOT NULL,
                direction VARCHAR(8) NOT NULL, status VARCHAR(16) NOT NULL, error TEXT,
                created_at DATETIME NOT NULL);
            INSERT INTO wanderer_runs (id, scope, version, name, direction, status, created_at)
            VALUES ('2A0000000000000000000000001', 'destination:wh', '001', 'old', 'up', 'succeeded',
                    '2026-01-01 00:00:00.000000');
        """)
    wanderer = SQLiteWanderer(f"sqlite:///{db}")
    await wanderer.open()
    try:
        [old] = await wanderer.history("destination:wh")
        assert (old.version, old.actor, old.checksum) == ("001", None, None)
        assert await wanderer.applied("destination:wh") == ["001"]
    finally:
        await wanderer.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM schema_versions WHERE component = 'wanderer'").fetchone() == (2,)


def test_the_pipeline_kit_accepts_the_owners_scope_in_any_spelling_or_empty() -> None:
    from core.testing.pipeline import check_migrations

    own = [Migration("1", "", "a", _noop, _noop), Migration("2", "d:wh", "b", _noop, _noop),
           Migration("3", "destination:wh", "c", _noop, _noop)]
    check_migrations("destination 'wh'", own, "destination:wh")
    with pytest.raises(AssertionError, match="is of scope destination:other, not its own destination:wh"):
        check_migrations("destination 'wh'", [Migration("1", "d:other", "a", _noop, _noop)], "destination:wh")
    with pytest.raises(AssertionError, match="scope 'nope' is not valid"):
        check_migrations("destination 'wh'", [Migration("1", "nope", "a", _noop, _noop)], "destination:wh")
