"""Issue 22, the read commands as a newcomer meets them: filters take what the table prints
(item 2), lists show the newest and say how many of how many (item 3), a read command run
outside the project creates no store (item 7), and discarded jobs are retried in bulk (item 9), a page at a time."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from core.builtin.sqlite.store import SQLiteStore
from core.cli import main
from core.paging import SCAN_PAGE
from hookspecs import Claim, Job, RefusedTransition, Status, Transition, WhereJob, new_id
from tests.scheduler_kit import write_jobs

APP = '''
from hookspecs import Action, Destination, Schedule, hookimpl


class Push(Action):
    name = "push"
    schedule = Schedule(interval="@every 10s")

    async def load(self, toolkit, queue):
        return None


class Log(Action):
    name = "log"
    schedule = Schedule(realtime=True)

    async def load(self, toolkit, queue):
        return None


@hookimpl
def core_register_destinations():
    return [Destination("crm", actions=[Push()]), Destination("logger", actions=[Log()])]
'''


def seed(project: Path, pushes: int = 3, logs: int = 0, status: Status | None = None) -> list[Job]:
    """A project with the app above and ``pushes`` crm.push jobs (then ``logs`` logger.log jobs)."""
    (project / "app.py").write_text(APP)
    (project / "core.toml").write_text('app = "app.py"\nstore = "sqlite:///core.db"\nwanderer = ""\n')

    async def run() -> list[Job]:
        store = SQLiteStore(f"sqlite:///{project / 'core.db'}")
        await store.open()
        try:
            jobs = await write_jobs(store, "crm", "push", pushes) + await write_jobs(store, "logger", "log", logs)
            if status is not None:
                now = datetime.now(UTC)
                await store.claim_ids(Claim("seed"), [j.id for j in jobs], now=now)  # legal moves only
                await store.add_transitions([
                    Transition(id=new_id(), job_id=j.id, event_id=j.event_id, attempt=1, state_before=Status.EXECUTING,
                               state_after=status, created_at=now, error="warehouse busy")
                    for j in jobs
                ])
            return sorted(jobs, key=lambda j: j.id)
        finally:
            await store.close()

    return asyncio.run(run())


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_action_filter_takes_destination_dot_action_as_the_table_prints_it(project: Path) -> None:
    pushes = [j for j in seed(project, pushes=2, logs=2) if j.destination == "crm"]
    code, out, _ = cli("jobs", "list")
    assert code == 0 and "crm.push" in out and "logger.log" in out
    code, out, err = cli("jobs", "list", "--action", "crm.push", "--json")
    assert code == 0, err
    assert sorted(j["id"] for j in json.loads(out)) == sorted(j.id for j in pushes)
    code, out, _ = cli("jobs", "list", "--action", "push", "--json")
    assert code == 0 and len(json.loads(out)) == 2


def test_a_destination_or_action_the_pipeline_lacks_is_refused_listing_those_it_has(project: Path) -> None:
    seed(project)
    code, _, err = cli("jobs", "list", "--action", "crm.pull")
    assert code == 2 and "--action 'crm.pull': the pipeline has no such action" in err
    assert "crm.push" in err and "logger.log" in err and "Traceback" not in err
    code, _, err = cli("jobs", "list", "--destination", "warehouse")
    assert code == 2 and "no such destination" in err and "crm, logger" in err


def test_list_shows_the_newest_first_and_says_how_many_of_how_many(project: Path) -> None:
    jobs = seed(project, pushes=7)
    code, out, _ = cli("jobs", "list", "--limit", "3")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[1:4]] == [j.id for j in reversed(jobs[-3:])]
    assert lines[-1] == "showing 3 of 7 jobs, newest first (use --limit N for more, --after/--before for a time range)"
    code, out, _ = cli("events", "list", "--limit", "2")
    assert code == 0 and out.splitlines()[-1].startswith("showing 2 of 7 events, newest first")
    assert out.splitlines()[1].split()[0] == max(j.event_id for j in jobs)
    code, out, _ = cli("jobs", "list")
    assert out.splitlines()[-1] == "showing 7 of 7 jobs, newest first"


def test_due_shows_the_next_tick_of_a_scheduled_job(project: Path) -> None:
    jobs = seed(project, pushes=1, logs=1)
    code, out, _ = cli("jobs", "list")
    assert code == 0
    rows = {line.split()[2]: line for line in out.splitlines()[1:-1]}
    assert " by 20" in rows["crm.push"]  # "by <time>": @every 10s ticks from the scheduler's start
    assert "now (realtime)" in rows["logger.log"]
    push = next(j for j in jobs if j.destination == "crm")
    assert "due:         by 20" in cli("jobs", "show", push.id)[1]
    assert " by 20" in cli("events", "show", push.event_id)[1]


def test_jobs_show_prints_an_error_in_full(project: Path) -> None:
    job = seed(project, pushes=1)[0]
    long_error = "warehouse refused the batch: " + "x" * 300 + " END"

    async def fail() -> None:
        store = SQLiteStore(f"sqlite:///{project / 'core.db'}")
        await store.open()
        await store.claim_ids(Claim("test"), [job.id], now=datetime.now(UTC))  # legal moves only
        await store.add_transitions([Transition(
            id=new_id(), job_id=job.id, event_id=job.event_id, attempt=1, state_before=Status.EXECUTING,
            state_after=Status.FAILED, created_at=datetime.now(UTC), error=long_error,
        )])
        await store.close()

    asyncio.run(fail())
    code, out, _ = cli("jobs", "show", job.id)
    assert code == 0 and long_error in out


def test_a_read_command_outside_the_project_creates_no_store(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for args in (("jobs", "list"), ("events", "list"), ("jobs", "show", "x"), ("jobs", "retry", "x")):
        code, out, err = cli(*args)
        assert code == 2, (args, out, err)
        assert f"no store at {elsewhere / '.core' / 'core.db'}" in err
        assert "run from your project or pass --config" in err and "No jobs match" not in out
    assert list(elsewhere.iterdir()) == []


def test_retry_by_status_retries_every_discarded_job(project: Path) -> None:
    discarded = seed(project, pushes=3, logs=2, status=Status.DISCARDED)
    code, out, err = cli("jobs", "retry", "--status", "discarded", "--action", "crm.push")
    assert code == 0, err
    assert "crm.push: 3 discarded job(s) -> awaiting (due now)" in out and "retried 3 job(s)" in out
    code, out, _ = cli("jobs", "list", "--status", "awaiting", "--json")
    assert sorted(j["id"] for j in json.loads(out)) == sorted(j.id for j in discarded if j.destination == "crm")
    code, out, _ = cli("jobs", "retry", "--status", "discarded")
    assert code == 0 and "retried 2 job(s)" in out
    code, _, err = cli("jobs", "retry")
    assert code == 2 and "give job ids, or --status" in err


def test_retry_by_status_reads_a_page_at_a_time(project: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    total = 2 * SCAN_PAGE + 5
    discarded = seed(project, pushes=total, status=Status.DISCARDED)
    limits: list[int] = []
    batches: list[int] = []
    find, add = SQLiteStore.find_jobs, SQLiteStore.add_transitions

    async def find_jobs(self: SQLiteStore, where: WhereJob) -> list[Job]:
        limits.append(where.page.limit)
        return await find(self, where)

    async def add_transitions(self: SQLiteStore, transitions: Sequence[Transition]) -> list[RefusedTransition]:
        batches.append(len(transitions))
        return await add(self, transitions)

    monkeypatch.setattr(SQLiteStore, "find_jobs", find_jobs)
    monkeypatch.setattr(SQLiteStore, "add_transitions", add_transitions)
    code, out, err = cli("jobs", "retry", "--status", "discarded", "--action", "crm.push", "--reason", "crm is back")
    assert code == 0, err
    assert f"crm.push: {total} discarded job(s) -> awaiting (due now)" in out and f"retried {total} job(s)" in out
    assert limits and max(limits) <= SCAN_PAGE and max(batches) <= SCAN_PAGE and len(batches) == 3
    with sqlite3.connect(project / "core.db") as conn:
        notes = dict(conn.execute(
            "SELECT job_id, error FROM transitions WHERE state_after = 'awaiting' AND error LIKE 'retried by %'"
        ).fetchall())
    assert notes.keys() == {j.id for j in discarded} and all(n.endswith(": crm is back") for n in notes.values())
