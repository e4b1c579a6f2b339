"""The case clock: which cases fall due, and when closed ones are forgotten.

Checking every case every few seconds would cost O(cases) per tick, and closed cases must leave the table.
Instead, open cases are kept in a heap by due time (fed by every case-state write), so a tick looks only
at the cases now due; a full scan — on start, after the worker's partitions change, and every
`full_every_s` as a safety net — rebuilds the heap and deletes the cases nothing can change any more once they
have been unchanged for `retain_s` (kept that long so replayed or late events still find them and stay
idempotent), and any case unchanged for `idle_s`."""
from __future__ import annotations

import heapq
from datetime import datetime
from typing import Callable, Hashable

from cityops.models.alerts import Alert
from cityops.taxonomy import Taxonomy
from streams.cases import lifecycle
from streams.state import KV

RETAIN_S = 7 * 86400
# A hotline ticket whose closing never came (a lost event). Far beyond any time limit: the longest is 4,320
# working minutes, under three calendar weeks even across the Spring Festival.
IDLE_S = 90 * 86400
FULL_EVERY_S = 600.0


def due_ts(state: dict) -> float | None:
    """When this case next falls due (签收 or its time limit at its level), if it still can."""
    case = state.get("case")
    return None if case is None else lifecycle.due(case)


def expired(state: dict, now: datetime, retain_s: float = RETAIN_S, idle_s: float = IDLE_S) -> bool:
    """Closed cases after `retain_s` unchanged; any case after `idle_s`: kept longer, the worker's memory and every
    recovery from the changelog would grow for as long as the city runs."""
    case = state.get("case")
    if case is None:   # lifecycle events or co-reporters waiting for a case's opening (dead-lettered, say): idle
        # since the newest event, or since a scan first found co-reporters alone (their commands carry no time)
        waited = [datetime.fromisoformat(p[1]["received_at"]).timestamp() for p in state.get("pending") or ()]
        if state.get("since"):
            waited.append(datetime.fromisoformat(state["since"]).timestamp())
        return bool(waited) and now.timestamp() - max(waited) > idle_s
    idle = now.timestamp() - datetime.fromisoformat(case["processed_at"]).timestamp()
    return idle > (retain_s if case["status"] == "closed" else idle_s)


class CaseClock:
    def __init__(self, retain_s: float = RETAIN_S, full_every_s: float = FULL_EVERY_S, idle_s: float = IDLE_S):
        self.retain_s, self.full_every_s, self.idle_s = retain_s, full_every_s, idle_s
        self.heap: list[tuple[float, str]] = []
        self.assignment: Hashable = None
        self.scanned_at: float | None = None
        self.deleted = 0

    def note(self, cid: str, state: dict) -> None:
        """After every write of a case's state (the heap may hold stale entries: each is re-checked)."""
        due = due_ts(state)
        if due is not None:
            heapq.heappush(self.heap, (due, cid))

    def tick(self, kv: KV, now: datetime, owned: Callable[[int], bool], assignment: Hashable,
             tax: Taxonomy | None = None) -> tuple[list[dict], list[Alert]]:
        """Cases fallen due now (accept overdue, escalated versions) and their alerts; writes the new states."""
        t = now.timestamp()
        if assignment != self.assignment or self.scanned_at is None or t - self.scanned_at >= self.full_every_s:
            self._full_scan(kv, now, owned)
            self.assignment, self.scanned_at = assignment, t
        cases, alerts = [], []
        while self.heap and self.heap[0][0] <= t:
            _, cid = heapq.heappop(self.heap)
            state = kv.get(cid)
            if state is None or state.get("p") is None or not owned(state["p"]):
                continue
            new, c, a = lifecycle.check_overdue(state, now, tax)
            if c:
                kv.put(state["p"], cid, new)
                self.note(cid, new)   # its next deadline: the next level's, or its time limit after 签收
                cases += c
                alerts += a
        return cases, alerts

    def _full_scan(self, kv: KV, now: datetime, owned: Callable[[int], bool]) -> None:
        self.heap = []
        for cid, state in list(kv.items()):
            p = state.get("p") if isinstance(state, dict) else None
            if p is None or not owned(p):
                continue
            if expired(state, now, self.retain_s, self.idle_s):
                kv.delete(p, cid)
                self.deleted += 1
            elif state.get("case") is None and not state.get("pending") and not state.get("since"):
                kv.put(p, cid, {**state, "since": now.isoformat()})   # co-reporters carry no time: idle from now on
            else:
                self.note(cid, state)
        heapq.heapify(self.heap)
