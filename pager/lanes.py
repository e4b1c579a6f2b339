"""One delivery lane per webhook: a thread making that target's attempts one at a time, each alert when it is
due (at once when queued, later when a failed attempt set its next time), the earliest first.

A department's robot that hangs (up to the request timeout, on every retry) or refuses for an hour holds only
its own alerts: the duty officers of every other department are still paged at once. Within a lane, an alert
waiting for its retry does not hold the ones queued after it."""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Callable

from cityops.models.alerts import Alert
from pager.targets import Target

Deliver = Callable[[Target, Alert], float | None]   # one attempt; when the next is due (wall clock) or None


class Lane:
    def __init__(self, name: str, target: Target, deliver: Deliver, stop: threading.Event):
        self.target, self._deliver, self._stop = target, deliver, stop
        self._due: list[tuple[float, int, Alert]] = []   # a heap of (when, order queued, alert)
        self._order = itertools.count()
        self._ready = threading.Condition()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def put(self, alert: Alert, at: float = 0.0) -> None:
        with self._ready:
            heapq.heappush(self._due, (at, next(self._order), alert))
            self._ready.notify()

    def _next(self) -> Alert | None:
        """The earliest alert once it is due; None when stopping (what is left stays queued in the ledger)."""
        with self._ready:
            while not self._stop.is_set():
                wait = self._due[0][0] - time.time() if self._due else 0.5
                if self._due and wait <= 0:
                    return heapq.heappop(self._due)[2]
                self._ready.wait(min(wait, 0.5))   # wakes for a new alert; checks `stop` twice a second
        return None

    def _run(self) -> None:
        while (alert := self._next()) is not None:
            again = self._deliver(self.target, alert)
            if again is not None:
                self.put(alert, again)


class Lanes:
    def __init__(self, deliver: Deliver, stop: threading.Event):
        self._deliver, self._stop = deliver, stop
        self._lanes: dict[str, Lane] = {}

    def put(self, key: str, target: Target, alert: Alert, at: float = 0.0) -> None:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane(f"lane-{key[:8]}", target, self._deliver, self._stop)
        lane.put(alert, at)

    def join(self, timeout: float) -> None:
        """After `stop` is set: wait for the attempts in flight (each bounded by the request timeout)."""
        deadline = time.monotonic() + timeout
        for lane in self._lanes.values():
            lane.thread.join(max(0.0, deadline - time.monotonic()))
