"""The migration runner against the built-in SQL wanderer and the in-process supervisor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.builtin.local.supervisor import LocalSupervisor
from core.builtin.sqlite.wanderer import SQLiteWanderer
from core.wanderer.runner import MigrationFailed, MigrationRunner
from hookspecs import Direction, Migration, Status


class Db:
    """A pretend database the migrations change: the set of tables that exist."""

    def __init__(self) -> None:
        self.tables: list[str] = []
        self.calls: list[str] = []

    def migration(self, version: str, table: str, scope: str = "destination:warehouse",
                  fail_up: bool = False) -> Migration:
        async def up() -> None:
            self.calls.append(f"up {scope} {version}")
            if fail_up:
                raise RuntimeError(f"cannot create {table}")
            self.tables.append(table)

        async def down() -> None:
            self.calls.append(f"down {scope} {version}")
            self.tables.remove(table)

        return Migration(version, scope, f"create {table}", up, down)


@pytest.fixture
async def wanderer(tmp_path: Path) -> AsyncIterator[SQLiteWanderer]:
    wanderer = SQLiteWanderer(f"sqlite:///{tmp_path / 'core.db'}")
    await wanderer.open()
    yield wanderer
    await wanderer.close()


async def test_up_applies_pending_in_version_order_per_scope(wanderer: SQLiteWanderer) -> None:
    db = Db()
    migrations = [db.migration("002", "items"), db.migration("001", "orders"),
                  db.migration("001", "logs", scope="destination:audit")]
    runner = MigrationRunner(wanderer, migrations)
    assert [m.version for m in await runner.pending()] == ["001", "001", "002"]
    done = await runner.up()
    assert [(m.scope, m.version) for m in done] == [
        ("destination:audit", "001"), ("destination:warehouse", "001"), ("destination:warehouse", "002")]
    assert db.tables == ["logs", "orders", "items"]
    assert await wanderer.applied("destination:warehouse") == ["001", "002"]
    assert await runner.pending() == []
    assert await runner.up() == []  # nothing runs twice
    statuses = [r.status for r in await wanderer.history("destination:warehouse")]
    assert statuses == [Status.ACKNOWLEDGED, Status.EXECUTING, Status.SUCCEEDED] * 2


async def test_a_failure_is_recorded_and_stops_the_scope(wanderer: SQLiteWanderer) -> None:
    db = Db()
    runner = MigrationRunner(wanderer, [db.migration("001", "orders"), db.migration("002", "bad", fail_up=True),
                                        db.migration("003", "later")])
    with pytest.raises(MigrationFailed, match=r"destination:warehouse 002 \(create bad\) failed going up"):
        await runner.up()
    assert db.tables == ["orders"] and "up destination:warehouse 003" not in db.calls
    assert await wanderer.applied("destination:warehouse") == ["001"]
    last = (await wanderer.history("destination:warehouse"))[-1]
    assert (last.version, last.status, last.error) == ("002", Status.FAILED, "RuntimeError: cannot create bad")


async def test_down_rolls_back_newest_first_to_a_target(wanderer: SQLiteWanderer) -> None:
    db = Db()
    runner = MigrationRunner(wanderer, [db.migration(v, f"t{v}") for v in ("001", "002", "003")])
    await runner.up()
    done = await runner.down("destination:warehouse", to="001")
    assert [m.version for m in done] == ["003", "002"]
    assert db.tables == ["t001"]
    assert await wanderer.applied("destination:warehouse") == ["001"]
    runs = await wanderer.history("destination:warehouse")
    assert [(r.version, r.direction) for r in runs if r.status is Status.SUCCEEDED][-2:] == [
        ("003", Direction.DOWN), ("002", Direction.DOWN)]
    await runner.down("destination:warehouse")
    assert db.tables == [] and await wanderer.applied("destination:warehouse") == []
    assert [m.version for m in await runner.up()] == ["001", "002", "003"]  # and up again


async def test_down_refuses_versions_no_plugin_offers(wanderer: SQLiteWanderer) -> None:
    db = Db()
    await MigrationRunner(wanderer, [db.migration("001", "a"), db.migration("002", "b")]).up()
    runner = MigrationRunner(wanderer, [db.migration("001", "a")])
    with pytest.raises(MigrationFailed, match="version.s. 002 are applied but no installed plugin offers them"):
        await runner.down("destination:warehouse")
    assert db.tables == ["a", "b"]


def test_duplicate_versions_are_refused(tmp_path: Path) -> None:
    db = Db()
    with pytest.raises(MigrationFailed, match="two migrations of destination:warehouse have version 001"):
        MigrationRunner(SQLiteWanderer(f"sqlite:///{tmp_path / 'x.db'}"), [db.migration("001", "a"),
                                                                         db.migration("001", "b")])


async def test_a_scope_held_by_another_node_is_not_migrated(wanderer: SQLiteWanderer) -> None:
    supervisor = LocalSupervisor("local://runner")
    await supervisor.open()
    try:
        db = Db()
        held = await supervisor.acquire("migrations:destination:warehouse", owner="node-b", ttl=60)
        assert held is not None
        runner = MigrationRunner(wanderer, [db.migration("001", "a")], supervisor=supervisor, owner="node-a")
        with pytest.raises(MigrationFailed, match="being migrated by node-b"):
            await runner.up()
        assert db.calls == [] and await wanderer.history() == []
        await supervisor.release(held)
        assert [m.version for m in await runner.up()] == ["001"]
        # the runner gave its lease back: another node may migrate now
        again = await supervisor.acquire("migrations:destination:warehouse", owner="node-b", ttl=60)
        assert again is not None
    finally:
        await supervisor.close()
