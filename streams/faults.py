"""Faults the worker's tests inject, installed at start only when their variable is set: unset, the worker runs
the classes as they are, with nothing in its hot path.

- CITYOPS_WORKER_FETCH_AHEAD=N (tests/test_restart_streams.py): each seek to the commits puts the batch topics'
  partitions N offsets past them, as a fetch made during that seek can.
- CITYOPS_WORKER_LOSE_ACK_AT=N (tests/test_faults.py): on each partition of a batch topic, the N-th to N+4-th
  messages handled are never acked (five in a row, as Faust's commit steps over a single gap).
"""
from __future__ import annotations

import os
from collections import Counter
from functools import partial, wraps


def install(consumer_cls) -> list[str]:
    """Patch `consumer_cls` (streams.overrides.BatchConsumer) for the faults asked for; their names."""
    installed = []
    if ahead := int(os.environ.get("CITYOPS_WORKER_FETCH_AHEAD", "0")):
        seek_to_commits, to_committed = consumer_cls.perform_seek, consumer_cls.seek_to_committed
        seek = consumer_cls.seek

        async def seek_past(self, tp, offset: int) -> None:
            await seek(self, tp, offset + ahead if tp.topic in self.app.batch_handlers else offset)

        @wraps(to_committed)
        async def seek_past_committed(self):
            committed = await to_committed(self)
            for tp, offset in committed.items():
                if offset is not None and offset >= 0:
                    await seek_past(self, tp, offset)
            return committed

        @wraps(seek_to_commits)
        async def perform_seek(self) -> None:
            # Every seek to the commits lands past them: nothing between is fetched, whatever the timing.
            self.seek = partial(seek_past, self)
            try:
                await seek_to_commits(self)
            finally:
                del self.seek

        consumer_cls.seek_to_committed = seek_past_committed
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
