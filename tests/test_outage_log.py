"""A repeating failure is logged as an episode: one warning when it starts, a summary while it
lasts, one line when it ends (a broker down for a minute must not write a line per request)."""

from __future__ import annotations

import logging

import pytest

from core.observability.outage import Outage


def test_a_thousand_failures_make_one_warning_and_one_recovery_line(caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage(logging.getLogger("test.outage"), "publishing")
    with caplog.at_level(logging.INFO, "test.outage"):
        for n in range(1000):
            outage.failed(f"try {n}: broker down")
        outage.recovered()
        outage.recovered()  # nothing to end twice
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines[0] == ("WARNING", "publishing: try 0: broker down (further failures are summed up every 60s "
                                   "until it works again)")
    assert len(lines) == 2 and lines[1][0] == "INFO"
    assert lines[1][1].startswith("publishing: works again after 1000 failure(s) in ")


def test_a_long_episode_is_summed_up_every_summary_period(caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage(logging.getLogger("test.outage"), "publishing", summary_seconds=0.0)
    with caplog.at_level(logging.WARNING, "test.outage"):
        outage.failed("first")
        outage.failed("second")
    assert "publishing: still failing, 2 time(s) in " in caplog.records[1].getMessage()
    assert caplog.records[1].getMessage().endswith("last: second")
