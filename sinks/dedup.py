"""Each source event stored once: the sink drops an event id it stored recently.

Producers retry and upstream systems resend, so one event (one `event_id`) can reach a source topic twice,
at new Kafka offsets the offset scheme (batch.py) cannot tell from new events. The raw tables are plain
MergeTree, read without FINAL by the cockpit and summed by the rollups, so a twin must never be inserted.

The memory is bounded: at least the last `capacity` ids per topic, forgotten oldest first. It is rebuilt from the
warehouse whenever partitions are assigned (start, restart after a crash, rebalance), so it holds what was
stored, not what was merely decoded. A copy arriving after `capacity` newer events of its topic is stored
again (docs/warehouse.md).
"""
from __future__ import annotations

from collections import deque

from cityops.topics import SOURCE_TOPICS
from cityops.warehouse.schema import Table, tables_of
from sinks.batch import Insert


class RecentIds:
    """At least the last `capacity` ids, kept in chunks (one per call) so forgetting is a set operation."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.seen: set[str] = set()
        self.chunks: deque[list[str]] = deque()
        self.size = 0

    def reset(self, ids: list[str]) -> None:
        """Remember exactly `ids` (oldest first)."""
        self.seen, self.chunks, self.size = set(), deque(), 0
        self.fresh(ids)

    def fresh(self, ids: list[str]) -> list[int] | None:
        """Positions of the ids not seen before (the first copy within `ids` too), remembered from now on;
        None when every one is new (the usual case, checked in bulk)."""
        if self.seen.isdisjoint(ids) and len(set(ids)) == len(ids):
            self._remember(list(ids))
            return None
        keep, new = [], []
        for i, e in enumerate(ids):
            if e not in self.seen:
                self.seen.add(e)
                new.append(e)
                keep.append(i)
        self._remember(new, added=True)
        return keep

    def _remember(self, ids: list[str], added: bool = False) -> None:
        if not ids:
            return
        if not added:
            self.seen.update(ids)
        self.chunks.append(ids)
        self.size += len(ids)
        while self.size - len(self.chunks[0]) >= self.capacity:
            old = self.chunks.popleft()
            self.size -= len(old)
            self.seen.difference_update(old)


class Dedup:
    """Recent event ids of each source topic's table; filters inserts, counts what it drops."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.tables: dict[str, Table] = {tbl.name: tbl for t in SOURCE_TOPICS for tbl in tables_of(t.name)}
        self.recent = {name: RecentIds(capacity) for name in self.tables}
        self.dropped = 0

    def prime(self, wh, topics: set[str]) -> None:
        """Reload the memory of `topics` from the warehouse: the newest ids by receipt time. Bounded to a day
        before the newest one, so the filter column prunes the scan of a large table."""
        for name, table in self.tables.items():
            if table.topic.name in topics:
                ids = wh.query(f"SELECT event_id FROM {name} WHERE received_at >= "
                               f"(SELECT max(received_at) FROM {name}) - INTERVAL 1 DAY "
                               f"ORDER BY received_at DESC LIMIT {self.capacity}").result_columns
                self.recent[name].reset(list(reversed(ids[0])) if ids else [])

    def filter(self, inserts: list[Insert]) -> list[Insert]:
        """The inserts without rows whose event id is already stored (or earlier in these inserts)."""
        out = []
        for ins in inserts:
            recent = self.recent.get(ins.table.name)
            if recent is None:
                out.append(ins)
                continue
            ids = ins.columns[list(ins.table.columns()).index("event_id")]
            keep = recent.fresh(ids)
            if keep is None:
                out.append(ins)
                continue
            self.dropped += len(ids) - len(keep)
            if keep:
                out.append(Insert(ins.table, [[col[i] for i in keep] for col in ins.columns]))
        return out
