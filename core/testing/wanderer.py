"""The wanderer conformance suite: the history of migration runs, per scope.

Checks what the wanderer protocol of :mod:`hookspecs` promises: every recorded transition is kept, oldest
first; ``applied`` lists the versions whose latest run (``acknowledged`` marks aside) is a succeeded ``up``,
in version order; who ran it and the file's checksum are kept.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core.testing._base import AdapterPool, AdapterSuite
from hookspecs import Direction, MigrationRun, Status, Wanderer, new_id

_T0 = datetime(2026, 1, 1, tzinfo=UTC)


class RunLog:
    """Builds :class:`MigrationRun` records of one scope, one second apart, in order."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.count = 0

    def run(
        self, version: str, status: Status, direction: Direction = Direction.UP, error: str | None = None
    ) -> MigrationRun:
        self.count += 1
        created = _T0 + timedelta(seconds=self.count)
        return MigrationRun(
            id=new_id(created.timestamp()), version=version, scope=self.scope, name=f"step {version}",
            direction=direction, status=status, created_at=created, error=error,
        )

    def succeeded(self, version: str, direction: Direction = Direction.UP) -> list[MigrationRun]:
        """The two transitions of a run that went well: ``executing`` then ``succeeded``."""
        return [self.run(version, Status.EXECUTING, direction), self.run(version, Status.SUCCEEDED, direction)]


async def record_all(wanderer: Wanderer, runs: list[MigrationRun]) -> None:
    for run in runs:
        await wanderer.record(run)


class WandererSuite(AdapterSuite):
    """Subclass it and override ``adapter_url`` (or ``make_adapter``)."""

    kind = "wanderer"

    @pytest.fixture
    def log(self) -> RunLog:
        """Run records of a scope of this test alone."""
        return RunLog(f"destination:conformance_{uuid.uuid4().hex[:10]}")

    async def test_adapter_is_a_wanderer(self, adapter: Wanderer) -> None:
        assert isinstance(adapter, Wanderer)

    async def test_history_keeps_every_transition_oldest_first(self, adapter: Wanderer, log: RunLog) -> None:
        runs = [*log.succeeded("002"), *log.succeeded("001"), log.run("003", Status.FAILED, error="boom")]
        await record_all(adapter, runs)
        history = await adapter.history(log.scope)
        assert [(r.id, r.version, r.direction, r.status) for r in history] == [
            (r.id, r.version, r.direction, r.status) for r in runs
        ]
        assert history[-1].error == "boom"
        assert history[0].name == "step 002" and history[0].scope == log.scope

    async def test_history_of_one_scope_or_all(self, adapter: Wanderer, log: RunLog) -> None:
        other = RunLog(log.scope + "/action:load")
        await record_all(adapter, [*log.succeeded("001"), *other.succeeded("001")])
        assert {r.scope for r in await adapter.history(log.scope)} == {log.scope}
        assert len(await adapter.history(other.scope)) == 2
        every = await adapter.history()
        assert {log.scope, other.scope} <= {r.scope for r in every}

    async def test_applied_lists_succeeded_ups_in_version_order(self, adapter: Wanderer, log: RunLog) -> None:
        await record_all(adapter, [*log.succeeded("003"), *log.succeeded("001"), *log.succeeded("002")])
        assert await adapter.applied(log.scope) == ["001", "002", "003"]

    async def test_a_down_unapplies_and_a_new_up_reapplies(self, adapter: Wanderer, log: RunLog) -> None:
        await record_all(adapter, [*log.succeeded("001"), *log.succeeded("002")])
        await record_all(adapter, log.succeeded("002", Direction.DOWN))
        assert await adapter.applied(log.scope) == ["001"]
        await record_all(adapter, log.succeeded("002"))
        assert await adapter.applied(log.scope) == ["001", "002"]

    async def test_failed_or_unfinished_runs_are_not_applied(self, adapter: Wanderer, log: RunLog) -> None:
        await record_all(adapter, [
            *log.succeeded("001"),
            log.run("002", Status.EXECUTING),
            log.run("002", Status.FAILED, error="syntax error"),
            log.run("003", Status.EXECUTING),
        ])
        assert await adapter.applied(log.scope) == ["001"]

    async def test_the_latest_run_decides_even_a_failed_one(
        self, adapter: Wanderer, log: RunLog
    ) -> None:
        await record_all(adapter, log.succeeded("001"))
        await record_all(adapter, [
            log.run("001", Status.EXECUTING, Direction.DOWN),
            log.run("001", Status.FAILED, Direction.DOWN, error="cannot drop"),
        ])
        assert await adapter.applied(log.scope) == []

    async def test_an_acknowledged_mark_changes_nothing(self, adapter: Wanderer, log: RunLog) -> None:
        await record_all(adapter, [*log.succeeded("001"), log.run("001", Status.ACKNOWLEDGED),
                                   log.run("002", Status.ACKNOWLEDGED)])
        assert await adapter.applied(log.scope) == ["001"]

    async def test_actor_and_checksum_are_kept(self, adapter: Wanderer, log: RunLog) -> None:
        run = dataclasses.replace(log.run("001", Status.SUCCEEDED), checksum="ab" * 32, actor="ann@box (pid 7)")
        await adapter.record(run)
        [kept] = await adapter.history(log.scope)
        assert (kept.checksum, kept.actor) == ("ab" * 32, "ann@box (pid 7)")

    async def test_scopes_are_independent(self, adapter: Wanderer, log: RunLog) -> None:
        other = RunLog(log.scope + "-other")
        await record_all(adapter, [*log.succeeded("001"), *other.succeeded("007")])
        assert await adapter.applied(log.scope) == ["001"]
        assert await adapter.applied(other.scope) == ["007"]
        assert await adapter.applied(log.scope + "-unknown") == []

    async def test_history_survives_a_reopen(self, adapters: AdapterPool, log: RunLog) -> None:
        first = await adapters.open()
        await record_all(first, log.succeeded("001"))
        await first.close()
        await first.open()
        second = await adapters.open()
        assert [r.status for r in await second.history(log.scope)] == [Status.EXECUTING, Status.SUCCEEDED]
        assert await second.applied(log.scope) == ["001"]
