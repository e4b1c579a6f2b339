"""A batch of consumed messages and the inserts that store it.

Insert order is what makes a crash safe. Within a topic, every table but the last is idempotent
(ReplacingMergeTree), and the last one (the authority) is where the sink reads its resume offsets from.
Each insert is one part of one monthly partition, hence atomic, and parts go in arrival order; so after a
SIGKILL, `max(kafka_offset)` of the authority table per Kafka partition is a point before which every
message is stored and after which none is. Dead letters go first: a replay re-creates them, and their
table replaces twins by (topic, partition, offset, reason).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson

from cityops.warehouse.schema import DEAD_LETTERS, TABLES, Table

TZ = ZoneInfo("Asia/Shanghai")


class Insert:
    """One table's rows from one batch, in `table.columns()` order (kafka meta columns last): built as columns
    in-process, or received as the JSONColumns body a decoding child made (sinks/decode_pool.py). Each form is
    made from the other when asked for: the body to write, the columns to drop duplicates or bisect."""

    def __init__(self, table: Table, columns: list[list] | None = None, *, body: bytes | None = None,
                 token: str | None = None, identities: list[str] | None = None, size: int | None = None):
        self.table = table
        self._columns, self._body, self._token, self._identities = columns, body, token, identities
        self._size = size

    def __len__(self) -> int:
        return self._size if self._size is not None else len(self.columns[0])

    @property
    def columns(self) -> list[list]:
        if self._columns is None:
            self._columns = list(orjson.loads(self._body).values())
        return self._columns

    @property
    def rows(self) -> list[list]:
        return [list(r) for r in zip(*self.columns)]

    def body(self) -> bytes:
        """JSONColumns: one orjson call builds the block and ClickHouse parses it in C++."""
        if self._body is None:
            self._body = orjson.dumps(dict(zip(self.table.columns(), self._columns)))
        return self._body

    @classmethod
    def of_rows(cls, table: Table, rows: list[list]) -> Insert:
        return cls(table, [list(c) for c in zip(*rows)])

    def keep(self, positions: list[int]) -> Insert:
        """The insert with only the rows at `positions` (the others stored already)."""
        return Insert(self.table, [[col[i] for i in positions] for col in self.columns])

    @property
    def token(self) -> str:
        """Same messages → same token: a retried insert the server already stored (e.g. the reply timed out)
        is dropped by ClickHouse's insert deduplication instead of stored twice. Digest of every row's
        (topic,) partition and offset, so two different inserts never share one."""
        if self._token is None:
            meta = self.columns[-len(self.table.meta):]
            self._token = f"{self.table.name}|{len(self)}|{hashlib.blake2b(orjson.dumps(meta), digest_size=16).hexdigest()}"
        return self._token

    @property
    def identities(self) -> list[str] | None:
        """What makes each row the same row (`Table.identity`), as text; None for a table without one."""
        if self._identities is None and self.table.identity:
            names = list(self.table.columns())
            cols = [self.columns[names.index(c)] for c in self.table.identity]
            self._identities = cols[0] if len(cols) == 1 else ["#".join(map(str, parts)) for parts in zip(*cols)]
        return self._identities


@dataclass
class Messages:
    """One topic's messages in arrival order, as parallel lists."""

    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    values: list[bytes | None] = field(default_factory=list)


@dataclass
class Batch:
    topics: dict[str, Messages] = field(default_factory=dict)
    size: int = 0
    bytes: int = 0                # of the messages' values and keys
    started: float = 0.0          # time.monotonic() when its first message was polled

    def add(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        m = self.topics.get(topic)
        if m is None:
            m = self.topics[topic] = Messages()
        m.partitions.append(partition)
        m.offsets.append(offset)
        m.keys.append(key)
        m.values.append(value)
        self.size += 1
        self.bytes += (len(value) if value else 0) + (len(key) if key else 0)

    def __len__(self) -> int:
        return self.size

    def next_offsets(self) -> dict[tuple[str, int], int]:
        """Offsets to commit once everything is stored: one past the last message per partition."""
        out: dict[tuple[str, int], int] = {}
        for topic, m in self.topics.items():
            last = dict(zip(m.partitions, m.offsets))   # offsets grow within a partition: the last one wins
            out.update({(topic, p): o + 1 for p, o in last.items()})
        return out

    def raw(self, topic: str, partition: int, offset: int) -> tuple[bytes | None, bytes | None]:
        """The original key and value of one message (rare: a row the warehouse refused)."""
        m = self.topics.get(topic)
        if m is not None:
            for i, (p, o) in enumerate(zip(m.partitions, m.offsets)):
                if p == partition and o == offset:
                    return m.keys[i], m.values[i]
        return None, None


@dataclass
class Stored:
    """What one table receives from a batch: columns in arrival order, and the partition month of each row."""

    table: Table
    columns: list[list]
    months: list[datetime] | None

    def extend(self, other: Stored) -> None:
        for mine, theirs in zip(self.columns, other.columns):
            mine.extend(theirs)
        if self.months is not None:
            self.months.extend(other.months)


def ordered_inserts(stored: dict[str, Stored]) -> list[Insert]:
    """Dead letters first, then the tables in catalogue order (the authority last within its topic), each cut
    where the partition month changes."""
    ordered = sorted(stored.values(), key=lambda s: (s.table is not DEAD_LETTERS, TABLES.index(s.table)))
    return [ins for s in ordered if s.columns and s.columns[0] for ins in _by_month(s)]


def _by_month(s: Stored) -> list[Insert]:
    """Cut the rows, kept in arrival order, wherever the partition month changes."""
    if s.months is None or _month(min(s.months)) == _month(max(s.months)):
        return [Insert(s.table, s.columns)]
    keys = [_month(t) for t in s.months]
    cuts = [0] + [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]] + [len(keys)]
    return [Insert(s.table, [c[a:b] for c in s.columns]) for a, b in zip(cuts, cuts[1:])]


def _month(t: datetime) -> tuple[int, int]:
    local = t.astimezone(TZ)
    return local.year, local.month
