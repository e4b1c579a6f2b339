"""Hysteresis per device: over the limit for `sustain_s` opens an incident, under `clear` for `clear_s`
closes it. Pure: (state, reading) → (state, transition); the state is a small JSON dict kept per device.

States: absent (normal) → pending (over, not yet sustained) → open → clearing (under clear, not yet
sustained) → absent. A pending device falling back under the limit was a spike: nothing opens.
"""
from __future__ import annotations

from typing import Literal

Transition = Literal["open", "close"] | None


def step(state: dict | None, t: float, value: float, bounds: tuple[float, float] | None,
         sustain_s: int, clear_s: int) -> tuple[dict | None, Transition]:
    """`t` is event time (epoch s). Returns the new state (the same object when unchanged) and what happened."""
    s = state.get("s") if state else None  # a closed device keeps only its replay memory: normal
    if bounds is None:
        return state, None
    limit, clear = bounds
    if s is None:
        if value >= limit:
            new = {"s": "pending", "since": t, "peak": value, "limit": limit}
            if sustain_s <= 0:
                return {**new, "s": "open", "opened": t}, "open"
            return new, None
        return state, None
    if s == "pending":
        if value < limit:
            return None, None  # a spike
        peak = max(state["peak"], value)
        if t - state["since"] >= sustain_s:
            return {**state, "s": "open", "opened": state["since"], "peak": peak}, "open"
        return ({**state, "peak": peak} if peak != state["peak"] else state), None
    if s == "open":
        if value < clear:
            if clear_s <= 0:
                return None, "close"
            return {**state, "s": "clearing", "clear_since": t}, None
        if value > state["peak"]:
            return {**state, "peak": value}, None
        return state, None
    # clearing
    if value >= clear:
        return {**state, "s": "open", "peak": max(state["peak"], value)}, None
    if t - state["clear_since"] >= clear_s:
        return None, "close"
    return state, None
