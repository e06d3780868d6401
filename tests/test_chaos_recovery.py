"""Fast recovery across real processes on the default configuration (SQLite store, the
supervisor following it): the job of a scheduler SIGKILLed mid-load is delivered again by
the scheduler running beside it once the dead node's heartbeat lapses, not after its claim
lease (issue 12). Prints the seconds from the kill to the delivery."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from core.testing.processes import Deployment
from hookspecs import OWNER_LAPSED, Status
from tests.chaos_kit import APP, figures, loads, open_store  # noqa: F401 - fixtures
from tests.scheduler_kit import write_jobs

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(120)]

#: The registry's node TTL (and ``nodes.ttl_seconds``) and heartbeat of the test, in seconds.
TTL, HEARTBEAT = 2.0, 0.5
#: The claim lease: far longer than the test may wait, so only fast recovery can deliver.
LEASE = 300


def _deployment(directory: Path) -> Deployment:
    # No supervisor key: the default follows the SQLite store, and so does the node registry.
    (directory / "mode").write_text("slow 100")
    return Deployment(
        directory, APP.replace("MAX_RETRIES", "3"),
        settings={"wanderer": "",
                  "scheduler": {"poll_seconds": 0.2, "lease_seconds": LEASE, "load_timeout": 120, "grace_seconds": 1},
                  "options.sqlite.supervisor": {"node_ttl": TTL}},
        env={"CORE_NODES_TTL_SECONDS": str(TTL), "CORE_NODES_HEARTBEAT_SECONDS": str(HEARTBEAT)},
    )


async def test_the_job_of_a_sigkilled_scheduler_is_delivered_again_once_its_heartbeat_lapses(
    tmp_path: Path, figures  # noqa: F811 - the fixture
) -> None:
    store = await open_store(tmp_path)
    try:
        [job] = await write_jobs(store, "warehouse", "export")
        with _deployment(tmp_path) as deploy:
            first = deploy.start("scheduler")
            deploy.wait_until(lambda: loads(tmp_path), "the first scheduler to start the load")
            deploy.start("scheduler")  # beside it: the action's lease is taken, it skips the ticks
            (tmp_path / "mode").write_text("ok")
            killed = time.time()
            first.process.send_signal(signal.SIGKILL)
            first.process.wait(timeout=30)
            deploy.processes.remove(first)
            deploy.wait_until(lambda: loads(tmp_path, "done"), "the second scheduler to deliver the job", 60)
            took = loads(tmp_path, "done")[0][0] - killed
        got = await store.get_job(job.id)
        assert got is not None
        assert [(t.state_after, t.attempt) for t in got.transitions] == [
            (Status.ACKNOWLEDGED, 0), (Status.EXECUTING, 1), (Status.FAILED, 1),
            (Status.EXECUTING, 2), (Status.SUCCEEDED, 2),
        ], deploy.logs()
        assert got.transitions[2].error == OWNER_LAPSED
        assert [ids for _, ids in loads(tmp_path)] == [[job.id], [job.id]]
        assert took < LEASE / 10, f"delivered again {took:.1f}s after the kill: after the lease, not the heartbeat"
        figures(f"SIGKILL to delivered again by the other scheduler {took:.2f}s "
                f"(node TTL {TTL:g}s, heartbeat {HEARTBEAT:g}s, claim lease {LEASE}s)")
    finally:
        await store.close()
