"""One delivery lane per webhook: a thread taking that target's alerts in the order they were queued.

A department's robot that hangs (up to the request timeout, on every retry) or refuses for minutes holds only
its own alerts: the duty officers of every other department are still paged at once."""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable

from cityops.models.alerts import Alert
from streams.pager.targets import Target

Deliver = Callable[[Target, Alert], None]


class Lane:
    def __init__(self, name: str, hook: Target, deliver: Deliver, stop: threading.Event):
        self.hook, self._deliver, self._stop = hook, deliver, stop
        self._items: deque[Alert] = deque()
        self._ready = threading.Condition()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def put(self, alert: Alert) -> None:
        with self._ready:
            self._items.append(alert)
            self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._items and not self._stop.is_set():
                    self._ready.wait(0.5)
                if self._stop.is_set():
                    return  # what is left stays queued in the ledger: the next start delivers it
                alert = self._items.popleft()
            self._deliver(self.hook, alert)


class Lanes:
    def __init__(self, deliver: Deliver, stop: threading.Event):
        self._deliver, self._stop = deliver, stop
        self._lanes: dict[str, Lane] = {}

    def put(self, key: str, hook: Target, alert: Alert) -> None:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane(f"lane-{key[:8]}", hook, self._deliver, self._stop)
        lane.put(alert)

    def join(self, timeout: float) -> None:
        """After `stop` is set: wait for the attempts in flight (each bounded by the request timeout)."""
        deadline = time.monotonic() + timeout
        for lane in self._lanes.values():
            lane.thread.join(max(0.0, deadline - time.monotonic()))
