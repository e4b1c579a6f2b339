"""Inserts with retry: transient failures (server down, network) wait and retry with backoff, forever,
until stop; data the warehouse refuses is isolated row by row and turned into dead letters."""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

from clickhouse_connect.driver.exceptions import DatabaseError, DataError, ProgrammingError

from cityops.models.deadletters import DeadLetter
from cityops.warehouse.schema import DEAD_LETTERS
from sinks.batch import Batch, Insert

log = logging.getLogger("cityops.sink")

# Errors that say "this data", not "the server": retrying the same rows cannot help.
REJECTED = (DataError, ProgrammingError, TypeError, ValueError, OverflowError)
# ClickHouse's own "cannot read this value" codes (the server parses the inserted JSON): parse errors, type
# mismatch, out of range, NULL in a non-Nullable column.
_DATA_CODES = {6, 26, 27, 38, 41, 53, 69, 70, 72, 117, 131, 321, 349}
_CODE = re.compile(r"Code: (\d+)")
# Inserts go as JSONColumns: one orjson call builds the block and ClickHouse parses it in C++ (clickhouse-connect's
# Native encoder spends more Python time per row on timestamps and LowCardinality than the whole decoding).
_INSERT_SETTINGS = {"date_time_input_format": "best_effort", "input_format_skip_unknown_fields": 0}


def refused(e: Exception) -> bool:
    """Did the warehouse refuse the data (as opposed to being unavailable)?"""
    if isinstance(e, REJECTED):
        return True
    codes = _CODE.findall(str(e)) if isinstance(e, DatabaseError) else []
    return bool(codes) and int(codes[-1]) in _DATA_CODES


class Stopped(Exception):
    """Stop was requested while the warehouse was unreachable: nothing was committed."""


class Store:
    def __init__(self, wh, stop: threading.Event, max_backoff_s: float = 30.0):
        self.wh = wh
        self.stop = stop
        self.max_backoff_s = max_backoff_s
        self._dead_builder = None

    def write(self, ins: Insert) -> None:
        self.wh.raw_insert(ins.table.name, list(ins.table.columns()), ins.body(), fmt="JSONColumns",
                           settings={"insert_deduplication_token": ins.token, **_INSERT_SETTINGS})

    def retrying(self, fn: Callable, *args, on_wait: Callable[[bool], None] | None = None):
        delay = 0.5
        while True:
            try:
                result = fn(*args)
            except Exception as e:  # noqa: BLE001 — anything but refused data is the warehouse being unavailable
                if refused(e):
                    raise
                if self.stop.is_set():
                    raise Stopped(str(e)) from e
                log.warning("warehouse unavailable (%s); retrying in %.1f s", str(e).splitlines()[0][:200], delay)
                if on_wait:
                    on_wait(True)
                self.stop.wait(delay)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            if on_wait and delay > 0.5:
                on_wait(False)
            return result

    def insert(self, ins: Insert, batch: Batch, on_wait: Callable[[bool], None] | None = None) -> int:
        """Store `ins`, retrying while the warehouse is unavailable (`on_wait(True)` before each wait,
        `on_wait(False)` once it is back); rows it refuses become dead letters. Returns the rows stored."""
        try:
            self.retrying(self.write, ins, on_wait=on_wait)
            return len(ins)
        except Exception as e:  # noqa: BLE001
            if not refused(e):
                raise
            return self._isolate(ins, batch, e, on_wait)

    def _isolate(self, ins: Insert, batch: Batch, error: Exception, on_wait) -> int:
        """Store the good rows one by one; the refused ones become dead letters with the reason."""
        log.warning("warehouse refused a batch for %s (%s): isolating rows", ins.table.name, error)
        good, letters = [], []
        for row in ins.rows:
            try:
                self.write(Insert.of_rows(ins.table, [row]))
                good.append(row)
            except Exception as e:  # noqa: BLE001
                if not refused(e):
                    raise
                letters.append(self._letter(ins, row, batch, e))
        if not good and ins.table is DEAD_LETTERS:
            raise error   # nothing left to fall back on: surface it rather than loop
        if letters:
            self.retrying(self.write, Insert.of_rows(DEAD_LETTERS, letters), on_wait=on_wait)
        return len(good)

    def _letter(self, ins: Insert, row: list, batch: Batch, e: Exception) -> list:
        cols = list(ins.table.columns())
        partition, offset = row[cols.index("kafka_partition")], row[cols.index("kafka_offset")]
        topic = row[cols.index("kafka_topic")] if "kafka_topic" in cols else ins.table.topic.name
        key, value = batch.raw(topic, partition, offset)
        letter = DeadLetter.of(topic, partition, offset, "warehouse_rejected",
                               f"{ins.table.name}: {str(e).splitlines()[0][:500]}", value, key)
        if self._dead_builder is None:
            self._dead_builder = DEAD_LETTERS.row_builder("")
        return self._dead_builder(letter, topic, partition, offset)
