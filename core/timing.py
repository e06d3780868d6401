"""Schedules in time: parse ``@every <duration>`` and CRON strings, and compute when a job is
next due (the fixed interval of the seeds, or exponential backoff with jitter).

Durations follow Go's notation used by Blacksmith (``500ms``, ``30s``, ``5m``, ``1h30m``);
CRON strings have five fields (minute hour day month weekday, weekday 0 or 7 = Sunday as in
crontab) or six, a leading seconds field first (``*/5 * * * * *``: every five seconds), and are
evaluated in UTC by APScheduler's ``CronTrigger``, or in the time zone a ``CRON_TZ=<IANA zone>``
prefix names (``CRON_TZ=Europe/Berlin 30 2 * * *``, the notation of Go's cron); ``@hourly``,
``@daily``, ``@weekly``, ``@monthly`` and ``@yearly`` are accepted too. In a time zone, a slot
is a wall-clock time and fires once across a DST change: a time the clock jumps over fires at
the first moment after it that APScheduler gives (an hour later), a time the clock goes through
twice fires at its first occurrence only.
Moments (``--before``, ``created_after``) are ISO 8601 times or a duration ago.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hookspecs import Schedule

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
ALLOWED = ("'@every <duration>' (e.g. '@every 30s', '@every 1h30m'), '@hourly'/'@daily'/…, or a CRON string of "
           "5 fields, or 6 with seconds first (UTC, or in a zone: 'CRON_TZ=Europe/Berlin 30 2 * * *')")
#: Crontab's weekday names, by crontab's number (0 = Sunday; 7 is Sunday too).
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_WEEKDAY_ITEM = re.compile(r"(\*|[a-z0-9]+)(?:-([a-z0-9]+))?(?:/(\d+))?")


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration such as ``1h30m`` or ``500ms``; ``ValueError`` if malformed."""
    text = text.strip()
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text) or total <= 0:
        raise ValueError(f"{text!r} is not a positive duration like '30s', '5m' or '1h30m'")
    return total


def parse_moment(text: str) -> datetime:
    """A moment given as an ISO 8601 time (UTC if no offset) or a duration ago (``90m``), as
    the CLI's ``--before``/``--after`` and the admin API's ``created_before``... take it;
    ``ValueError`` saying both forms if malformed."""
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an ISO 8601 time (2026-01-31T12:00:00Z) nor a duration ago (30m, 2h)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Interval:
    """A parsed schedule interval: a fixed period, or a CRON expression."""

    text: str
    every: float | None = None
    cron: Any = None

    def next_after(self, now: datetime) -> datetime:
        """The first tick strictly after ``now``."""
        if self.every is not None:
            return now + timedelta(seconds=self.every)
        after = now + timedelta(microseconds=1)
        while True:
            fire: datetime | None = self.cron.get_next_fire_time(None, after)
            if fire is None:  # pragma: no cover - a CRON string always fires again
                raise ValueError(f"interval {self.text!r} never fires again")
            moment = fire.astimezone(UTC)
            if not moment.astimezone(self.cron.timezone).fold:  # not the repeat of a wall time (DST ends)
                return moment
            after = moment + timedelta(microseconds=1)


