"""A lane's batches, each from polled to stored, in order: decode → insert → done.

Each batch is decoded (in a child process when it is large, several at once, sinks/decode_pool.py), its rows
stored already are dropped (sinks/dedup.py), then one writer thread inserts it: one batch at a time, in the
order they came, each insert retried until stored or refused (sinks/store.py). `done()` hands back each batch
once its inserts finished, oldest first, for the lane to commit its offsets. Kafka-free: the benchmark drives
it as the sink does (bench/sink.py).
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from sinks.batch import Batch, Insert
from sinks.decode import Decoder
from sinks.decode_pool import DecodePool
from sinks.dedup import Dedup
from sinks.store import Store

DECODE_AHEAD = 2   # batches decoded at once beside the one being inserted (the children of a 2-core host)


@dataclass
class Job:
    batch: Batch
    decoding: Future | None             # a child's work; None: decoded in-process when its turn comes
    inserts: list[Insert] = field(default_factory=list)
    writing: Future | None = None       # the writer's work
    stored: list[tuple[Insert, int]] = field(default_factory=list)   # each insert and the rows it stored
    seconds: float = 0.0                # the inserts took


class Flow:
    def __init__(self, decoder: Decoder, pool: DecodePool, dedup: Dedup, store: Store,
                 on_wait: Callable[[bool], None] | None = None, name: str = "sink"):
        self.decoder, self.pool, self.dedup, self.store, self.on_wait = decoder, pool, dedup, store, on_wait
        self.jobs: deque[Job] = deque()
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-insert")

    def put(self, batch: Batch) -> None:
        self.jobs.append(Job(batch, self.pool.submit(batch)))
        self.advance()

    def full(self) -> bool:
        """As many batches as may wait: the lane stops fetching until one is stored (memory stays bounded)."""
        return len(self.jobs) > DECODE_AHEAD

    def busy(self) -> bool:
        return bool(self.jobs)

    def advance(self) -> None:
        """Hand the oldest batch not yet inserting to the writer, once the one before it is stored and it is
        decoded."""
        for n, job in enumerate(self.jobs):
            if job.writing is not None:
                continue
            if n and not self.jobs[n - 1].writing.done() or job.decoding is not None and not job.decoding.done():
                return
            decoded = self.pool.result(job.decoding)
            job.inserts = self.dedup.filter(decoded if decoded is not None else self.decoder.inserts(job.batch))
            job.writing = self.writer.submit(self._write, job)
            return

    def done(self) -> Iterator[Job]:
        """Each batch whose inserts finished, oldest first; raises what the writer raised (a stop meanwhile)."""
        while self.jobs and self.jobs[0].writing is not None and self.jobs[0].writing.done():
            job = self.jobs.popleft()
            job.writing.result()
            self.advance()
            yield job

    def wait(self, seconds: float) -> None:
        """Until the oldest batch's step finished, or `seconds` passed."""
        if self.jobs:
            job = self.jobs[0]
            step = job.writing or job.decoding
            if step is not None:
                try:
                    step.exception(timeout=seconds)
                except TimeoutError:
                    pass
                return
        time.sleep(seconds)

    def drain(self) -> Iterator[Job]:
        """Every batch put so far, stored, oldest first."""
        while self.jobs:
            self.advance()
            self.wait(0.2)
            yield from self.done()

    def close(self) -> None:
        self.writer.shutdown(wait=True)

    def _write(self, job: Job) -> None:
        """Writer thread: the batch's inserts, in order."""
        t0 = time.monotonic()
        for ins in job.inserts:
            job.stored.append((ins, self.store.insert(ins, job.batch, self.on_wait)))
        job.seconds = time.monotonic() - t0
