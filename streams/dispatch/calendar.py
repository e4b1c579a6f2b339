"""Due times on the working-hours calendar of the taxonomy (Mon–Fri 08:30–12:00, 13:30–17:30 Asia/Shanghai).

A time limit in working minutes only runs inside working periods; emergencies (`clock: true`) run on the clock.
Public holidays and make-up working days are not modelled (the taxonomy has no calendar of them yet).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from cityops.taxonomy import WorkingHours


@lru_cache(maxsize=4)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=1024)
def _periods_of_day(day: datetime, wh: WorkingHours) -> tuple[tuple[datetime, datetime], ...]:
    """Working periods of the local calendar day `day` (tz-aware local midnight). Cached: every case asks for
    the same few days, and building them is most of an uncached due time's cost."""
    if day.weekday() not in wh.days:
        return ()
    return tuple((day.replace(hour=a.hour, minute=a.minute), day.replace(hour=b.hour, minute=b.minute))
                 for a, b in wh.periods)


def due_at(start: datetime, minutes: int, wh: WorkingHours, *, clock: bool = False) -> datetime:
    """The moment `minutes` of (working or clock) time after `start`, in UTC."""
    if start.tzinfo is None:
        raise ValueError("start needs a time zone")
    if clock:
        return (start + timedelta(minutes=minutes)).astimezone(timezone.utc)
    tz = _zone(wh.timezone)
    local = start.astimezone(tz)
    left = timedelta(minutes=minutes)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    for _ in range(3700):  # ten years of days: bounds the loop for absurd limits or an empty calendar
        for a, b in _periods_of_day(day, wh):
            lo = max(a, local)
            if lo >= b:
                continue
            if lo + left <= b:
                return (lo + left).astimezone(timezone.utc)
            left -= b - lo
        day = (day + timedelta(days=1, hours=2)).replace(hour=0)  # +2 h keeps DST-free zones and others right
    raise ValueError(f"no working time in the calendar to fit {minutes} minutes")


def working_minutes_between(start: datetime, end: datetime, wh: WorkingHours) -> float:
    """Working minutes in [start, end): the inverse of `due_at`, used by the tests and reports."""
    tz = _zone(wh.timezone)
    lo_t, hi_t = start.astimezone(tz), end.astimezone(tz)
    total = timedelta()
    day = lo_t.replace(hour=0, minute=0, second=0, microsecond=0)
    while day <= hi_t:
        for a, b in _periods_of_day(day, wh):
            lo, hi = max(a, lo_t), min(b, hi_t)
            if hi > lo:
                total += hi - lo
        day = (day + timedelta(days=1, hours=2)).replace(hour=0)
    return total.total_seconds() / 60
