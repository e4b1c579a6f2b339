"""Agents and timers of the streams worker: entries of unexpected shapes, timer robustness, and each agent
through `agent.test_context()` (outputs recorded by patching the topics' `send`; no broker)."""
from __future__ import annotations

import asyncio
import logging

import pytest

from cityops.taxonomy import load_taxonomy
from streams.aggregates.combine import Combiner
from streams.aggregates.windows import MinuteCounts
from streams.state import DictKV
from streams.timers import guarded

TAX = load_taxonomy()
T0 = 1_790_000_040  # a whole minute


def partial(origin: str, n: int) -> dict:
    return {"minute": T0, "district_code": "370303", "final": False, "origin": origin,
            "cells": {"370303001|sensor|油烟污染": n}}


# -- the demo crash: KeyError 'v' in Combiner.changed ------------------------------------------------
def test_combiner_skips_entries_of_other_shapes_instead_of_crashing():
    """faust-streaming 0.15.3's recovery applies a changelog event of a partition that is neither active
    nor standby to the table of the previous event, so the minute-counts table can hold another table's
    entries (case state, device state, partials); older versions also wrote cells without "v"."""
    kv = DictKV()
    kv.put(0, "T-20261122-000001", {"case": {"case_id": "T-20261122-000001"}, "p": 0, "hl": -1})  # case-state
    kv.put(0, "D-0042", {"state": "ok", "since": 1.0, "off": 7})                                  # sensor-state
    kv.put(0, f"{T0 - 60}|370302", {"by": {"sensor.events/0": {"s|sensor|x": 2}}, "p": 0})      # no "v"
    kv.put(0, f"sensor.events/0|{T0}|370303", {"origin": "sensor.events/0", "minute": T0,
                                               "district": "370303", "v": 1, "cells": {}})      # a partial
    comb = Combiner(kv)
    comb.apply(partial("sensor.events/0", 3), 0, TAX)
    comb.apply(partial("sensor.events/1", 4), 0, TAX)
    assert [(m.district_code, m.count) for m in comb.changed()] == [("370303", 7)]
    assert comb.changed() == []
    # A partial for the old-shaped cell replaces it rather than crashing on the missing version.
    comb.apply({**partial("sensor.events/0", 5), "minute": T0 - 60, "district_code": "370302"}, 0, TAX)
    assert [(m.district_code, m.count) for m in comb.changed()] == [("370302", 5)]


def test_partials_skip_entries_of_other_shapes():
    kv = DictKV()
    kv.put(0, "T-1", {"case": {}, "p": 0})
    mc = MinuteCounts(kv)
    mc.add("sensor.events", 0, 1, T0 + 1, "370303", "s", "sensor", "x")
    mc.flush()
    assert [p["cells"] for p, _ in mc.partials()] == [{"s|sensor|x": 1}]


def test_a_failing_timer_body_is_logged_and_the_next_tick_runs(caplog):
    ticks = []

    @guarded
    async def emit():
        ticks.append(1)
        if len(ticks) == 1:
            raise KeyError("v")

    with caplog.at_level(logging.ERROR, logger="streams.timers"):
        asyncio.run(emit())
        asyncio.run(emit())
    assert ticks == [1, 1]
    assert "timer emit failed" in caplog.text and "KeyError" in caplog.text


def test_every_worker_timer_is_guarded():
    from streams.app import app
    import streams.aggregates.agents  # noqa: F401 — registers the timers
    import streams.cases.agents  # noqa: F401

    timers = [t for t in app._app_tasks if t.__module__.startswith(("streams.aggregates", "streams.cases"))]
    assert sorted(t.__name__ for t in timers) == ["emit_counts", "emit_partials", "expire_minutes", "overdue"]
    assert all(getattr(t, "guarded", False) for t in timers)
