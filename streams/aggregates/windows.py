"""Minute windows counted per source partition, exact across crashes and replays.

Each (source partition, minute, district) entry maps `street|source|label` → [count, last offset counted].
Events of one partition arrive in offset order, so an event at or below a cell's last offset was counted
before a restart and is skipped: the table may run ahead of the committed offsets, never double-count.
A window closes when the partition's event-time watermark passes its end plus the grace period; later
events for it are late and not counted. The grace period outlasts a source clock running 10 minutes slow, and
event times never run ahead of the broker's clock (streams/sources.py), so a fast clock cannot close windows early. Entries are emitted as full counts (never deltas) to the combiner.
"""
from __future__ import annotations

from streams.state import KV

GRACE_S = 900


class MinuteCounts:
    def __init__(self, kv: KV, grace_s: int = GRACE_S):
        self.kv = kv
        self.grace_s = grace_s
        self.late = 0
        self._work: dict[str, tuple[int, dict]] = {}   # key → (partition, entry) changed in this batch
        self._emitted: dict[str, int] = {}             # key → entry version last emitted

    def _entry(self, key: str, partition: int, default: dict) -> dict:
        hit = self._work.get(key)
        if hit is None:
            hit = self._work[key] = (partition, self.kv.get(key) or default)
        return hit[1]

    def add(self, topic: str, partition: int, offset: int, t: float, district: str, street: str,
            source: str, label: str) -> bool:
        origin = f"{topic}/{partition}"
        wm = self._entry(f"wm|{origin}", partition, {"wm": 0.0})
        minute = int(t // 60) * 60
        if minute + 60 + self.grace_s <= wm["wm"]:
            self.late += 1
            return False
        entry = self._entry(f"{origin}|{minute}|{district}", partition,
                            {"origin": origin, "minute": minute, "district": district, "v": 0, "cells": {}})
        cell = f"{street}|{source}|{label}"
        c = entry["cells"].get(cell)
        if c is not None and c[1] >= offset:
            return False
        entry["cells"][cell] = [c[0] + 1 if c else 1, offset]
        if t > wm["wm"]:
            wm["wm"] = t
        return True

    def flush(self) -> None:
        """Write this batch's changed entries (one write per entry, not per event)."""
        for key, (p, entry) in self._work.items():
            if "cells" in entry:
                entry["v"] += 1
            self.kv.put(p, key, entry)
        self._work.clear()

    def partials(self, owned: set[str] | None = None) -> list[tuple[dict, tuple[int, str] | None]]:
        """Entries changed since last emitted, as MinutePartial dicts, each with (partition, key) to delete
        after sending when its window has closed. `owned`: origins this worker is assigned (None: all)."""
        marks: dict[str, float] = {}
        entries = []
        for key, value in self.kv.items():
            if not isinstance(value, dict):
                continue
            if key.startswith("wm|"):
                marks[key[3:]] = value.get("wm", 0.0)
            elif "cells" in value and (owned is None or value.get("origin") in owned):
                entries.append((key, value))  # other shapes: see combine.minute_entry
        out = []
        for key, e in entries:
            closed = e["minute"] + 60 + self.grace_s <= marks.get(e["origin"], 0.0)
            if not closed and self._emitted.get(key) == e["v"]:
                continue
            self._emitted[key] = e["v"]
            partial = {"origin": e["origin"], "minute": e["minute"], "district_code": e["district"],
                       "cells": {c: v[0] for c, v in e["cells"].items()}, "final": closed}
            out.append((partial, (int(e["origin"].rsplit("/", 1)[1]), key) if closed else None))
            if closed:
                self._emitted.pop(key, None)
        return out
