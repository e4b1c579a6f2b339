"""Decoding in child processes, so that it runs while ClickHouse inserts the previous batch.

In one process the two do not overlap: a decoding thread slows down while a chdb insert runs beside it
(docs/benchmarks-sink.md). Here child processes decode each
large batch with the same `Decoder` and sends back each insert ready to send (its JSONColumns body, token
and row identities); the sink keeps Kafka, the dedup memory, the inserts and the commits. Small batches (a
quiet stream) are decoded in-process: the round trip would only add latency.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from cityops.topics import CATALOGUE
from cityops.warehouse.schema import TABLES
from sinks.batch import Batch, Insert
from sinks.decode import Decoder, no_cycle_collection

log = logging.getLogger("cityops.sink")
_TABLES = {t.name: t for t in TABLES}


_decoder: Decoder | None = None


def _start(topic_names: tuple[str, ...], pii_key: str, parent: int) -> None:
    global _decoder
    # The sink's pid comes from the sink: a child still importing when the sink was killed would otherwise
    # take its new parent (init) for the sink and wait for work forever.
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="parent-watch").start()
    # Ctrl-C reaches the whole process group; the sink stops its children itself, without their tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _decoder = Decoder(tuple(t for t in CATALOGUE if t.name in topic_names), pii_key)


def _exit_with(parent: int) -> None:
    """A SIGKILLed sink leaves its children waiting for work forever: leave when the parent is gone."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _encode(batch: Batch) -> list[tuple[str, bytes, str, list[str] | None, int]]:
    with no_cycle_collection():   # the decoded rows are alive until encoded: a full collection would scan them
        return [(ins.table.name, ins.body(), ins.token, ins.identities, len(ins)) for ins in _decoder.inserts(batch)]


class DecodePool:
    """Two children: a 2-core host decodes two batches at once while the sink process inserts the one before
    (with one child, decoding is the bottleneck: docs/warehouse.md)."""

    def __init__(self, topic_names: tuple[str, ...], pii_key: str, min_rows: int, processes: int = 2):
        self.args = (topic_names, pii_key)
        self.min_rows = min_rows
        self.processes = processes
        self.pool: ProcessPoolExecutor | None = None
        self._lock = threading.RLock()   # the sink's lanes share the children (sinks/service.py)
        self._pool_of: dict[Future, ProcessPoolExecutor] = {}   # submitted, result not yet taken

    def start(self) -> None:
        """Start the children now, not with the first large batch: that batch comes with a backlog (a restart,
        a burst), when the CPU each child takes to start and import is the least affordable."""
        with self._lock:
            if self.pool is None:
                # spawn, not fork: the sink process runs threads (Kafka client, ClickHouse) a fork would copy mid-work.
                self.pool = ProcessPoolExecutor(self.processes, multiprocessing.get_context("spawn"),
                                                initializer=_start, initargs=(*self.args, os.getpid()))
                try:
                    for _ in range(self.processes):   # a spawn-context pool starts a child per job while none is idle
                        self.pool.submit(int)
                except BrokenProcessPool as e:
                    self._broken(e, self.pool)

    def submit(self, batch: Batch) -> Future | None:
        """The batch's inserts to come from a child, or None for a small batch (decode it in-process)."""
        if len(batch) < self.min_rows:
            return None
        with self._lock:
            self.start()
            if self.pool is None:   # broken while starting
                return None
            try:
                job = self.pool.submit(_encode, batch)
            except BrokenProcessPool as e:
                self._broken(e, self.pool)
                return None
            self._pool_of[job] = self.pool
            return job

    def result(self, job: Future | None) -> list[Insert] | None:
        """What `submit` promised, or None: a small batch, or a child died (then the next batch starts new ones)."""
        if job is None:
            return None
        pool = self._pool_of.pop(job, None)
        try:
            return [Insert(_TABLES[name], body=body, token=token, identities=ids, size=size)
                    for name, body, token, ids, size in job.result()]
        except (BrokenProcessPool, CancelledError) as e:   # cancelled: the other lane closed the broken pool
            self._broken(e, pool)
            return None

    def _broken(self, e: Exception, pool: ProcessPoolExecutor | None) -> None:
        log.warning("a decoding process died (%s): this batch is decoded in-process, new ones start for the next", e)
        with self._lock:
            if pool is self.pool:   # not the new children the other lane may have started meanwhile
                self.close()

    def close(self) -> None:
        with self._lock:
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)
                self.pool = None
                self._pool_of.clear()
