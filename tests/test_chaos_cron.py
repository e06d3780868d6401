"""Property 11 of the reliability battery, its DST half: a CRON expression with a time zone
(``CRON_TZ=<zone> …``) ticked across both DST changes of two zones fires each wall-clock slot
exactly once. The ticks are the ones the cron loop takes (each ``next_after`` the previous
tick, :mod:`core.timing`), walked from the day before a change to the day after it: no slot
that exists is missed, no wall time fires twice when the clock goes through an hour twice, a
daily slot the clock jumps over still fires once that day (an hour later). Clock steps and
gateways whose clocks differ: ``tests/test_chaos_cron_clocks.py``."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.timing import parse_interval

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(60)]

#: (zone, the UTC midnight of the day before a change): spring forward and fall back of each.
CHANGES = [("Europe/Berlin", datetime(2026, 3, 28, tzinfo=UTC)),
           ("Europe/Berlin", datetime(2026, 10, 24, tzinfo=UTC)),
           ("America/New_York", datetime(2026, 3, 7, tzinfo=UTC)),
           ("America/New_York", datetime(2026, 10, 31, tzinfo=UTC))]
#: Minute and hour fields (``n``, ``*/n`` or ``*``); the other fields are ``*``.
EXPRESSIONS = ["30 2 * * *", "30 1 * * *", "0 * * * *", "*/15 * * * *", "45 */2 * * *"]


def _matches(field: str, value: int) -> bool:
    if field == "*":
        return True
    if field.startswith("*/"):
        return value % int(field[2:]) == 0
    return value == int(field)


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    """Whether the local wall time ``wall`` (naive) happens in ``zone`` (not in a DST gap)."""
    return wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


@pytest.mark.parametrize("expression", EXPRESSIONS)
@pytest.mark.parametrize(("zone_name", "start"), CHANGES, ids=[f"{z}-{d:%m}" for z, d in CHANGES])
def test_a_cron_with_a_time_zone_fires_each_slot_once_across_a_dst_change(
    expression: str, zone_name: str, start: datetime
) -> None:
    zone, end = ZoneInfo(zone_name), start + timedelta(days=3)
    interval = parse_interval(f"CRON_TZ={zone_name} {expression}")
    fires, tick = [], start
    while (tick := interval.next_after(tick)) < end:
        fires.append(tick)
    walls = [fire.astimezone(zone).replace(tzinfo=None) for fire in fires]
    twice = [wall for wall, n in Counter(walls).items() if n > 1]
    assert not twice, f"wall times fired twice: {twice}"
    minute, hour = expression.split()[:2]
    first = start.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)
    slots = [first + timedelta(minutes=m) for m in range((3 * 24 + 2) * 60)]
    wanted = [w for w in slots if _matches(minute, w.minute) and _matches(hour, w.hour)
              and w.replace(tzinfo=zone).astimezone(UTC) < end]
    missed = [w for w in wanted if _exists(w, zone) and w not in walls]
    assert not missed, f"slots missed: {missed}"
    if hour.isdigit():  # a daily slot: once every day, even the day the clock jumps over it
        days = Counter(wall.date() for wall in walls)
        assert set(days.values()) == {1}, f"fires per day: {days}"
    extra = [w for w in walls if w not in wanted]
    assert all(not _exists(w - timedelta(hours=1), zone) for w in extra), f"fires at no slot: {extra}"
