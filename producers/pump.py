"""Source → sink at a target rate, with a progress bar and a summary (counts per topic, rate, CPU)."""
from __future__ import annotations

import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from pydantic import BaseModel

from cityops.topics import Topic
from producers.publisher import Publisher


@dataclass
class Summary:
    counts: Counter = field(default_factory=Counter)
    elapsed: float = 0.0
    cpu_user: float = 0.0
    cpu_sys: float = 0.0
    failed: int = 0
    last_error: str = ""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def rate(self) -> float:
        return self.total / self.elapsed if self.elapsed else 0.0

    @property
    def cpu_share(self) -> float:
        """Process CPU time over wall time: 1.0 is one core busy."""
        return (self.cpu_user + self.cpu_sys) / self.elapsed if self.elapsed else 0.0


def pump(events: Iterable[tuple[Topic, BaseModel]], sink: Publisher, rate: float | None = None,
         duration: float | None = None, limit: int | None = None, progress=None) -> Summary:
    """Send until the source ends, `duration` seconds pass or `limit` events went out.

    Rate control by schedule, not by sleeping per event: event i is due at i / rate seconds; the loop
    sleeps only when ahead, so per-event overhead stays a comparison.
    """
    s = Summary()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    n = 0
    next_check = 0
    for topic, event in events:
        sink.send(topic, event)
        s.counts[topic.name] += 1
        n += 1
        if n >= next_check:
            now = time.perf_counter() - t0
            if duration is not None and now >= duration:
                break
            if rate:
                ahead = n / rate - now
                if ahead > 0.002:
                    time.sleep(ahead)
            next_check = n + (max(1, int(rate / 200)) if rate else 1000)
            if progress:
                progress(n, now)
        if limit is not None and n >= limit:
            break
    sink.flush()
    s.elapsed = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    s.cpu_user, s.cpu_sys = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
    s.failed = sum(sink.failed.values())
    s.last_error = sink.last_error
    return s
