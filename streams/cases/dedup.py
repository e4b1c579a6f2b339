"""Duplicates and recurrence, per district + label (one partition sees every near neighbour).

Duplicate: same label within 50 m and 30 minutes of an open primary → merged (reporter count).
Hot spot: the same label in the same grid at least 3 times in 7 days (primaries only: merged duplicates
are one problem). State: {"recent": [[case_id, lat, lon, t, primary_id]], "grids": {grid: [[case_id, t]]}}.
"""
from __future__ import annotations

import math
from datetime import datetime

DUP_METRES = 50.0
DUP_SECONDS = 30 * 60
HOT_COUNT = 3
HOT_SECONDS = 7 * 86400


def metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance: exact enough at tens of metres."""
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return 6_371_000 * math.hypot(x, math.radians(lat2 - lat1))


def decide(state: dict | None, case: dict) -> tuple[dict, dict, str | None]:
    """Returns (new state, the case to open — with duplicate_of / hot_spot set —, primary to credit or None)."""
    state = state or {"recent": [], "grids": {}}
    cid = case["case_id"]
    t = datetime.fromisoformat(case["occurred_at"]).timestamp()
    for rec in state["recent"]:
        if rec[0] == cid:  # a replay: decide as before
            primary = rec[4] if rec[4] != cid else None
            hot = any(c == cid for c, _ in state["grids"].get(case.get("grid_code") or "", [])) and \
                _hot(state, case.get("grid_code"), t)
            return state, {**case, "duplicate_of": primary, "hot_spot": hot if primary is None else False}, primary
    newest = max([t, *(r[3] for r in state["recent"])])
    # Kept twice the merge window so a replay after a restart still finds its first decision.
    recent = [r for r in state["recent"] if r[3] >= newest - 2 * DUP_SECONDS]
    primary = None
    if case.get("lat") is not None:
        for rec in recent:
            if (rec[4] == rec[0] != cid and rec[1] is not None and abs(rec[3] - t) <= DUP_SECONDS
                    and metres(rec[1], rec[2], case["lat"], case["lon"]) <= DUP_METRES):
                primary = rec[0]
                break
    recent.append([cid, case.get("lat"), case.get("lon"), t, primary or cid])
    grids = state["grids"]
    hot = False
    grid = case.get("grid_code")
    if primary is None and grid:
        grids = {g: [x for x in xs if x[1] >= newest - HOT_SECONDS] for g, xs in grids.items()}
        grids = {g: xs for g, xs in grids.items() if xs}
        grids[grid] = [*grids.get(grid, []), [cid, t]]
        hot = _hot({"grids": grids}, grid, t)
    new_state = {"recent": recent, "grids": grids}
    return new_state, {**case, "duplicate_of": primary, "hot_spot": hot}, primary


def _hot(state: dict, grid: str | None, t: float) -> bool:
    return bool(grid) and sum(1 for _, ts in state["grids"].get(grid, []) if t - HOT_SECONDS <= ts <= t) >= HOT_COUNT
