"""Inserts with retry: transient failures (server down, network) wait and retry with backoff, forever,
until stop; data the warehouse refuses is isolated row by row and turned into dead letters."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from clickhouse_connect.driver.exceptions import DataError, ProgrammingError

from cityops.models.deadletters import DeadLetter
from cityops.warehouse.schema import DEAD_LETTERS
from sinks.batch import Batch, Insert

log = logging.getLogger("cityops.sink")

# Errors that say "this data", not "the server": retrying the same rows cannot help.
REJECTED = (DataError, ProgrammingError, TypeError, ValueError, OverflowError)


class Stopped(Exception):
    """Stop was requested while the warehouse was unreachable: nothing was committed."""


class Store:
    def __init__(self, wh, stop: threading.Event, max_backoff_s: float = 30.0):
        self.wh = wh
        self.stop = stop
        self.max_backoff_s = max_backoff_s
        self._dead_builder = None

    def write(self, ins: Insert) -> None:
        self.wh.insert(ins.table.name, ins.rows, column_names=list(ins.table.columns()),
                       settings={"insert_deduplication_token": ins.token})

    def retrying(self, fn: Callable, *args, on_wait: Callable[[bool], None] | None = None):
        delay = 0.5
        while True:
            try:
                result = fn(*args)
            except REJECTED:
                raise
            except Exception as e:  # noqa: BLE001 — anything else is the warehouse being unavailable
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

    def insert_keeping_consumer_alive(self, ins: Insert, batch: Batch, keepalive: Callable[[bool], None]) -> int:
        try:
            self.retrying(self.write, ins, on_wait=keepalive)
            return len(ins.rows)
        except REJECTED as e:
            return self._isolate(ins, batch, e, keepalive)

    def insert_once(self, ins: Insert, batch: Batch) -> int:
        self.write(ins)
        return len(ins.rows)

    def _isolate(self, ins: Insert, batch: Batch, error: Exception, keepalive) -> int:
        """Store the good rows one by one; the refused ones become dead letters with the reason."""
        log.warning("warehouse refused a batch for %s (%s): isolating rows", ins.table.name, error)
        good, letters = [], []
        for row in ins.rows:
            try:
                self.write(Insert(ins.table, [row]))
                good.append(row)
            except REJECTED as e:
                letters.append(self._letter(ins, row, batch, e))
        if not good and ins.table is DEAD_LETTERS:
            raise error   # nothing left to fall back on: surface it rather than loop
        if letters:
            self.retrying(self.write, Insert(DEAD_LETTERS, letters), on_wait=keepalive)
        return len(good)

    def _letter(self, ins: Insert, row: list, batch: Batch, e: Exception) -> list:
        cols = list(ins.table.columns())
        partition, offset = row[cols.index("kafka_partition")], row[cols.index("kafka_offset")]
        topic = row[cols.index("kafka_topic")] if "kafka_topic" in cols else ins.table.topic.name
        key, value = batch.raw.get((topic, partition, offset), (None, None))
        letter = DeadLetter.of(topic, partition, offset, "warehouse_rejected",
                               f"{ins.table.name}: {str(e).splitlines()[0][:500]}", value, key)
        if self._dead_builder is None:
            self._dead_builder = DEAD_LETTERS.row_builder("")
        return self._dead_builder(letter, topic, partition, offset)