@lru_cache(maxsize=256)
def parse_interval(text: str) -> Interval:
    """Parse a schedule interval; ``ValueError`` naming what is allowed if malformed."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"interval {text!r} is empty; use {ALLOWED}")
    spec = text.strip()
    if spec.startswith("@every"):
        try:
            return Interval(text, every=parse_duration(spec[len("@every"):]))
        except ValueError as exc:
            raise ValueError(f"interval {text!r}: {exc}") from None
    zone: Any = UTC
    if spec.startswith("CRON_TZ="):
        name, _, spec = spec.removeprefix("CRON_TZ=").partition(" ")
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"interval {text!r}: {name!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
        spec = spec.strip()
    spec = _ALIASES.get(spec, spec)
    fields = spec.split()
    if spec.startswith("@") or len(fields) not in (5, 6):
        raise ValueError(f"interval {text!r} is not valid; use {ALLOWED}")
    from apscheduler.triggers.cron import CronTrigger

    second = fields.pop(0) if len(fields) == 6 else "0"
    try:
        minute, hour, day, month, weekday = fields
        return Interval(text, cron=CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                                               day_of_week=_weekdays(weekday), timezone=zone))
    except ValueError as exc:
        raise ValueError(f"interval {text!r} is not a valid CRON string ({exc}); use {ALLOWED}") from None


def _weekdays(field: str) -> str:
    """Crontab's weekday field as APScheduler's names (its numbers start at Monday, crontab's
    at Sunday): ``1-5`` → ``mon,tue,wed,thu,fri``, ``0,6`` → ``sun,sat``; ``*`` as it is."""
    if field == "*":
        return field
    days: list[int] = []
    for item in field.lower().split(","):
        found = _WEEKDAY_ITEM.fullmatch(item)
        if found is None:
            raise ValueError(f"weekday {item!r} is not a day (0-7, sun-sat), a range or a step")
        first, last, step = found.groups()
        low = 0 if first == "*" else _weekday(first)
        high = 6 if first == "*" else low if last is None and step is None else _weekday(last or "sat")
        high = 7 if last == "sun" else high  # 'fri-sun': Sunday ends a week too
        if high < low or step == "0":
            raise ValueError(f"weekday {item!r} is empty (a range backwards, or a step of 0)")
        days += range(low, high + 1, int(step or 1))
    return ",".join(dict.fromkeys(_WEEKDAYS[day % 7] for day in days))


def _weekday(text: str) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text)
    if text in _WEEKDAYS:
        return _WEEKDAYS.index(text)
    raise ValueError(f"weekday {text!r} is not a day: 0-7 (0 and 7: Sunday) or sun-sat")


def retry_at(schedule: Schedule, attempt: int, now: datetime, rng: random.Random | None = None) -> datetime:
    """When a job that failed its ``attempt``-th load is due again.

    The seeds' behaviour is the default: the next tick of the schedule's interval. With
    ``schedule.backoff`` the delay is exponential with full jitter, capped by ``max_delay``.
    """
    backoff = schedule.backoff
    if backoff is None:
        return parse_interval(schedule.interval).next_after(now)
    ceiling = min(backoff.max_delay, backoff.base * backoff.factor ** max(attempt - 1, 0))
    return now + timedelta(seconds=(rng or random).uniform(0, ceiling))


def retry_after_at(schedule: Schedule, seconds: float, now: datetime, retry_from: datetime) -> datetime:
    """When a job is due again after a :class:`~hookspecs.RetryAfter` of ``seconds`` at ``now``:
    that delay, capped by the schedule (no later than the interval's next tick after
    ``retry_from``, or than ``backoff.max_delay`` from ``now``). No jitter: the delay was asked for."""
    backoff = schedule.backoff
    cap = (now + timedelta(seconds=backoff.max_delay) if backoff is not None
           else parse_interval(schedule.interval).next_after(retry_from))
    return min(now + timedelta(seconds=seconds), max(cap, now))


_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|min|minute|h|hour)\s*")
_PER = {"s": 1.0, "sec": 1.0, "second": 1.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}
RATE_FORMS = '"<n>/s", "<n>/min" or "<n>/h" (e.g. "100/s", "6000/min")'


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` kept (one token, one job)."""

    rate: float
    burst: int


def parse_rate(text: str) -> RateLimit:
    """Parse ``"10/s"``, ``"6000/min"``, ``"50/h"``, with a burst of one second of the rate (at
    least 1). Raises :class:`ValueError` saying the allowed forms."""
    found = _RATE.fullmatch(text) if isinstance(text, str) else None
    if found is None or float(found[1]) <= 0:
        raise ValueError(f"{text!r} is not a rate: write {RATE_FORMS}, above 0")
    rate = float(found[1]) / _PER[found[2]]
    return RateLimit(rate=rate, burst=max(1, int(rate)))


def take_tokens(tokens: float, updated_at: datetime, wanted: int, limit: RateLimit,
                now: datetime) -> tuple[int, float]:
    """One take from a bucket holding ``tokens`` at ``updated_at``: refill it up to ``now``
    (capped at the burst), grant up to ``wanted`` whole tokens; return ``(granted, tokens left)``.
    A negative ``wanted`` gives ``-wanted`` unused tokens back (granted 0). A clock that went
    back refills nothing."""
    elapsed = max((now - updated_at).total_seconds(), 0.0)
    available = min(float(limit.burst), tokens + elapsed * limit.rate)
    if wanted < 0:
        return 0, min(float(limit.burst), available - wanted)
    granted = max(0, min(wanted, int(available + 1e-9)))  # 0.9999… is a token
    return granted, available - granted
