"""The scheduler end to end, in process, on the real SQLite store and the in-memory broker."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from core.errors import CoreError
from core.scheduler import run_scheduler
from hookspecs import Action, Destination, Discard, Queue, Schedule, Status, Then, Toolkit
from tests.scheduler_kit import all_in, eventually, ingest, opened, scheduling, statuses

EVERY_SECOND = Schedule(interval="@every 1s", max_retries=1)
REALTIME = Schedule(realtime=True, interval="@every 1s", max_retries=1)


class Recorder(Action):
    """Records every queue it loads; answers with ``answer(queue)``."""

    def __init__(self, name: str, schedule: Schedule | None = None, answer: Any = None) -> None:
        self.name = name  # type: ignore[misc]
        self.schedule = schedule
        self.answer = answer
        self.queues: list[Queue] = []

    @property
    def loaded(self) -> list[str]:
        return [job.id for queue in self.queues for job in queue.jobs]

    async def load(self, toolkit: Toolkit, queue: Queue) -> Any:
        self.queues.append(queue)
        return self.answer(queue) if self.answer else None


async def test_due_jobs_are_loaded_in_one_batch_and_succeed(tmp_path: Path) -> None:
    action = Recorder("sync", EVERY_SECOND)
    async with opened(tmp_path, [Destination("warehouse", [action])]) as runtime:
        jobs = await ingest(runtime, "warehouse", "sync", 5)
        async with scheduling(runtime):
            await eventually(lambda: all_in(runtime, [j.id for j in jobs], Status.SUCCEEDED))
        assert len(action.queues) == 1
        queue = action.queues[0]
        assert sorted(e.id for e in queue.events) == sorted(j.event_id for j in jobs)
        assert all(e.source == "test" and e.name == "thing" and len(e.jobs) == 1 for e in queue.events)
        assert all(job.status == Status.EXECUTING and job.attempt == 1 for job in queue.jobs)
        history = await runtime.store.get_job(jobs[0].id)
        assert history is not None
        assert [(t.state_before, t.state_after, t.attempt) for t in history.transitions] == [
            (None, Status.ACKNOWLEDGED, 0),
            (Status.ACKNOWLEDGED, Status.EXECUTING, 1),
            (Status.EXECUTING, Status.SUCCEEDED, 1),
        ]


async def test_recorded_transitions_are_reported_to_observers(tmp_path: Path) -> None:
    from tests import scheduler_app

    scheduler_app.TRANSITIONS.clear()
    action = Recorder("sync", EVERY_SECOND, answer=lambda q: [Then(jobs=[q.jobs[0].id])])
    async with opened(tmp_path, [Destination("warehouse", [action])]) as runtime:
        jobs = await ingest(runtime, "warehouse", "sync", 2)
        async with scheduling(runtime):
            await eventually(lambda: _true(len(scheduler_app.TRANSITIONS) == 2))
    reported = {t.job_id: t.state_after for t in scheduler_app.TRANSITIONS}
    assert sorted(reported.values()) == [Status.SUCCEEDED, Status.UNKNOWN]
    assert set(reported) == {j.id for j in jobs}


async def test_batches_are_capped_by_batch_size(tmp_path: Path) -> None:
    action = Recorder("sync", EVERY_SECOND)
    async with opened(tmp_path, [Destination("warehouse", [action])], **{"scheduler.batch_size": 4}) as runtime:
        jobs = await ingest(runtime, "warehouse", "sync", 10)
        async with scheduling(runtime):
            await eventually(lambda: all_in(runtime, [j.id for j in jobs], Status.SUCCEEDED))
        assert [len(q) for q in action.queues] == [4, 4, 2]


async def test_a_discard_error_is_discarded_after_one_attempt_with_its_follow_ups(tmp_path: Path) -> None:
    many_retries = Schedule(interval="@every 1s", max_retries=72)
    gone = Recorder("push", many_retries, answer=lambda q: Then(error=Discard("HTTP 404"), on_discarded=("alert",)))
    alert = Recorder("alert", REALTIME)
    async with opened(tmp_path, [Destination("crm", [gone, alert])]) as runtime:
        (job,) = await ingest(runtime, "crm", "push")
        async with scheduling(runtime):
            await eventually(lambda: all_in(runtime, [job.id], Status.DISCARDED))
            children = await eventually(lambda: statuses(runtime, actions_in=["alert"]))
            await eventually(lambda: all_in(runtime, list(children), Status.SUCCEEDED))
        history = await runtime.store.get_job(job.id)
        assert history is not None
        assert [(t.state_after, t.attempt, t.error) for t in history.transitions] == [
            (Status.ACKNOWLEDGED, 0, None),
            (Status.EXECUTING, 1, None),
            (Status.DISCARDED, 1, "Discard: HTTP 404"),
        ]
        assert len(gone.queues) == 1


async def test_failed_is_retried_at_the_next_tick_then_discarded_with_on_discarded(tmp_path: Path) -> None:
    flaky = Recorder("push", EVERY_SECOND, answer=lambda q: Then(error="HTTP 503", on_discarded=("alert",)))
    alert = Recorder("alert", REALTIME)
    async with opened(tmp_path, [Destination("crm", [flaky, alert])]) as runtime:
        (job,) = await ingest(runtime, "crm", "push")
        async with scheduling(runtime):
            await eventually(lambda: all_in(runtime, [job.id], Status.DISCARDED))
            children = await eventually(lambda: statuses(runtime, actions_in=["alert"]))
            await eventually(lambda: all_in(runtime, list(children), Status.SUCCEEDED))
        history = await runtime.store.get_job(job.id)
        assert history is not None
        assert [(t.state_after, t.attempt, t.error) for t in history.transitions] == [
            (Status.ACKNOWLEDGED, 0, None),
            (Status.EXECUTING, 1, None),
            (Status.FAILED, 1, "HTTP 503"),
            (Status.EXECUTING, 2, None),
            (Status.DISCARDED, 2, "HTTP 503"),
        ]
        failed = history.transitions[2]
        assert failed.due_at is not None and history.transitions[3].created_at >= failed.due_at
        (child_id,) = children
        child = await runtime.store.get_job(child_id)
        assert child is not None
        assert (child.parent_job_id, child.event_id, child.destination) == (job.id, job.event_id, "crm")
        assert child.data == job.data and child.context == job.context
        assert flaky.loaded == [job.id, job.id] and alert.loaded == [child_id]


async def test_force_discard_and_unknown(tmp_path: Path) -> None:
    action = Recorder("push", Schedule(interval="@every 1s", max_retries=5))
    async with opened(tmp_path, [Destination("crm", [action])]) as runtime:
        first, second, third = await ingest(runtime, "crm", "push", 3)
        action.answer = lambda queue: [
            Then(jobs=[first.id], error="bad payload", force_discard=True), Then(jobs=[second.id]),
        ]
        async with scheduling(runtime):
            await eventually(lambda: all_in(runtime, [first.id], Status.DISCARDED))
            await eventually(lambda: all_in(runtime, [second.id], Status.SUCCEEDED))
            await eventually(lambda: all_in(runtime, [third.id], Status.UNKNOWN))
        assert sorted(action.loaded) == sorted([first.id, second.id, third.id])


async def test_on_succeeded_children_follow_their_own_schedule(tmp_path: Path) -> None:
    class Enrich(Action):
        name = "enrich"
        schedule = REALTIME

        def marshal(self, event: Any, toolkit: Toolkit) -> Any:
            from hookspecs import Payload

            return Payload(data={"enriched": event.data}, context={"by": toolkit.job_id})

        async def load(self, toolkit: Toolkit, queue: Queue) -> None:
            return None

    source = Recorder("ingest", EVERY_SECOND, answer=lambda q: Then(on_succeeded=("enrich", "audit.log")))
    audit = Recorder("log", Schedule(interval="@every 1s"))
    destinations = [Destination("crm", [source, Enrich()]), Destination("audit", [audit])]
    async with opened(tmp_path, destinations, **{"scheduler.poll_seconds": 3600}) as runtime:
        (job,) = await ingest(runtime, "crm", "ingest")
        async with scheduling(runtime):
            await eventually(lambda: all_in(runtime, [job.id], Status.SUCCEEDED))
            await eventually(lambda: _count(runtime, job.event_id, Status.SUCCEEDED, 3))
        found = await runtime.store.get_event(job.event_id)
        assert found is not None
        kids = {j.action: j for j in found.jobs if j.parent_job_id == job.id}
        assert set(kids) == {"enrich", "log"}
        assert kids["enrich"].data == {"enriched": job.data}
        assert kids["enrich"].context == {"by": kids["enrich"].id}
        assert kids["log"].data == job.data and audit.loaded == [kids["log"].id]


async def _count(runtime: Any, event_id: str, status: Status, expected: int) -> bool:
    return len(await statuses(runtime, event_ids=[event_id], status_in=[status])) == expected


async def test_realtime_jobs_come_from_the_broker(tmp_path: Path) -> None:
    action = Recorder("notify", REALTIME)
    destination = Destination("chat", [action])
    async with opened(tmp_path, [destination], **{"scheduler.poll_seconds": 3600}) as runtime:
        async with scheduling(runtime):
            await asyncio.sleep(0.2)  # let the consumer join before the first publish (group from now on)
            jobs = await ingest(runtime, "chat", "notify", 3, publish=True)
            await eventually(lambda: all_in(runtime, [j.id for j in jobs], Status.SUCCEEDED))
            again = await ingest(runtime, "chat", "notify", 2, publish=True)
            await eventually(lambda: all_in(runtime, [j.id for j in again], Status.SUCCEEDED))
        assert sorted(action.loaded) == sorted(j.id for j in [*jobs, *again])


async def test_a_message_with_more_jobs_than_batch_size_is_loaded_in_batches(tmp_path: Path) -> None:
    action = Recorder("notify", REALTIME)
    overrides = {"scheduler.poll_seconds": 3600, "scheduler.batch_size": 2}
    async with opened(tmp_path, [Destination("chat", [action])], **overrides) as runtime:
        async with scheduling(runtime):
            await asyncio.sleep(0.2)
            jobs = await ingest(runtime, "chat", "notify", 5, publish=True)
            await eventually(lambda: all_in(runtime, [j.id for j in jobs], Status.SUCCEEDED))
        assert sorted(len(q) for q in action.queues) == [1, 2, 2]


async def test_a_duplicate_or_bad_message_is_acknowledged(tmp_path: Path) -> None:
    from core.ready_jobs import encode
    from hookspecs import JOBS_TOPIC, Message

    action = Recorder("notify", REALTIME)
    async with opened(tmp_path, [Destination("chat", [action])], **{"scheduler.poll_seconds": 3600}) as runtime:
        assert runtime.pubsub is not None
        async with scheduling(runtime):
            await asyncio.sleep(0.2)
            jobs = await ingest(runtime, "chat", "notify", 1, publish=True)
            await eventually(lambda: all_in(runtime, [jobs[0].id], Status.SUCCEEDED))
            await runtime.pubsub.publish(JOBS_TOPIC, [*encode(jobs), Message(body=b"not json")])
            later = await ingest(runtime, "chat", "notify", 1, publish=True)
            await eventually(lambda: all_in(runtime, [later[0].id], Status.SUCCEEDED))
        assert action.loaded == [jobs[0].id, later[0].id]


@pytest.mark.parametrize("pubsub", ["", "memory://unused"])
async def test_realtime_jobs_not_published_are_delivered_by_the_poll(tmp_path: Path, pubsub: str) -> None:
    action = Recorder("notify", REALTIME)
    async with opened(tmp_path, [Destination("chat", [action])], pubsub=pubsub) as runtime, scheduling(runtime):
        jobs = await ingest(runtime, "chat", "notify", 3, publish=False)
        await eventually(lambda: all_in(runtime, [j.id for j in jobs], Status.SUCCEEDED))


async def test_a_load_past_its_timeout_fails_its_jobs(tmp_path: Path) -> None:
    class Slow(Action):
        name = "slow"
        schedule = Schedule(interval="@every 1h", max_retries=3)

        async def load(self, toolkit: Toolkit, queue: Queue) -> None:
            await asyncio.sleep(30)

    async with opened(tmp_path, [Destination("dw", [Slow()])], **{"scheduler.load_timeout": 0.3}) as runtime:
        (job,) = await ingest(runtime, "dw", "slow")
        async with scheduling(runtime):
            await eventually(lambda: all_in(runtime, [job.id], Status.FAILED))
        found = await runtime.store.get_job(job.id)
        assert found is not None and "did not finish within 0.3s" in (found.transitions[-1].error or "")


async def test_stop_releases_a_load_that_outlives_the_grace_period(tmp_path: Path) -> None:
    started = asyncio.Event()

    class Stuck(Action):
        name = "stuck"
        schedule = EVERY_SECOND

        async def load(self, toolkit: Toolkit, queue: Queue) -> None:
            started.set()
            await asyncio.sleep(60)

    async with opened(tmp_path, [Destination("dw", [Stuck()])], **{"scheduler.grace_seconds": 0.2}) as runtime:
        (job,) = await ingest(runtime, "dw", "stuck")
        async with scheduling(runtime):
            await asyncio.wait_for(started.wait(), 10)
        found = await runtime.store.get_job(job.id)
        assert found is not None
        # released, not failed: the interrupted attempt costs no retry (issue 22, item 10)
        assert (found.status, found.attempt) == (Status.AWAITING, 0)
        assert "released" in (found.transitions[-1].error or "")
        assert [t.state_after for t in found.transitions][-2:] == [Status.EXECUTING, Status.AWAITING]


async def test_init_error_stops_start_up_and_shuts_down_what_started(tmp_path: Path) -> None:
    calls: list[str] = []

    class Tracked(Destination):
        async def init(self, toolkit: Toolkit) -> None:
            calls.append(f"init {self.name}")

        async def shutdown(self, toolkit: Toolkit) -> None:
            calls.append(f"shutdown {self.name}")

    class Broken(Action):
        name = "broken"

        async def init(self, toolkit: Toolkit) -> None:
            calls.append("init broken")
            raise ConnectionError("no route to crm.example")

    class Fine(Action):
        name = "fine"

        async def init(self, toolkit: Toolkit) -> None:
            calls.append("init fine")

        async def shutdown(self, toolkit: Toolkit) -> None:
            calls.append("shutdown fine")

    destinations = [Tracked("first", [Fine()]), Tracked("second", [Broken()]), Tracked("third", [Fine()])]
    async with opened(tmp_path, destinations) as runtime:
        with pytest.raises(CoreError, match=r"init of action second\.broken failed: ConnectionError: no route"):
            await run_scheduler(runtime, asyncio.Event())
    assert calls == [
        "init first", "init fine", "init second", "init broken",
        "shutdown second", "shutdown fine", "shutdown first",
    ]


async def test_lifecycle_order_on_a_clean_stop(tmp_path: Path) -> None:
    calls: list[str] = []

    class Tracked(Destination):
        async def init(self, toolkit: Toolkit) -> None:
            calls.append(f"init {self.name}")

        async def shutdown(self, toolkit: Toolkit) -> None:
            calls.append(f"shutdown {self.name}")

    class Step(Action):
        name = "step"

        async def init(self, toolkit: Toolkit) -> None:
            calls.append("init step")

        async def shutdown(self, toolkit: Toolkit) -> None:
            calls.append("shutdown step")

    async with opened(tmp_path, [Tracked("crm", [Step()])]) as runtime, scheduling(runtime):
        await eventually(lambda: _true(len(calls) == 2))
    assert calls == ["init crm", "init step", "shutdown step", "shutdown crm"]


async def _true(value: bool) -> bool:
    return value


async def test_load_timeout_must_stay_below_the_claim_lease(tmp_path: Path) -> None:
    """Checked with the configuration, before anything opens (issue 22, item 8)."""
    overrides = {"scheduler.load_timeout": 30, "scheduler.lease_seconds": 30}
    with pytest.raises(CoreError, match="scheduler.load_timeout = 30.0 is not valid"):
        async with opened(tmp_path, [], **overrides):
            pass


async def test_follow_ups_that_cannot_be_made_are_logged_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from hookspecs import Payload

    class Raising(Action):
        name = "raising"

        def marshal(self, event: Any, toolkit: Toolkit) -> Any:
            raise KeyError("email")

    class Skipping(Action):
        name = "skipping"

        async def marshal(self, event: Any, toolkit: Toolkit) -> Any:
            return None

    class Wrong(Action):
        name = "wrong"

        def marshal(self, event: Any, toolkit: Toolkit) -> Any:
            return {"not": "a payload"}

    class Fine(Action):
        name = "fine"
        schedule = Schedule(interval="@every 1h")

        async def marshal(self, event: Any, toolkit: Toolkit) -> Any:
            return Payload(data={"from": event.data, "event": event.id})

    refs = ("raising", "skipping", "wrong", "nowhere.fine", "ghost", "fine")
    parent = Recorder("parent", EVERY_SECOND, answer=lambda q: Then(on_succeeded=refs))
    actions = [parent, Raising(), Skipping(), Wrong(), Fine()]
    async with opened(tmp_path, [Destination("crm", actions)]) as runtime:
        (job,) = await ingest(runtime, "crm", "parent")
        async with scheduling(runtime):
            await eventually(lambda: all_in(runtime, [job.id], Status.SUCCEEDED))
        event = await runtime.store.get_event(job.event_id)
        assert event is not None
        children = [j for j in event.jobs if j.parent_job_id == job.id]
        assert [(c.action, c.data) for c in children] == [("fine", {"from": job.data, "event": job.event_id})]
    logged = caplog.text
    assert "marshal failed: KeyError" in logged
    assert "not a Payload" in logged
    assert "'nowhere'" in logged and "'ghost'" in logged


async def test_backoff_retries_sooner_than_the_interval(tmp_path: Path) -> None:
    from hookspecs import Backoff

    schedule = Schedule(realtime=True, interval="@every 1h", max_retries=2, backoff=Backoff(base=0.2, max_delay=0.4))
    action = Recorder("push", schedule, answer=lambda q: Then(error="still down"))
    async with opened(tmp_path, [Destination("crm", [action])], pubsub="") as runtime:
        (job,) = await ingest(runtime, "crm", "push")
        async with scheduling(runtime):
            await eventually(lambda: all_in(runtime, [job.id], Status.DISCARDED))
        found = await runtime.store.get_job(job.id)
        assert found is not None
        assert [t.state_after for t in found.transitions if t.state_before == Status.EXECUTING] == [
            Status.FAILED, Status.FAILED, Status.DISCARDED,
        ]
        assert action.loaded == [job.id] * 3
