"""Kafka messages → warehouse columns, or dead letters saying why not. Never raises for bad input.

Each topic's messages go through the fast path (sinks/fast.py) first; whatever it does not accept is
validated by the model (pydantic), the authority: valid after all → the same rows, invalid → a dead letter
with the reason. Both meet again in arrival order.
"""
from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cityops.admit import admit
from cityops.models.deadletters import DeadLetter
from cityops.registry import CityRegistry
from cityops.topics import MAX_MESSAGE_BYTES, SOURCE_TOPICS, Topic
from cityops.warehouse.schema import DEAD_LETTERS, Table, tables_of
from sinks.batch import Batch, Insert, Messages, Stored, ordered_inserts
from sinks.fast import Columns, shape_of


STREAMS_CHECKED = frozenset(t.name for t in SOURCE_TOPICS)


@dataclass
class Decoded:
    """Rows for each table the message fills (insert order kept), or one dead-letter row."""

    rows: list[tuple[Table, list]]


class Decoder:
    def __init__(self, topics: tuple[Topic, ...], pii_key: str, fast: bool = True,
                 in_city: Callable[[list[float], list[float]], list[bool]] | None = None):
        self.topics = {t.name: t for t in topics}
        # The worker dead-letters source events whose coordinates cannot be in the city (`coordinates`); the
        # raw tables skip them by the same registry, so the warehouse holds exactly the accepted events.
        self.in_city = in_city or CityRegistry.default().in_city_many
        self.builders = {t.name: [(tbl, tbl.row_builder(pii_key)) for tbl in tables_of(t.name)] for t in topics}
        self.column_builders = {t.name: [(tbl, tbl.column_builder(pii_key)) for tbl in tables_of(t.name)]
                                for t in topics}
        self.shapes = {t.name: shape_of(t.value) if fast else None for t in topics}
        self.dead_builder = DEAD_LETTERS.row_builder(pii_key)

    def inserts(self, batch: Batch) -> list[Insert]:
        stored: dict[str, Stored] = {}
        with no_cycle_collection():
            for topic, messages in batch.topics.items():
                for s in self.decode_topic(topic, messages):
                    if s.table.name in stored:
                        stored[s.table.name].extend(s)
                    else:
                        stored[s.table.name] = s
        return ordered_inserts(stored)

    def decode_topic(self, topic: str, m: Messages) -> list[Stored]:
        """One topic's messages → what each table receives (dead letters included), in arrival order."""
        if topic in STREAMS_CHECKED:
            m = _within_limit(m)
        n = len(m.values)
        shape = self.shapes[topic]
        fast = shape.decode(m.values) if shape is not None else Columns([], {}, {})
        outside: set[int] = set()
        if topic in STREAMS_CHECKED and "lat" in fast.values:
            fast, outside = self._in_city_only(fast)
        slow: dict[str, list[tuple[int, list]]] = {}
        if len(fast.index) + len(outside) < n:
            for i in sorted(set(range(n)) - set(fast.index) - outside):
                for table, row in self.decode(topic, m.partitions[i], m.offsets[i], m.keys[i], m.values[i]).rows:
                    slow.setdefault(table.name, []).append((i, row))
        out = []
        for table, build in self.column_builders[topic]:
            columns = build(fast.values) + _meta(table, topic, m, fast.index, n) if fast.index else None
            months = fast.times[table.month] if columns and table.month else None
            out.append(_merge(table, fast.index, columns, months, slow.pop(table.name, [])))
        if DEAD_LETTERS.name in slow:
            out.append(_merge(DEAD_LETTERS, [], None, None, slow.pop(DEAD_LETTERS.name)))
        return out

    def decode(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None) -> Decoded:
        """One message through the shared admit step (cityops/admit.py), the authority on what is valid."""
        decoded = self._validate(topic, partition, offset, key, value)
        if topic in STREAMS_CHECKED and decoded.rows and decoded.rows[0][0] is DEAD_LETTERS:
            # The streams worker admitted the same bytes by the same rule and sent their dead letter; a second
            # one from here would count every bad message twice on the cockpit.
            return Decoded([])
        return decoded

    def _validate(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None) -> Decoded:
        t = self.topics[topic]
        obj = admit(t.value, value, topic=topic, partition=partition, offset=offset, key=key,
                    in_city=self._in_city if topic in STREAMS_CHECKED else None, limit=t.max_message_bytes)
        if isinstance(obj, DeadLetter):
            return Decoded([(DEAD_LETTERS, self.dead_builder(obj, topic, partition, offset))])
        return Decoded([(tbl, build(obj, topic, partition, offset)) for tbl, build in self.builders[topic]])

    def _in_city(self, lat: float, lon: float) -> bool:
        return self.in_city([lat], [lon])[0]

    def _in_city_only(self, fast: Columns) -> tuple[Columns, set[int]]:
        """The fast-path rows without the ones placed outside the city, and the input positions of those."""
        points = list(zip(fast.values["lat"], fast.values["lon"]))
        # Distinct points only, as the fast path checks values: a sensor sends from one place all day.
        located = list({p for p in points if p[0] is not None and p[1] is not None})
        outside = {p for p, ok in zip(located, self.in_city([p[0] for p in located], [p[1] for p in located]))
                   if not ok}
        drop = {j for j, p in enumerate(points) if p in outside} if outside else set()
        if not drop:
            return fast, set()
        keep = [j for j in range(len(fast.index)) if j not in drop]
        pick = lambda col: [col[j] for j in keep]  # noqa: E731
        return (Columns(pick(fast.index), {k: pick(v) for k, v in fast.values.items()},
                        {k: pick(v) for k, v in fast.times.items()}), {fast.index[j] for j in drop})


