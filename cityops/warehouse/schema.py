"""Which model each warehouse table stores, how personal data is transformed on the way in, and the row
builder the sink uses. Column names and types derive from the models (columns.py)."""
from __future__ import annotations

import base64
import functools
import operator

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from pydantic import BaseModel

from cityops import topics
from cityops.pii import caller_hash, mask_payload, mask_text
from cityops.warehouse.columns import model_columns

# Every sink table records where each row came from: the sink resumes from max(kafka_offset) per partition.
META = {"kafka_partition": "UInt16", "kafka_offset": "UInt64"}


@dataclass(frozen=True)
class Table:
    name: str
    topic: topics.Topic
    masked: frozenset[str] = frozenset()          # free text: phones, IDs, names masked
    hashed: dict[str, str] = field(default_factory=dict)   # phone field → keyed-hash column in its place
    dropped: frozenset[str] = frozenset()         # never stored
    masked_b64: frozenset[str] = frozenset()      # base64 payloads: decoded, masked, re-encoded
    meta: dict[str, str] = field(default_factory=lambda: dict(META))
    month: str | None = "occurred_at"             # PARTITION BY toYYYYMM(month) in the migration
    # What makes a row the same row when a message arrives twice at a new offset (the sink stores it once,
    # sinks/dedup.py), and the column telling which rows are the newest.
    identity: tuple[str, ...] = ()
    newest: str = "received_at"

    def month_index(self) -> int | None:
        return list(self.columns()).index(self.month) if self.month else None

    @property
    def model(self) -> type[BaseModel]:
        return self.topic.value

    def columns(self) -> dict[str, str]:
        cols: dict[str, str] = {}
        for name, typ in model_columns(self.model).items():
            if name in self.dropped:
                continue
            if name in self.hashed:
                cols[self.hashed[name]] = "String"
            else:
                cols[name] = typ
        return cols | self.meta

    def _fixes(self, pii_key: str) -> tuple[list[str], list[tuple[int, Callable]]]:
        """Model fields stored, in column order, and the fix-up of each column that needs one."""
        fields, fixes = [], []
        for name, typ in model_columns(self.model).items():
            if name in self.dropped:
                continue
            i = len(fields)
            fields.append(name)
            if name in self.hashed:
                fixes.append((i, functools.lru_cache(maxsize=65_536)(lambda p: caller_hash(p, pii_key))))
            elif name in self.masked:
                fixes.append((i, _masked))
            elif name in self.masked_b64:
                fixes.append((i, _mask_b64))
            elif "String" in typ and "Nullable" not in typ:
                fixes.append((i, _text))
        return fields, fixes

    def row_builder(self, pii_key: str) -> Callable[[BaseModel, str, int, int], list]:
        """A function (value, topic, partition, offset) → row in `columns()` order. Hot path of the sink:
        one attrgetter for all fields, then per-column fix-ups only where a column needs one."""
        fields, fixes = self._fixes(pii_key)
        get = operator.attrgetter(*fields)
        meta = list(self.meta)

        def build(value: BaseModel, topic: str, partition: int, offset: int) -> list:
            row = list(get(value))
            for i, fix in fixes:
                v = row[i]
                if v is None or fix is not _text or v.__class__ is not str:
                    row[i] = fix(v)
            row += [topic if m == "kafka_topic" else partition if m == "kafka_partition" else offset for m in meta]
            return row

        return build

    def column_builder(self, pii_key: str) -> Callable[[dict[str, list]], list[list]]:
        """The same transformation as `row_builder`, column-wise: model field → list of plain values (str, int,
        float, bool, None, datetime or timestamp text) in, the model columns of `columns()` out (no meta)."""
        fields, fixes = self._fixes(pii_key)
        by_index = dict(fixes)

        def build(values: dict[str, list]) -> list[list]:
            out = []
            for i, name in enumerate(fields):
                col, fix = values[name], by_index.get(i)
                if fix is _text:
                    if None in col:   # plain values: only None needs fixing
                        col = ["" if v is None else v for v in col]
                elif fix is not None:
                    col = list(map(fix, col))
                out.append(col)
            return out

        return build

def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, Enum):
        return v.value
    return v if isinstance(v, str) else str(v)


def _masked(v) -> str:
    return mask_text(v if v.__class__ is str else str(v or ""))


def _mask_b64(b64: str) -> str:
    """A payload masked again whoever made its letter, whatever its encoding; nothing kept when it is not
    valid base64 or not text."""
    try:
        payload = base64.b64decode(b64, validate=True)
    except ValueError:
        return ""
    text, _ = mask_payload(payload, len(payload) * 2)
    return base64.b64encode(text.encode()).decode() if text else ""


_TEXT = frozenset({"text", "note", "address"})

_EVENT = ("event_id",)  # producers retry and upstream systems resend
RAW_TICKETS = Table("raw_tickets", topics.HOTLINE_TICKETS, masked=_TEXT, identity=_EVENT,
                    hashed={"caller_phone": "caller_hash"}, dropped=frozenset({"caller_name"}))
RAW_SENSOR_EVENTS = Table("sensor_events", topics.SENSOR_EVENTS, identity=_EVENT)
RAW_APP_REPORTS = Table("raw_app_reports", topics.APP_REPORTS, masked=_TEXT | {"photo_url"}, identity=_EVENT,
                        hashed={"reporter_phone": "reporter_hash"})
# Status events of any case as the case-handling systems sent them: the note is free text a department wrote,
# the photo URL may carry a query string.
RAW_CASE_EVENTS = Table("raw_case_events", topics.CASE_EVENTS, masked=frozenset({"note", "photo_url"}),
                        identity=_EVENT)
# Case text is masked by the streams already; masking again is idempotent and guards against a stage's bug.
_CASE_TEXT = frozenset({"text", "address", "note"})
CASE_CURRENT = Table("case_current", topics.CASES, month=None, masked=_CASE_TEXT)
# A restarted streams worker re-emits the case versions it replays (streams/cases/lifecycle.py).
CASE_HISTORY = Table("case_history", topics.CASES, masked=_CASE_TEXT, identity=("case_id", "version"),
                     newest="processed_at")
INCIDENTS = Table("incidents", topics.INCIDENTS, month="opened_at")
MINUTE_COUNTS = Table("minute_counts", topics.AGGREGATES, month="minute")
ALERTS = Table("alerts", topics.ALERTS, masked=frozenset({"title", "detail"}))
DELIVERIES = Table("deliveries", topics.DELIVERIES, month="attempted_at")
# Dead letters are masked by whoever made them; masked again here, as every table's free text is.
DEAD_LETTERS = Table("dead_letters", topics.DEADLETTERS, month="failed_at", masked=frozenset({"detail"}),
                     masked_b64=frozenset({"payload_b64", "key_b64"}),
                     meta={"kafka_topic": "LowCardinality(String)", **META})

TABLES: tuple[Table, ...] = (RAW_TICKETS, RAW_SENSOR_EVENTS, RAW_APP_REPORTS, RAW_CASE_EVENTS, CASE_CURRENT,
                             CASE_HISTORY, INCIDENTS, MINUTE_COUNTS, ALERTS, DELIVERIES, DEAD_LETTERS)


def tables_of(topic_name: str) -> tuple[Table, ...]:
    """Tables a topic fills, in insert order: the last one is the authority the sink resumes from, so
    the ones before it must be idempotent (ReplacingMergeTree) when a batch is replayed."""
    return tuple(t for t in TABLES if t.topic.name == topic_name)


def by_name(name: str) -> Table:
    for t in TABLES:
        if t.name == name:
            return t
    raise KeyError(name)
