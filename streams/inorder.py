"""Which fetched messages of a partition may reach the batch handlers: each partition's messages in offset
order from where its commit left it, never one before all the offsets ahead of it were handled.

The handlers skip what they applied before a restart by comparing offsets (a minute cell's last counted
offset, a device's last applied offset), which is exact only if the first time they see an offset they
have seen every offset before it since the commit. The consumer can break that: a fetch made while a new
worker's partitions are sought to their commits can come first, from past the commit, and the minute counts
would then skip the commit's own run as already counted (docs/streams.md). A message past the next offset to
handle is refused here, and the consumer reads the partition again from that offset.
"""
from __future__ import annotations

from typing import Hashable, Mapping


class HandledOffsets:
    def __init__(self) -> None:
        self._next: dict[Hashable, int] = {}   # partition → the next offset never handled since its commit

    def start(self, offsets: Mapping[Hashable, int]) -> None:
        """Partitions (re)started at these offsets (their commits); until then nothing of theirs is admitted."""
        self._next.update(offsets)

    def clear(self) -> None:
        """Nothing is admitted until `start` says where each partition starts (a rebalance, a seek)."""
        self._next.clear()

    def next(self, tp: Hashable) -> int | None:
        return self._next.get(tp)

    def admit(self, tp: Hashable, offset: int) -> bool:
        """Whether a fetched message may be handled: a replay (below the next offset) or the next one. A
        message ahead of the next offset, or of a partition not started, is not."""
        need = self._next.get(tp)
        if need is None or offset > need:
            return False
        if offset == need:
            self._next[tp] = need + 1
        return True

    def unhandle(self, tp: Hashable, offset: int) -> None:
        """An admitted message was dropped unhandled (a rebalance cut its batch short): it is next again."""
        need = self._next.get(tp)
        if need is not None and offset < need:
            self._next[tp] = offset