def _within_limit(m: Messages) -> Messages:
    """Without the oversize messages: the streams worker dead-letters them (`oversize`), so they are bad input
    even when the model would accept them."""
    if max(map(len, filter(None, m.values)), default=0) <= MAX_MESSAGE_BYTES:
        return m
    keep = [i for i, v in enumerate(m.values) if v is None or len(v) <= MAX_MESSAGE_BYTES]
    return Messages(*([col[i] for i in keep] for col in (m.partitions, m.offsets, m.keys, m.values)))


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Parsing a batch allocates a dict per message and no cycle: left on, the cyclic collector rescans the
    whole heap many times per batch for nothing (docs/warehouse.md)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _meta(table: Table, topic: str, m: Messages, index: list[int], n: int) -> list[list]:
    every = len(index) == n
    pick = (lambda col: col) if every else (lambda col: [col[i] for i in index])
    by_name = {"kafka_topic": lambda: [topic] * len(index), "kafka_partition": lambda: pick(m.partitions),
               "kafka_offset": lambda: pick(m.offsets)}
    return [by_name[name]() for name in table.meta]


def _merge(table: Table, index: list[int], columns: list[list] | None, months: list | None,
           slow: list[tuple[int, list]]) -> Stored:
    """Fast-path columns (rows at `index`) and slow-path rows (at their own positions), in arrival order."""
    width = len(table.columns())
    month_at = table.month_index()
    if not slow:
        return Stored(table, columns or [[] for _ in range(width)], None if month_at is None else months or [])
    slow_months = [row[month_at] for _, row in slow] if month_at is not None else None
    if columns is None:
        return Stored(table, [list(c) for c in zip(*(row for _, row in slow))], slow_months)
    order = sorted([(i, 0, k) for k, i in enumerate(index)] + [(i, 1, k) for k, (i, _) in enumerate(slow)])
    merged = [[columns[c][k] if src == 0 else slow[k][1][c] for _, src, k in order] for c in range(width)]
    merged_months = None
    if month_at is not None:
        merged_months = [months[k] if src == 0 else slow_months[k] for _, src, k in order]
    return Stored(table, merged, merged_months)
