"""The rules that turn a load's result into transitions and follow-ups (core.scheduler.then)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from core.scheduler.then import UNKNOWN_ERROR, as_thens, decide, error_text
from hookspecs import Backoff, Discard, Job, RetryAfter, Schedule, Status, Then, new_id

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HOURLY = Schedule(interval="@every 1h", max_retries=2)


def job(attempt: int = 1, event_id: str = "E1") -> Job:
    return Job(
        id=new_id(), destination="crm", action="identify", event_id=event_id, context={}, data={},
        created_at=NOW, status=Status.EXECUTING, attempt=attempt,
    )


def statuses(outcome) -> list[Status]:
    return [t.state_after for t in outcome.transitions]


def test_none_means_every_job_succeeded() -> None:
    jobs = [job(), job(attempt=3)]
    outcome = decide(jobs, None, HOURLY, now=NOW)
    assert statuses(outcome) == [Status.SUCCEEDED, Status.SUCCEEDED]
    first = outcome.transitions[0]
    assert (first.job_id, first.event_id, first.state_before, first.attempt) == (
        jobs[0].id, "E1", Status.EXECUTING, 1,
    )
    assert outcome.transitions[1].attempt == 3
    assert first.error is None and first.due_at is None and first.created_at == NOW
    assert outcome.follow_ups == [] and outcome.warnings == []


def test_an_exception_fails_every_job_with_its_text() -> None:
    jobs = [job(), job()]
    outcome = decide(jobs, ConnectionError("crm is down"), HOURLY, now=NOW)
    assert statuses(outcome) == [Status.FAILED, Status.FAILED]
    assert {t.error for t in outcome.transitions} == {"ConnectionError: crm is down"}
    assert {t.due_at for t in outcome.transitions} == {NOW + timedelta(hours=1)}


def test_failed_retries_at_the_tick_after_the_one_that_claimed() -> None:
    tick = NOW - timedelta(seconds=5)
    outcome = decide([job()], Then(error="nope"), HOURLY, now=NOW, retry_from=tick)
    assert outcome.transitions[0].due_at == tick + timedelta(hours=1)


def test_cron_interval_retries_at_the_next_cron_time() -> None:
    outcome = decide([job()], Then(error="x"), Schedule(interval="0 3 * * *"), now=NOW)
    assert outcome.transitions[0].due_at == datetime(2026, 1, 2, 3, 0, tzinfo=UTC)


def test_max_retries_counts_retries_after_the_first_attempt() -> None:
    # max_retries=2: attempts 1, 2 and 3 may run; the failure of attempt 3 discards.
    for attempt, expected in ((1, Status.FAILED), (2, Status.FAILED), (3, Status.DISCARDED), (4, Status.DISCARDED)):
        outcome = decide([job(attempt)], Then(error="x"), HOURLY, now=NOW)
        assert statuses(outcome) == [expected], attempt
    discarded = decide([job(3)], Then(error="x"), HOURLY, now=NOW).transitions[0]
    assert discarded.due_at is None and discarded.error == "x"


def test_zero_retries_discards_the_first_failure() -> None:
    outcome = decide([job(1)], Then(error="x"), Schedule(max_retries=0), now=NOW)
    assert statuses(outcome) == [Status.DISCARDED]


def test_force_discard_discards_at_once() -> None:
    outcome = decide([job(1)], Then(error="bad payload", force_discard=True, on_discarded=("alert",)), HOURLY, now=NOW)
    assert statuses(outcome) == [Status.DISCARDED]
    assert [f.ref for f in outcome.follow_ups] == ["alert"]


def test_force_discard_needs_an_error() -> None:
    with pytest.raises(ValueError, match="needs an error"):
        Then(force_discard=True)


def test_jobs_named_by_no_then_are_unknown() -> None:
    a, b, c = job(), job(), job()
    outcome = decide([a, b, c], [Then(jobs=[a.id]), Then(jobs=[b.id], error="x")], HOURLY, now=NOW)
    assert statuses(outcome) == [Status.SUCCEEDED, Status.FAILED, Status.UNKNOWN]
    assert outcome.transitions[2].error == UNKNOWN_ERROR
    assert outcome.transitions[2].due_at is None


def test_a_then_without_ids_covers_the_jobs_not_named() -> None:
    a, b = job(), job()
    outcome = decide([a, b], [Then(jobs=[b.id], error="x"), Then()], HOURLY, now=NOW)
    assert statuses(outcome) == [Status.SUCCEEDED, Status.FAILED]
    assert outcome.warnings == []


def test_unknown_ids_and_duplicates_are_warned_and_ignored() -> None:
    a, b = job(), job()
    outcome = decide(
        [a, b], [Then(jobs=[a.id, "stranger"]), Then(jobs=[a.id], error="late"), Then(jobs=[b.id])], HOURLY, now=NOW
    )
    assert statuses(outcome) == [Status.SUCCEEDED, Status.SUCCEEDED]
    assert any("stranger" in w for w in outcome.warnings)
    assert any(a.id in w and "more than once" in w for w in outcome.warnings)


def test_two_thens_without_ids_the_first_applies() -> None:
    outcome = decide([job()], [Then(error="x"), Then()], HOURLY, now=NOW)
    assert statuses(outcome) == [Status.FAILED]
    assert len(outcome.warnings) == 1


def test_follow_ups_follow_the_status_the_job_got() -> None:
    ok, bad, last = job(), job(1), job(3)
    then_ok = Then(jobs=[ok.id], on_succeeded=("crm.tag", "notify"), on_failed=("never",))
    then_bad = Then(jobs=[bad.id, last.id], error="x", on_failed=("retry_note",), on_discarded=("alert",))
    outcome = decide([ok, bad, last], [then_ok, then_bad], HOURLY, now=NOW)
    assert [(f.ref, f.parent.id) for f in outcome.follow_ups] == [
        ("crm.tag", ok.id), ("notify", ok.id), ("retry_note", bad.id), ("alert", last.id),
    ]


def test_an_exception_has_no_follow_ups() -> None:
    assert decide([job(3)], RuntimeError("x"), HOURLY, now=NOW).follow_ups == []


def test_a_wrong_return_value_fails_the_jobs() -> None:
    outcome = decide([job()], {"ok": True}, HOURLY, now=NOW)
    assert statuses(outcome) == [Status.FAILED]
    assert "return None, a Then or a list of Then" in (outcome.transitions[0].error or "")


def test_a_string_as_jobs_is_refused_with_a_warning() -> None:
    a = job()
    outcome = decide([a], [Then(jobs=a.id)], HOURLY, now=NOW)
    assert statuses(outcome) == [Status.UNKNOWN]
    assert "not a list" in outcome.warnings[0]


def test_backoff_delays_grow_with_jitter_under_the_cap() -> None:
    schedule = Schedule(max_retries=10, backoff=Backoff(base=2, factor=2, max_delay=10))
    rng = random.Random(7)
    for attempt, ceiling in ((1, 2), (2, 4), (3, 8), (6, 10)):
        due = decide([job(attempt)], Then(error="x"), schedule, now=NOW, rng=rng).transitions[0].due_at
        assert due is not None and NOW <= due <= NOW + timedelta(seconds=ceiling)


def test_empty_queue_records_nothing() -> None:
    assert decide([], None, HOURLY, now=NOW).transitions == []


def test_as_thens_and_error_text() -> None:
    assert as_thens(None) == [Then()]
    assert as_thens((Then(error="x"),)) == [Then(error="x")]
    with pytest.raises(TypeError):
        as_thens([Then(), "no"])
    assert error_text(ValueError()) == "ValueError"
    assert error_text("plain") == "plain"


def test_a_failure_naming_no_job_isolates_the_jobs_at_their_retry() -> None:
    jobs = [job(), job()]
    raised = decide(jobs, ValueError("poison"), HOURLY, now=NOW)
    assert statuses(raised) == [Status.FAILED, Status.FAILED]
    assert raised.isolate == [j.id for j in jobs]
    whole = decide(jobs, Then(error="HTTP 503"), HOURLY, now=NOW)
    assert whole.isolate == [j.id for j in jobs]
    named = decide(jobs, [Then(jobs=[jobs[0].id], error="bad row"), Then()], HOURLY, now=NOW)
    assert statuses(named) == [Status.FAILED, Status.SUCCEEDED]
    assert named.isolate == []  # the load said which job failed: batch it again


def test_a_shared_failure_on_the_last_attempt_leaves_one_attempt_alone() -> None:
    # max_retries=2: the last attempt is 3. A load of several jobs that failed as a whole does
    # not say which job broke it: its jobs get one more attempt, alone; then the limit holds.
    last = [job(3), job(3)]
    assert statuses(decide(last, ValueError("poison"), HOURLY, now=NOW)) == [Status.FAILED, Status.FAILED]
    assert statuses(decide([job(3)], ValueError("poison"), HOURLY, now=NOW)) == [Status.DISCARDED]
    assert statuses(decide([job(4), job(4)], ValueError("poison"), HOURLY, now=NOW)) == [Status.DISCARDED] * 2
    named = decide(last, Then(jobs=[last[0].id], error="bad row"), HOURLY, now=NOW)
    assert statuses(named)[0] == Status.DISCARDED
    forced = decide(last, Then(error="bad", force_discard=True), HOURLY, now=NOW)
    assert statuses(forced) == [Status.DISCARDED, Status.DISCARDED]


def test_a_discard_error_discards_at_once_with_its_follow_ups() -> None:
    first, second = job(), job()
    thens = [Then(jobs=[first.id], error=Discard("HTTP 404"), on_discarded=["alert"], on_failed=["never"]),
             Then(jobs=[second.id])]
    outcome = decide([first, second], thens, HOURLY, now=NOW)
    assert statuses(outcome) == [Status.DISCARDED, Status.SUCCEEDED]
    assert outcome.transitions[0].error == "Discard: HTTP 404" and outcome.transitions[0].due_at is None
    assert [(f.ref, f.parent.id) for f in outcome.follow_ups] == [("alert", first.id)]


def test_a_raised_discard_discards_every_job_of_the_load() -> None:
    outcome = decide([job(), job()], Discard("gone"), HOURLY, now=NOW)
    assert statuses(outcome) == [Status.DISCARDED, Status.DISCARDED]


def test_retry_after_sets_due_at_capped_by_the_schedule() -> None:
    tick = NOW - timedelta(seconds=5)
    soon = decide([job()], Then(error=RetryAfter(30)), HOURLY, now=NOW, retry_from=tick)
    assert soon.transitions[0].state_after == Status.FAILED
    assert soon.transitions[0].due_at == NOW + timedelta(seconds=30)
    late = decide([job()], RetryAfter(7200), HOURLY, now=NOW, retry_from=tick)
    assert late.transitions[0].due_at == tick + timedelta(hours=1)  # no later than the next tick
    backoff = Schedule(backoff=Backoff(max_delay=60))
    capped = decide([job()], Then(error=RetryAfter(600)), backoff, now=NOW)
    assert capped.transitions[0].due_at == NOW + timedelta(seconds=60)


def test_retry_after_counts_as_an_attempt() -> None:
    outcome = decide([job(attempt=3)], Then(error=RetryAfter(5), on_discarded=["alert"]), HOURLY, now=NOW)
    assert statuses(outcome) == [Status.DISCARDED] and outcome.follow_ups[0].ref == "alert"


def test_retry_after_refuses_a_negative_delay() -> None:
    with pytest.raises(ValueError, match="seconds must be a number"):
        RetryAfter(-1)
