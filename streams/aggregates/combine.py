"""The combiner: sums the source partitions' latest partial counts into MinuteCounts per cell, and watches
each district/label's per-minute total against its own recent baseline (volume anomaly alerts).

State per `minute|district`: {"by": {origin: {cell: count}}}; per `base|district`: {label: {minute: total}}.
Partials are keyed by district, so both keys of a district live in one partition.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from cityops.models.aggregates import MinuteCount
from cityops.models.alerts import Alert, AlertRule
from cityops.taxonomy import Taxonomy
from streams.alerts import rules as alert_rules
from streams.state import KV

KEEP_S = 3 * 3600
log = logging.getLogger(__name__)


def minute_entry(key: str, entry) -> bool:
    """Whether `key`/`entry` is a combined minute cell. The table can hold other shapes: the `base|`
    baselines, entries written by an older version, and — through faust-streaming 0.15.3's recovery,
    which applies a changelog event of an unassigned partition to the previous event's table — another
    table's entries. Those are skipped, never crash a timer."""
    minute, _, _ = key.partition("|")
    return (minute.isdigit() and isinstance(entry, dict) and isinstance(entry.get("by"), dict)
            and isinstance(entry.get("v"), int))


class Combiner:
    """Partials in, MinuteCounts out on a tick: a cell updated by many partials between ticks is sent once.
    What was emitted is remembered in memory only, so after a restart (or when a rebalance brings other
    partitions' entries) every cell is sent again: harmless, the sink keeps the latest count per cell, and
    nothing applied just before a crash goes unsent."""

    def __init__(self, kv: KV):
        self.kv = kv
        self._seen: dict[str, int] = {}
        self._emitted: dict[str, dict[str, int]] = {}

    def apply(self, partial: dict, partition: int, tax: Taxonomy) -> list[Alert]:
        minute, district = partial["minute"], partial["district_code"]
        key = f"{minute}|{district}"
        entry = self.kv.get(key)
        if not minute_entry(key, entry):
            if entry is not None:
                log.warning("minute-counts: replacing an entry of another shape under %r", key)
            entry = {"by": {}, "p": partition, "v": 0}
        if entry["by"].get(partial["origin"]) == partial["cells"]:
            return []
        entry["by"][partial["origin"]] = partial["cells"]
        entry["v"] += 1
        self.kv.put(partition, key, entry)
        return _anomalies(self.kv, entry, minute, district, partition, tax)

    def changed(self) -> list[MinuteCount]:
        out = []
        for key, entry in self.kv.items():
            if not minute_entry(key, entry) or self._seen.get(key) == entry["v"]:
                continue
            self._seen[key] = entry["v"]
            minute, district = key.split("|", 1)
            at = datetime.fromtimestamp(int(minute), timezone.utc)
            totals: dict[str, int] = {}
            for cells in entry["by"].values():
                for cell, n in cells.items():
                    totals[cell] = totals.get(cell, 0) + n
            sent = self._emitted.setdefault(key, {})
            for cell, total in totals.items():
                if sent.get(cell) != total:
                    street, source, label = cell.split("|", 2)
                    out.append(MinuteCount(minute=at, district_code=district, street_code=street, source=source,
                                           label=label, count=total))
                    sent[cell] = total
        return out

    def forget(self, key: str) -> None:
        self._emitted.pop(key, None)
        self._seen.pop(key, None)


def _anomalies(kv: KV, entry: dict, minute: int, district: str, partition: int, tax: Taxonomy) -> list[Alert]:
    if not district:
        return []
    cfg = alert_rules.load_alerting().rules[AlertRule.volume_anomaly]
    totals: dict[str, int] = {}
    for cells in entry["by"].values():
        for cell, n in cells.items():
            label = cell.rsplit("|", 1)[1]
            totals[label] = totals.get(label, 0) + n
    bkey = f"base|{district}"
    base = kv.get(bkey) or {}
    alerts = []
    for label, n in totals.items():
        hist = {int(m): c for m, c in base.get(label, {}).items() if int(m) >= minute - KEEP_S}
        baseline = alert_rules.anomaly_baseline(hist, minute, cfg.min_history_min)
        if baseline is not None and n >= cfg.min_count and n >= cfg.factor * max(baseline, 1.0):
            try:
                dept = tax.by_label(label).department
            except KeyError:
                dept = tax.other.department
            alerts.append(alert_rules.volume_anomaly(district, label, dept,
                                                     datetime.fromtimestamp(minute, timezone.utc), n, baseline))
        hist[minute] = n
        base[label] = {str(m): c for m, c in hist.items()}
    kv.put(partition, bkey, base)
    return alerts

