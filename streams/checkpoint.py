"""The order every offset commit of the worker follows, in one place (as quixstreams' `Checkpoint.commit`):

1. the tables' state: every key changed since the last commit goes into the producer, with its latest value;
2. the outputs: the producer is flushed, so the handlers' outputs and those changelog writes are on the broker
   (acks=all);
3. the offsets: only then are the consumed offsets committed.

A worker killed between two steps replays from its last commit onto state at least as new as that commit; the
handlers are idempotent on replay (docs/streams.md, exactness across crashes).
"""
from __future__ import annotations

from typing import Protocol

STATE_WRITE_S = 1.0   # timers change tables with no offset to commit: their state is written this often


class State(Protocol):
    def write_changelog(self) -> None: ...


class Checkpoint:
    def __init__(self, app):
        self.app = app
        self.tables: list[State] = []

    def track(self, table: State) -> None:
        """A table whose changes each commit writes first (streams/state.py TableKV)."""
        self.tables.append(table)

    def write_state(self) -> None:
        for table in self.tables:
            table.write_changelog()

    async def commit(self, consumer, offsets: dict) -> bool:
        """Commit `offsets` (partition → next offset) for `consumer`, Faust's BatchConsumer; False when none of
        them is still assigned to it."""
        assignment = consumer.assignment()
        ours = {tp: offset for tp, offset in offsets.items() if tp in assignment}
        if len(ours) < len(offsets):
            consumer.log.info("Discarded commit for revoked partitions that will be processed again: %r",
                              {tp: o for tp, o in offsets.items() if tp not in ours})
        if not ours:
            return False
        self.write_state()
        await self.app.producer.flush()
        committed = await consumer._commit(ours)
        if committed:
            self.app.tables.on_commit(ours)
        consumer._committed_offset.update(ours)
        self.app.monitor.on_tp_commit(ours)
        return committed

    async def write_state_tick(self) -> None:
        self.write_state()
