"""Faults the sink's tests inject, installed at start only when their variable is set: unset, the sink runs the
classes as they are, with nothing in its hot path.

- CITYOPS_SINK_KILL_AFTER_INSERTS=[lane:]N (tests/test_sink.py): SIGKILL the sink right after the N-th insert of
  that lane (or of either lane, each counted apart), before its batch's offsets are committed.
"""
from __future__ import annotations

import os
import signal
from collections import Counter
from functools import wraps


def install(store_cls) -> list[str]:
    """Patch `store_cls` (sinks.store.Store) for the faults asked for; their names."""
    lane, _, after = os.environ.get("CITYOPS_SINK_KILL_AFTER_INSERTS", "").rpartition(":")
    if not after:
        return []
    kill_after, inserts, insert = int(after), Counter(), store_cls.insert

    @wraps(insert)
    def insert_then_maybe_die(self, *args, **kwargs):
        stored = insert(self, *args, **kwargs)
        inserts[self.lane] += 1
        if lane in ("", self.lane) and inserts[self.lane] >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return stored

    store_cls.insert = insert_then_maybe_die
    return [f"killed after {kill_after} inserts of {lane or 'each lane'}"]
