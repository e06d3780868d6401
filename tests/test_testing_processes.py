"""The end-to-end harness of the kit (:mod:`core.testing.processes`) against the built-in
defaults: SQLite store, memory pub/sub in one process, or no pub/sub across two processes."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from core.testing.processes import RECORDING_APP, Deployment

pytestmark = pytest.mark.slow
#: The installed third-party plugins stay out, as in every core test (tests/conftest.py).
NO_PLUGINS = {"CORE_LOAD_PLUGINS": ""}
#: The recording pipeline without its subscription trigger (no broker here).
HTTP_ONLY_APP = RECORDING_APP.replace(
    '        Source("feed", [SubscriptionTrigger("external", "orders.external")]),\n', ""
).replace('        Flow("feed", source="feed", actions=["sink.record"]),\n', "")


def test_one_process_loads_posted_events_and_stops_cleanly(tmp_path: Path) -> None:
    with Deployment(tmp_path, HTTP_ONLY_APP, pubsub="memory://", env=NO_PLUGINS) as deployment:
        deployment.start()
        assert deployment.url.startswith("http://127.0.0.1:")
        sent = deployment.post("/webhooks/orders", *({"data": {"order": n}} for n in range(3)))
        deployment.wait_until(lambda: set(deployment.loaded()) >= set(sent), "the realtime jobs to load")
        [job] = deployment.wait_for_status(sent[0], "succeeded")
        assert (job["destination"], job["action"], job["event_id"]) == ("sink", "record", sent[0])
    assert deployment.processes == []
    assert "core: stopped" in (tmp_path / "core.log").read_text()


def test_gateway_and_scheduler_processes_share_the_store_without_a_broker(tmp_path: Path) -> None:
    settings = {"scheduler": {"poll_seconds": 0.2}}
    with Deployment(tmp_path, HTTP_ONLY_APP, settings=settings, env=NO_PLUGINS) as deployment:
        deployment.start("scheduler")
        deployment.start("gateway")
        [event] = deployment.post("/webhooks/orders", {"data": {"order": 1}})
        deployment.wait_for_status(event, "succeeded")
        assert deployment.loaded() == [event]
        assert len(deployment.jobs(status="succeeded")) == 1
    assert 'pubsub = ""' in (tmp_path / "core.toml").read_text()
    assert "[scheduler]\npoll_seconds = 0.2" in (tmp_path / "core.toml").read_text()


def test_a_process_that_exits_early_fails_the_wait_with_its_log(tmp_path: Path) -> None:
    deployment = Deployment(tmp_path, "this is not python", env=NO_PLUGINS)
    with pytest.raises(pytest.fail.Exception, match="exited early") as failed:
        deployment.start("scheduler")
    assert "--- scheduler.log" in str(failed.value)
    deployment.stop(check=False)


def test_a_stop_that_is_not_clean_fails(tmp_path: Path) -> None:
    deployment = Deployment(tmp_path, HTTP_ONLY_APP, env=NO_PLUGINS)
    started = deployment.start("scheduler")
    started.process.send_signal(signal.SIGKILL)
    started.process.wait()
    with pytest.raises(AssertionError, match="did not stop cleanly"):
        deployment.stop()
