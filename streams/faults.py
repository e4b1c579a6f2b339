"""Faults the worker's tests inject, installed at start only when their variable is set: unset, the worker runs
the classes as they are, with nothing in its hot path.

- CITYOPS_WORKER_FETCH_AHEAD=N (tests/test_restart_streams.py): after each seek to the commits, the batch topics'
  partitions are fetched from N offsets past them, as a fetch made during that seek can be.
- CITYOPS_WORKER_LOSE_ACK_AT=N (tests/test_faults.py): on each partition of a batch topic, the N-th to N+4-th
  messages handled are never acked (five in a row, as Faust's commit steps over a single gap).
"""
from __future__ import annotations

import os
from collections import Counter
from functools import wraps


def install(consumer_cls) -> list[str]:
    """Patch `consumer_cls` (streams.overrides.BatchConsumer) for the faults asked for; their names."""
    installed = []
    if ahead := int(os.environ.get("CITYOPS_WORKER_FETCH_AHEAD", "0")):
        seek_to_commits = consumer_cls.perform_seek

        @wraps(seek_to_commits)
        async def perform_seek(self) -> None:
            await seek_to_commits(self)
            for tp in self.assignment():
                if tp.topic in self.app.batch_handlers and (start := self._handled.next(tp)) is not None:
                    await self.seek(tp, start + ahead)

        consumer_cls.perform_seek = perform_seek
        installed.append(f"fetch {ahead} ahead")
    if lose_at := int(os.environ.get("CITYOPS_WORKER_LOSE_ACK_AT", "0")):
        ack, handled = consumer_cls.ack, Counter()

        @wraps(ack)
        def lossy_ack(self, message) -> bool:
            if message.topic in self.app.batch_handlers:
                handled[message.topic, message.partition] += 1
                if lose_at <= handled[message.topic, message.partition] < lose_at + 5:
                    return False
            return ack(self, message)

        consumer_cls.ack = lossy_ack
        installed.append(f"lose acks {lose_at}..{lose_at + 4}")
    return installed
