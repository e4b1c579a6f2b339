"""Inserts with retry. Every error is one of three kinds:
- the warehouse is unavailable (server down, network, overloaded, our user's grants or tables missing): wait and
  retry with backoff, forever, until stop — nothing is lost and nothing committed meanwhile;
- it refuses the data: the rows it refuses are found by bisection and become dead letters with the reason,
  the rest of the batch is stored;
- anything else: logged with its traceback and counted, retried a few times, then handled as refused data
  (dead letters with the error), so one unexplained error can neither stop the sink nor loop for ever."""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError, ProgrammingError

from cityops.models.deadletters import DeadLetter
from cityops.pii import mask_text
from cityops.warehouse.schema import DEAD_LETTERS
from sinks.batch import Batch, Insert

log = logging.getLogger("cityops.sink")

# Errors that say "this data", not "the server": retrying the same rows cannot help.
REJECTED = (DataError, ProgrammingError, TypeError, ValueError, OverflowError)
# ClickHouse's own "cannot read this value" codes (the server parses the inserted JSON): parse errors, type
# mismatch, out of range, NULL in a non-Nullable column.
_DATA_CODES = {6, 26, 27, 38, 41, 53, 69, 70, 72, 117, 131, 321, 349}
# ClickHouse's "not now" codes (timeouts, network, memory, too many parts or queries, read-only replica,
# keeper) and "not set up" ones (unknown table/column/database, grants, password): waiting (and an operator)
# helps, the data is fine.
_UNAVAILABLE_CODES = {3, 16, 32, 47, 60, 81, 159, 164, 192, 193, 194, 195, 202, 203, 209, 210, 236, 241, 242, 252,
                      279, 285, 319, 394, 425, 497, 516, 999}
_CODE = re.compile(r"Code: (\d+)")
UNKNOWN_TRIES = 5          # an error of no known kind is tried this often before its rows are dead-lettered
# Inserts go as JSONColumns: one orjson call builds the block and ClickHouse parses it in C++ (clickhouse-connect's
# Native encoder spends more Python time per row on timestamps and LowCardinality than the whole decoding).
_INSERT_SETTINGS = {"date_time_input_format": "best_effort", "input_format_skip_unknown_fields": 0}


def refused(e: Exception) -> bool:
    """Did the warehouse refuse the data (as opposed to being unavailable)?"""
    if isinstance(e, REJECTED):
        return True
    codes = _CODE.findall(str(e)) if isinstance(e, DatabaseError) else []
    return bool(codes) and int(codes[-1]) in _DATA_CODES


def unavailable(e: Exception) -> bool:
    """Is the warehouse (or the way to it) unavailable, the data not in question?"""
    if isinstance(e, (OperationalError, ConnectionError, TimeoutError, OSError)):
        return True
    codes = _CODE.findall(str(e)) if isinstance(e, DatabaseError) else []
    return bool(codes) and int(codes[-1]) in _UNAVAILABLE_CODES


class Stopped(Exception):
    """Stop was requested while the warehouse was unreachable: nothing was committed."""


class Unexplained(Exception):
    """An error of no known kind, tried UNKNOWN_TRIES times: its rows become dead letters."""


class Store:
    def __init__(self, wh, stop: threading.Event, max_backoff_s: float = 30.0, lane: str = ""):
        self.wh = wh
        self.stop = stop
        self.max_backoff_s = max_backoff_s
        self.lane = lane          # the sink lane it stores for (sinks/config.py lanes_of)
        self.unexplained = 0      # errors of no known kind seen (each logged with its traceback)
        self._dead_builder = None

    def write(self, ins: Insert) -> None:
        self.wh.raw_insert(ins.table.name, list(ins.table.columns()), ins.body(), fmt="JSONColumns",
                           settings={"insert_deduplication_token": ins.token, **_INSERT_SETTINGS})

    def retrying(self, fn: Callable, *args, on_wait: Callable[[bool], None] | None = None):
        delay, unknown = 0.5, 0
        while True:
            try:
                result = fn(*args)
            except Exception as e:  # noqa: BLE001 — sorted below into refused, unavailable and unexplained
                if refused(e):
                    raise
                if self.stop.is_set():
                    raise Stopped(str(e)) from e
                if not unavailable(e):
                    unknown += 1
                    self.unexplained += 1
                    log.error("warehouse error of no known kind (%d of %d tries)", unknown, UNKNOWN_TRIES,
                              exc_info=(type(e), _masked(e), e.__traceback__))
                    if unknown >= UNKNOWN_TRIES:
                        raise Unexplained(_first_line(e)) from e
                else:
                    log.warning("warehouse unavailable (%s); retrying in %.1f s", _first_line(e), delay)
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
            if not (refused(e) or isinstance(e, Unexplained)):
                raise
            log.warning("warehouse refused a batch of %d rows for %s (%s): bisecting", len(ins), ins.table.name,
                        _first_line(e))
            letters: list[list] = []
            stored = self._bisect(ins.table, ins.rows, batch, e, letters, on_wait)
            if letters and ins.table is DEAD_LETTERS:
                raise e   # nothing left to fall back on: surface it rather than loop
            if letters:
                self.retrying(self.write, Insert.of_rows(DEAD_LETTERS, letters), on_wait=on_wait)
            return stored

    def _bisect(self, table, rows: list[list], batch: Batch, error: Exception, letters: list[list], on_wait) -> int:
        """Store what the warehouse takes of `rows` (known to fail together with `error`): each half is tried,
        a refused half split again, down to the single rows that become dead letters. A few bad rows in a batch
        of n cost about 2·log2(n) inserts each instead of n."""
        if len(rows) == 1:
            letters.append(self._letter(table, rows[0], batch, error))
            return 0
        stored = 0
        for part in (rows[:len(rows) // 2], rows[len(rows) // 2:]):
            try:
                self.retrying(self.write, Insert.of_rows(table, part), on_wait=on_wait)
                stored += len(part)
            except Exception as e:  # noqa: BLE001
                if not (refused(e) or isinstance(e, Unexplained)):
                    raise
                stored += self._bisect(table, part, batch, e, letters, on_wait)
        return stored

    def _letter(self, table, row: list, batch: Batch, e: Exception) -> list:
        cols = list(table.columns())
        partition, offset = row[cols.index("kafka_partition")], row[cols.index("kafka_offset")]
        topic = row[cols.index("kafka_topic")] if "kafka_topic" in cols else table.topic.name
        key, value = batch.raw(topic, partition, offset)
        reason = "warehouse_error" if isinstance(e, Unexplained) else "warehouse_rejected"
        letter = DeadLetter.of(topic, partition, offset, reason, f"{table.name}: {_first_line(e)[:500]}", value, key)
        if self._dead_builder is None:
            self._dead_builder = DEAD_LETTERS.row_builder("")
        return self._dead_builder(letter, topic, partition, offset)


def _first_line(e: BaseException) -> str:
    """The error's first line, masked: ClickHouse quotes the row it could not read."""
    lines = str(e).strip().splitlines()
    return mask_text(lines[0][:300]) if lines else type(e).__name__


def _masked(e: BaseException) -> BaseException:
    """A copy of `e` for the log whose text is masked (its traceback is logged as it is)."""
    try:
        return type(e)(mask_text(str(e)))
    except Exception:  # noqa: BLE001 — an exception type that takes other arguments
        return RuntimeError(mask_text(f"{type(e).__name__}: {e}"))
