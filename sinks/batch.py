"""A batch of decoded messages and the inserts that store it.

Insert order is what makes a crash safe. Within a topic, every table but the last is idempotent
(ReplacingMergeTree), and the last one (the authority) is where the sink reads its resume offsets from.
Each insert is one part of one monthly partition, hence atomic, and parts go in arrival order; so after a
SIGKILL, `max(kafka_offset)` of the authority table per Kafka partition is a point before which every
message is stored and after which none is. Dead letters go first: a replay re-creates them, and their
table replaces twins by (topic, partition, offset, reason).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from cityops.warehouse.schema import DEAD_LETTERS, Table
from sinks.decode import Decoded

TZ = ZoneInfo("Asia/Shanghai")


@dataclass
class Insert:
    table: Table
    rows: list[list]

    @property
    def token(self) -> str:
        """Same rows → same token: a retried insert the server already stored (e.g. the reply timed out)
        is dropped by ClickHouse's insert deduplication instead of stored twice."""
        first, last = self.rows[0][-3:], self.rows[-1][-3:]
        return f"{self.table.name}|{first}|{last}|{len(self.rows)}"


@dataclass
class Batch:
    records: list[tuple[str, int, int, Decoded]] = field(default_factory=list)
    raw: dict[tuple[str, int, int], tuple[bytes | None, bytes | None]] = field(default_factory=dict)

    def add(self, topic: str, partition: int, offset: int, key, value, decoded: Decoded) -> None:
        self.records.append((topic, partition, offset, decoded))
        self.raw[(topic, partition, offset)] = (key, value)

    def __len__(self) -> int:
        return len(self.records)

    def next_offsets(self) -> dict[tuple[str, int], int]:
        """Offsets to commit once everything is stored: one past the last message per partition."""
        out: dict[tuple[str, int], int] = {}
        for topic, partition, offset, _ in self.records:
            out[(topic, partition)] = max(out.get((topic, partition), 0), offset + 1)
        return out

    def inserts(self) -> list[Insert]:
        per_table: dict[str, tuple[Table, list[list]]] = {}
        for _, _, _, decoded in self.records:
            for table, row in decoded.rows:
                per_table.setdefault(table.name, (table, []))[1].append(row)
        ordered = sorted(per_table.values(), key=lambda tr: (tr[0] is not DEAD_LETTERS, _rank(tr[0])))
        return [ins for table, rows in ordered for ins in _by_month(table, rows)]


def _rank(table: Table) -> int:
    from cityops.warehouse.schema import TABLES

    return TABLES.index(table)


def _by_month(table: Table, rows: list[list]) -> list[Insert]:
    """Cut the rows, kept in arrival order, wherever the partition month changes."""
    i = table.month_index()
    if i is None:
        return [Insert(table, rows)]
    out: list[Insert] = []
    current = None
    for row in rows:
        month = _month(row[i])
        if month != current:
            out.append(Insert(table, []))
            current = month
        out[-1].rows.append(row)
    return out


def _month(t: datetime) -> tuple[int, int]:
    local = t.astimezone(TZ)
    return local.year, local.month
