"""Working time in simulated seconds (epoch, Asia/Shanghai local days): when departments act and grid workers patrol.

The streams keep the same calendar for due times (streams/dispatch/calendar.py); the simulator works on floats
and must not import a stage, so it carries its own small copy of the arithmetic.
"""
from __future__ import annotations

from bisect import bisect
from datetime import timedelta, timezone

from cityops.taxonomy import WorkingHours

LOCAL = 8 * 3600          # Asia/Shanghai, no DST
TZ = timezone(timedelta(seconds=LOCAL))
DAY = 86400
EPOCH_WEEKDAY = 3         # 1970-01-01 was a Thursday (Monday = 0)


class Calendar:
    """Working periods on working days; `after` and `between` count only the time inside them."""

    def __init__(self, days: tuple[int, ...], periods: tuple[tuple[float, float], ...]):
        if not days or not periods:
            raise ValueError("a calendar needs working days and periods")
        self.days = frozenset(days)
        self.periods = periods            # seconds since local midnight
        self.share = len(days) * sum(b - a for a, b in periods) / (7 * DAY)
        self._days: dict[int, tuple[tuple[float, float], ...]] = {}   # asked per event: built once a day
        self._span = (0.0, 0.0, False)    # the stretch of time the last `within` answer holds for

    @classmethod
    def of(cls, wh: WorkingHours) -> Calendar:
        return cls(wh.days, tuple((a.hour * 3600 + a.minute * 60, b.hour * 3600 + b.minute * 60)
                                  for a, b in wh.periods))

    def _day(self, t: float) -> int:
        return int((t + LOCAL) // DAY)

    def _periods(self, day: int) -> tuple[tuple[float, float], ...]:
        got = self._days.get(day)
        if got is None:
            base = day * DAY - LOCAL
            got = self._days[day] = (tuple((base + a, base + b) for a, b in self.periods)
                                     if (day + EPOCH_WEEKDAY) % 7 in self.days else ())
        return got

    def within(self, t: float) -> bool:
        lo, hi, inside = self._span
        if lo <= t < hi:
            return inside
        day = self._day(t)
        edges = [day * DAY - LOCAL, *(x for p in self._periods(day) for x in p), (day + 1) * DAY - LOCAL]
        i = bisect(edges, t)
        self._span = (edges[i - 1], edges[i], i % 2 == 0)   # odd edges open a period, even ones close it
        return self._span[2]

    def after(self, t: float, minutes: float) -> float:
        """The moment `minutes` of working time after `t`."""
        left, day = minutes * 60, self._day(t)
        while True:
            for a, b in self._periods(day):
                lo = max(a, t)
                if lo < b:
                    if lo + left <= b:
                        return lo + left
                    left -= b - lo
            day += 1

    def between(self, a: float, b: float) -> float:
        """Working minutes in [a, b)."""
        total, day = 0.0, self._day(a)
        while day <= self._day(b):
            total += sum(max(0.0, min(hi, b) - max(lo, a)) for lo, hi in self._periods(day))
            day += 1
        return total / 60


class Clock:
    """Emergencies run on the clock, day and night."""

    share = 1.0

    def within(self, t: float) -> bool:
        return True

    def after(self, t: float, minutes: float) -> float:
        return t + minutes * 60

    def between(self, a: float, b: float) -> float:
        return max(0.0, b - a) / 60
