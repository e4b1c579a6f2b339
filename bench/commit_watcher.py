"""A watcher of a consumer group's committed offsets: when each offset became committed, and when the group
became stable."""
from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections.abc import Callable

from kafka import TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError


class Watcher(threading.Thread):
    """Polls committed offsets of a group; `when(tp, offset)` is the first time it saw offset stored.

    Offsets already committed at the first poll (an earlier run's) are not commits of this run. With
    `members`, it also notes when the group was first seen stable with that many members."""

    def __init__(self, bootstrap: str, group: str, every: float = 0.05, members: int = 0,
                 meter: Callable[[], dict[str, float]] | None = None):
        super().__init__(daemon=True, name=f"watch-{group}")
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        self.group, self.every, self.members, self.meter = group, every, members, meter
        self.seen: dict[TopicPartition, tuple[list[float], list[int]]] = {}
        self.base: dict[TopicPartition, int] | None = None
        self.stable_since: float | None = None
        self.cpu_at_start: dict[str, float] = {}   # `meter()` at the first commit once stable (the clock's start)
        self.halt = threading.Event()

    def run(self) -> None:
        self._unstable_at = time.time()
        while not self.halt.is_set():
            polled_at = time.time()
            try:
                if self.members and self.stable_since is None:
                    self._check_stable(polled_at)
                found = self.admin.list_group_offsets(self.group).get(self.group, {})
            except KafkaError:
                found = None
            now = time.time()
            if found is not None and self.base is None:
                self.base = {tp: om.offset for tp, om in found.items()}
            for tp, om in (found or {}).items():
                ts, offs = self.seen.setdefault(tp, ([], []))
                if om.offset > (offs[-1] if offs else self.base.get(tp, -1)):
                    ts.append(now)
                    offs.append(om.offset)
                    if self.meter and not self.cpu_at_start and self.stable_since is not None:
                        self.cpu_at_start = self.meter()
            self.halt.wait(self.every)
        self.admin.close()

    def _check_stable(self, polled_at: float) -> None:
        """When the group became stable with all its members: after the last poll that saw it otherwise (a
        later rebalance counts as throughput)."""
        group = self.admin.describe_groups([self.group]).get(self.group) or {}
        if group.get("group_state") == "Stable" and len(group.get("members") or ()) == self.members:
            self.stable_since = self._unstable_at
        else:
            self._unstable_at = polled_at

    def first_commit(self, after: float = 0.0) -> float | None:
        return min((t for ts, _ in self.seen.values() for t in ts if t >= after), default=None)

    def committed_at(self, t: float, tp: TopicPartition, default: int) -> int:
        ts, offs = self.seen.get(tp, ([], []))
        i = bisect_right(ts, t)
        return offs[i - 1] if i else default

    def when(self, topic: str, partition: int, offset: int) -> float | None:
        ts, offs = self.seen.get(TopicPartition(topic, partition), ([], []))
        i = bisect_right(offs, offset)      # first commit > offset stores it
        return ts[i] if i < len(ts) else None

    def stop(self) -> None:
        self.halt.set()
        self.join(5)
