"""``core events`` and ``core jobs`` against a real SQLite store."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from core.builtin.sqlite.store import SQLiteStore
from core.cli import main
from hookspecs import Claim, Job, Status, Transition, new_id
from tests.scheduler_kit import write_jobs


def seed(project: Path) -> list[Job]:
    """Three jobs of crm.push: the first discarded, the second failed, the third untouched."""
    (project / "core.toml").write_text('store = "sqlite:///core.db"\nwanderer = ""\n')

    async def run() -> list[Job]:
        store = SQLiteStore(f"sqlite:///{project / 'core.db'}")
        await store.open()
        try:
            jobs = sorted(await write_jobs(store, "crm", "push", 3), key=lambda j: j.data["n"])
            now = datetime.now(UTC)
            await store.claim_ids(Claim("seed"), [job.id for job in jobs[:2]], now=now)  # legal moves only
            await store.add_transitions([
                Transition(id=new_id(), job_id=job.id, event_id=job.event_id, attempt=1,
                           state_before=Status.EXECUTING, state_after=status, created_at=now, error="HTTP 500")
                for job, status in zip(jobs, (Status.DISCARDED, Status.FAILED), strict=False)
            ])
            return jobs
        finally:
            await store.close()

    return asyncio.run(run())


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_events_list_and_show(project: Path) -> None:
    jobs = seed(project)
    code, out, _ = cli("events", "list")
    assert code == 0 and out.splitlines()[0].split() == ["ID", "SOURCE", "NAME", "RECEIVED", "DATA"]
    assert all(job.event_id in out for job in jobs)
    code, out, _ = cli("events", "list", "--source", "elsewhere")
    assert (code, out.strip()) == (0, "No events match.")
    code, out, _ = cli("events", "list", "--json", "--limit", "2", "--after", "1h")
    assert code == 0 and len(json.loads(out)) == 2
    code, out, _ = cli("events", "show", jobs[0].event_id)
    assert code == 0 and jobs[0].id in out and "discarded" in out
    code, out, _ = cli("events", "show", jobs[0].event_id, "--json")
    assert json.loads(out)["jobs"][0]["id"] == jobs[0].id


def test_jobs_list_filters_and_show_has_transitions(project: Path) -> None:
    jobs = seed(project)
    code, out, _ = cli("jobs", "list", "--status", "discarded", "--status", "failed")
    assert code == 0
    assert jobs[0].id in out and jobs[1].id in out and jobs[2].id not in out
    code, out, _ = cli(
        "jobs", "list", "--destination", "crm", "--action", "push", "--event", jobs[2].event_id, "--json"
    )
    assert [j["id"] for j in json.loads(out)] == [jobs[2].id]
    code, out, _ = cli("jobs", "show", jobs[0].id)
    assert code == 0 and "executing -> discarded" in out and "HTTP 500" in out
    shown = json.loads(cli("jobs", "show", jobs[0].id, "--json")[1])
    assert [t["state_after"] for t in shown["transitions"]] == ["acknowledged", "executing", "discarded"]


def test_jobs_retry_appends_awaiting_and_refuses_the_rest(project: Path) -> None:
    discarded, failed, fresh = seed(project)
    code, out, err = cli("jobs", "retry", discarded.id, failed.id, fresh.id, "nope")
    assert code == 1
    assert f"{discarded.id}: discarded -> awaiting" in out and f"{failed.id}: failed -> awaiting" in out
    assert f"{fresh.id}: is acknowledged" in err and "nope: no such job" in err
    shown = json.loads(cli("jobs", "show", discarded.id, "--json")[1])
    assert shown["status"] == "awaiting" and shown["attempt"] == 1
    assert shown["transitions"][-1]["state_before"] == "discarded"
    assert cli("jobs", "retry", discarded.id)[0] == 1  # awaiting now: nothing to retry


def test_unknown_ids_and_bad_times_are_errors_for_people(project: Path) -> None:
    seed(project)
    code, _, err = cli("jobs", "show", "missing")
    assert code == 2 and "no job 'missing'" in err and "Traceback" not in err
    code, _, err = cli("events", "show", "missing")
    assert code == 2 and "no event 'missing'" in err
    code, _, err = cli("events", "list", "--after", "yesterday")
    assert code == 2 and "duration ago" in err
