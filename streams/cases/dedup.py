"""Duplicates and recurrence, per district + label (one partition sees every near neighbour).

Duplicate: same label within 50 m and 30 minutes of a primary → merged (reporter count).
Hot spot: the same label in the same grid at least 3 times in 7 days (primaries only: merged duplicates
are one problem).

State is kept in small pieces under the district + label key, so a decision reads and rewrites a few
entries, not the district's whole history (docs/streams.md, throughput):
- `<key>|near|<cell>`: the cases of the last hour in one ~500 m cell, [[case_id, lat, lon, t, primary_id]]
  (cell `-`: cases without coordinates, kept so a replay finds its decision);
- `<key>|grid|<grid>`: the primaries of the last 7 days in one grid, [[case_id, t]].
"""
from __future__ import annotations

import math
from datetime import datetime

from streams.state import KV

DUP_METRES = 50.0
DUP_SECONDS = 30 * 60
HOT_COUNT = 3
HOT_SECONDS = 7 * 86400
CELL_DEG = 0.005                      # ~550 m north–south: 50 m around a point touches at most 4 cells
METRES_PER_DEG = 6_371_000 * math.pi / 180


def metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance: exact enough at tens of metres."""
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return 6_371_000 * math.hypot(x, math.radians(lat2 - lat1))


def cell(lat: float, lon: float) -> str:
    return f"{math.floor(lat / CELL_DEG)}:{math.floor(lon / CELL_DEG)}"


def near_cells(lat: float, lon: float) -> list[str]:
    """The cells a 50 m circle around the point touches (the corners of its bounding box, with a margin)."""
    dlat = DUP_METRES * 1.01 / METRES_PER_DEG
    dlon = dlat / math.cos(math.radians(lat))
    return sorted({cell(a, b) for a in (lat - dlat, lat + dlat) for b in (lon - dlon, lon + dlon)})


def decide(kv: KV, partition: int, key: str, case: dict) -> tuple[dict, str | None]:
    """The case to open (with duplicate_of / hot_spot set) and the primary to credit, or None; the state
    under `key` is updated in `kv`. A replay decides as the first time."""
    cid = case["case_id"]
    t = datetime.fromisoformat(case["occurred_at"]).timestamp()
    lat, lon = case.get("lat"), case.get("lon")
    located = lat is not None and lon is not None
    own = f"{key}|near|{cell(lat, lon) if located else '-'}"
    grid = case.get("grid_code")
    grid_key = f"{key}|grid|{grid}" if grid else None
    recent = kv.get(own) or []
    for rec in recent:
        if rec[0] == cid:  # a replay: decide as before
            primary = rec[4] if rec[4] != cid else None
            seen = (kv.get(grid_key) or []) if grid_key else []
            hot = primary is None and any(c == cid for c, _ in seen) and _hot(seen, t)
            return {**case, "duplicate_of": primary, "hot_spot": hot}, primary
    # The newest event time of the whole key bounds what is kept and matched, in every cell alike (events of
    # another day arriving late must not meet records other cells have long dropped).
    newest_key = f"{key}|newest"
    before = (kv.get(newest_key) or {}).get("t")
    newest = max(t, before if before is not None else t)
    if newest != before:
        kv.put(partition, newest_key, {"t": newest})
    horizon = newest - 2 * DUP_SECONDS   # kept twice the merge window, so a replay finds its first decision
    primary = None
    if located:
        near = [rec for c in near_cells(lat, lon) for rec in (recent if f"{key}|near|{c}" == own
                                                               else kv.get(f"{key}|near|{c}") or [])]
        # Merge into the earliest primary in reach (deterministic whatever the cells' order).
        matches = [rec for rec in near if rec[4] == rec[0] and rec[3] >= horizon and abs(rec[3] - t) <= DUP_SECONDS
                   and metres(rec[1], rec[2], lat, lon) <= DUP_METRES]
        if matches:
            primary = min(matches, key=lambda rec: (rec[3], rec[0]))[0]
    kv.put(partition, own, [*(r for r in recent if r[3] >= horizon), [cid, lat, lon, t, primary or cid]])
    hot = False
    if primary is None and grid_key:
        seen = [*(x for x in kv.get(grid_key) or [] if x[1] >= newest - HOT_SECONDS), [cid, t]]
        kv.put(partition, grid_key, seen)
        hot = _hot(seen, t)
    return {**case, "duplicate_of": primary, "hot_spot": hot}, primary


def _hot(seen: list[list], t: float) -> bool:
    return sum(1 for _, ts in seen if t - HOT_SECONDS <= ts <= t) >= HOT_COUNT
