"""Each row stored once: the sink drops a row whose identity (`Table.identity`) it stored recently.

Producers retry and upstream systems resend, so one event (one `event_id`) can reach a source topic twice,
at new Kafka offsets the offset scheme (batch.py) cannot tell from new events; a restarted streams worker
re-emits the case versions it replays (one `(case_id, version)` twice). The raw tables and `case_history` are
plain reads for the cockpit and feed summing rollups, so a twin must never be inserted.

The memory is bounded: at least the last `capacity` identities per table, forgotten oldest first. It is rebuilt
from the warehouse whenever partitions are assigned (start, restart after a crash, rebalance), so it holds what
was stored, not what was merely decoded. A copy arriving after `capacity` newer rows of its table is stored
again (docs/warehouse.md).
"""
from __future__ import annotations

from collections import deque

from cityops.warehouse.schema import TABLES, Table
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
            self.remember(list(ids))
            return None
        keep, new = [], []
        for i, e in enumerate(ids):
            if e not in self.seen:
                self.seen.add(e)
                new.append(e)
                keep.append(i)
        self.remember(new, added=True)
        return keep

    def remember(self, ids: list[str], added: bool = False) -> None:
        """Remember `ids`, known to be new (`added`: already in `seen`)."""
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
    """Recent identities of each table that declares one; filters inserts, counts what it drops."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.tables: dict[str, Table] = {t.name: t for t in TABLES if t.identity}
        self.recent = {name: RecentIds(capacity) for name in self.tables}
        self.dropped = 0

    def prime(self, wh, topics: set[str]) -> None:
        """Reload the memory of `topics`' tables from the warehouse: the newest identities. Bounded to a day
        before the newest row, so the filter column prunes the scan of a large table."""
        for name, table in self.tables.items():
            if table.topic.name in topics:
                ident = _sql_identity(table.identity)
                ids = wh.query(f"SELECT {ident} FROM {name} WHERE {table.newest} >= "
                               f"(SELECT max({table.newest}) FROM {name}) - INTERVAL 1 DAY "
                               f"ORDER BY {table.newest} DESC LIMIT {self.capacity}").result_columns
                self.recent[name].reset(list(reversed(ids[0])) if ids else [])

    def filter(self, inserts: list[Insert]) -> list[Insert]:
        """The inserts without rows whose identity is already stored (or earlier in these inserts)."""
        out = []
        for ins in inserts:
            recent = self.recent.get(ins.table.name)
            keep = None if recent is None else recent.fresh(ins.identities)
            if keep is None:
                out.append(ins)
                continue
            self.dropped += len(ins) - len(keep)
            if keep:
                out.append(ins.keep(keep))
        return out


def _sql_identity(identity: tuple[str, ...]) -> str:
    """The same text as `identities`, computed by ClickHouse."""
    if len(identity) == 1:
        return identity[0]
    return "concat(" + ", '#', ".join(f"toString({c})" for c in identity) + ")"
