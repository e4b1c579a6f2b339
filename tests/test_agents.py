"""Agents and timers of the streams worker: entries of unexpected shapes, timer robustness, and each agent's
batch handler fed fetched messages (outputs recorded by patching the topics' `send`; no broker)."""
from __future__ import annotations

import asyncio
import inspect
import logging
from types import SimpleNamespace

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
    import streams.aggregates.handlers  # noqa: F401 — registers the timers
    import streams.cases.handlers  # noqa: F401

    timers = [t for t in app._app_tasks if t.__module__.startswith(("streams.aggregates", "streams.cases"))]
    assert sorted(t.__name__ for t in timers) == ["emit_counts", "emit_partials", "expire_minutes", "overdue"]
    assert all(getattr(t, "guarded", False) for t in timers)


# -- each agent's batch handler ----------------------------------------------------------------------
from datetime import datetime, timedelta, timezone  # noqa: E402

import orjson  # noqa: E402

from cityops.models import TicketEvent  # noqa: E402

NOW = datetime.now(timezone.utc) - timedelta(minutes=5)


@pytest.fixture
def sent(monkeypatch):
    """Every message the worker sends recorded instead of going to a broker; table changelog writes
    dropped. Tables start empty."""
    from streams import runtime

    out: list[tuple[str, bytes | None, dict]] = []

    class Producer:
        buffer = SimpleNamespace(put_changelog=lambda *_: None)

        async def send(self, topic, key, value, partition, timestamp, headers):
            out.append((topic, key, orjson.loads(value)))
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

    monkeypatch.setattr(runtime.app, "_producer", Producer())
    for table in (runtime.devices_table, runtime.counts_table, runtime.case_table, runtime.dedup_table,
                  runtime.combined_table):
        table.data.clear()
    return out


def tick(timer):
    """One run of a timer's body (what `app.timer` registers loops forever)."""
    return inspect.unwrap(timer)()


def on(sent, topic: str) -> list[dict]:
    return [v for t, _, v in sent if t == topic]


def grid():
    from cityops.registry import CityRegistry

    return next(iter(CityRegistry.default().grids.values()))


async def feed(topic: str, *values: bytes, key: bytes | None = None, partition: int = 0):
    """One fetched batch of `topic`, as the worker's consumer hands it to the topic's handler."""
    from faust.types import Message

    from streams.app import app

    await app.batch_handlers[topic]([Message(topic, partition, offset, 0.0, 0, {}, key, v, None)
                                     for offset, v in enumerate(values)])


def candidate(case_id: str, lat: float, lon: float) -> bytes:
    case = {"case_id": case_id, "label": "垃圾满溢", "occurred_at": NOW.isoformat(), "lat": lat, "lon": lon,
            "grid_code": "G1", "district_code": "370303"}
    return orjson.dumps({"dedup_key": "370303|垃圾满溢", "case": case})


def test_dedup_agent_merges_a_near_duplicate(sent):
    import streams.cases.handlers  # noqa: F401 — registers the handlers

    asyncio.run(feed("streams.case-candidates", candidate("A-1", 36.8, 118.05), candidate("A-2", 36.8001, 118.05),
                     key=b"370303|\xe5"))
    opens = [c for c in on(sent, "streams.case-commands") if c["op"] == "open"]
    assert [(c["case_id"], c["case"]["duplicate_of"]) for c in opens] == [("A-1", None), ("A-2", "A-1")]
    reporter, = [c for c in on(sent, "streams.case-commands") if c["op"] == "reporter"]
    assert (reporter["case_id"], reporter["reporter"]) == ("A-1", "A-2")


def test_cases_agent_opens_pages_an_emergency_and_follows_the_ticket(sent):
    import streams.cases.handlers  # noqa: F401
    from streams.classify import Classifier
    from streams.sources import Sources
    from streams.placement import default_placer
    from streams.sensors.limits import load_limits

    g = grid()
    run = Sources(placer=default_placer(), classifier=Classifier.default(), taxonomy=TAX,
                 counts=MinuteCounts(DictKV()), devices=DictKV(), limits=load_limits(), pii_key="k")
    ev = TicketEvent(ticket_id="X-200001", status="created", text="马路中间路面塌陷了一个大坑", occurred_at=NOW,
                     lat=g.centroid[0], lon=g.centroid[1])
    draft = orjson.loads(run.hotline(ev.to_bytes(), None, "hotline.tickets", 0, 1)[0][2])["case"]
    assert TAX.by_label(draft["label"]).page, "pick a text the classifier files under a paging category"
    opened = orjson.dumps({"op": "open", "case_id": "X-200001", "case": {**draft, "duplicate_of": None,
                                                                          "hot_spot": False}})
    done = TicketEvent(ticket_id="X-200001", status="resolved", occurred_at=NOW + timedelta(minutes=4),
                       resolution_mode="服务")
    follow = orjson.dumps({"op": "ticket", "case_id": "X-200001", "source_offset": 7,
                           "event": done.model_dump(mode="json")})
    # The replayed event changes nothing: the case is re-emitted as it stands (version 2 again, byte for byte).
    asyncio.run(feed("streams.case-commands", opened, follow, follow, key=b"X-200001"))
    versions = on(sent, "cases")
    assert [(c["version"], c["status"]) for c in versions] == [(1, "created"), (2, "resolved"), (2, "resolved")]
    assert versions[1] == versions[2]
    alert, = on(sent, "alerts")
    assert alert["rule"] == "emergency_case" and alert["subject_id"] == "X-200001"


def test_minutes_agent_and_timers_sum_partials_into_minute_counts(sent, monkeypatch):
    from streams.aggregates import handlers

    monkeypatch.setattr(handlers, "combiner", Combiner(handlers.combined_kv))
    asyncio.run(feed("streams.minute-partials", orjson.dumps(partial("sensor.events/0", 3)),
                     orjson.dumps(partial("sensor.events/1", 4)), b"{not json"))
    assert on(sent, "aggregates") == []          # counts leave on the timer's tick, not per partial
    assert on(sent, "deadletters")[0]["reason"] == "processing"
    asyncio.run(tick(handlers.emit_counts))
    (m,) = on(sent, "aggregates")
    assert (m["district_code"], m["label"], m["count"]) == ("370303", "油烟污染", 7)
    asyncio.run(tick(handlers.emit_counts))
    assert len(on(sent, "aggregates")) == 1      # nothing changed since


def test_emit_partials_timer_sends_this_workers_partition_counts(sent, monkeypatch):
    from streams.aggregates import handlers
    from streams.runtime import counts

    monkeypatch.setattr(handlers, "owned", lambda: {"sensor.events/2"})
    counts.add("sensor.events", 2, 10, T0 + 1, "370303", "s", "sensor", "油烟污染")
    counts.add("sensor.events", 3, 10, T0 + 1, "370303", "s", "sensor", "油烟污染")   # not ours
    counts.flush()
    asyncio.run(tick(handlers.emit_partials))
    p, = on(sent, "streams.minute-partials")
    assert (p["origin"], p["cells"], p["final"]) == ("sensor.events/2", {"s|sensor|油烟污染": 1}, False)


# -- the case clock: due-time heap instead of scanning every case, closed cases forgotten ---------------
from streams.cases.clock import CaseClock  # noqa: E402


class CountingKV(DictKV):
    def __init__(self):
        super().__init__()
        self.gets = 0

    def get(self, key):
        self.gets += 1
        return super().get(key)


def case_state(cid: str, due: datetime, status: str = "dispatched", processed: datetime = NOW,
               source: str = "hotline", overdue: bool = False) -> dict:
    case = {"case_id": cid, "version": 2, "source": source, "status": status, "overdue": overdue, "due_at": due.isoformat(),
            "tier": "grid", "label": "垃圾满溢", "department": "环卫", "address": "人民路 1 号",
            "processed_at": processed.isoformat()}
    return {"case": case, "p": 0, "hl": 3, "reporters": [], "pending": []}


def test_case_clock_looks_only_at_due_cases():
    kv, clock, t = CountingKV(), CaseClock(), datetime(2026, 11, 20, 8, tzinfo=timezone.utc)
    for i in range(50):
        kv.put(0, f"C-{i}", case_state(f"C-{i}", t + timedelta(hours=i + 1)))
    assert clock.tick(kv, t, lambda p: True, "a") == ([], [])       # first tick: a full scan
    kv.gets = 0
    assert clock.tick(kv, t + timedelta(minutes=30), lambda p: True, "a") == ([], [])
    assert kv.gets == 0                                             # nothing due: no case read
    cases, alerts = clock.tick(kv, t + timedelta(hours=2, minutes=1), lambda p: True, "a")
    assert [c["case_id"] for c in cases] == ["C-0", "C-1"] and all(c["overdue"] for c in cases)
    assert [a.rule for a in alerts] == ["overdue_case", "overdue_case"] and kv.gets == 2
    assert kv.get("C-0")["case"]["tier"] == "community"             # escalated one tier, written back
    # A case written later (through the cases agent) is noted; one resolved meanwhile is skipped.
    kv.put(0, "N-1", case_state("N-1", t + timedelta(hours=2, minutes=30)))
    clock.note("N-1", kv.get("N-1"))
    kv.put(0, "C-2", case_state("C-2", t + timedelta(hours=3), status="resolved"))
    cases, _ = clock.tick(kv, t + timedelta(hours=3, minutes=1), lambda p: True, "a")
    assert [c["case_id"] for c in cases] == ["N-1"]


def test_case_clock_rescans_after_reassignment_and_forgets_long_closed_cases():
    kv, clock, t = DictKV(), CaseClock(retain_s=7 * 86400), datetime(2026, 11, 20, 8, tzinfo=timezone.utc)
    kv.put(0, "OLD", case_state("OLD", t - timedelta(days=9), "closed", processed=t - timedelta(days=8)))
    kv.put(0, "RECENT", case_state("RECENT", t - timedelta(days=2), "closed", processed=t - timedelta(days=1)))
    kv.put(1, "THEIRS", {**case_state("THEIRS", t - timedelta(days=9), "closed", processed=t - timedelta(days=8)),
                         "p": 1})
    clock.tick(kv, t, lambda p: p == 0, "p0")
    assert kv.get("OLD") is None and kv.get("RECENT") and kv.get("THEIRS") and clock.deleted == 1
    # Recovery writes the table directly: the case is found once the assignment (or recovery) changes.
    kv.put(1, "R-1", {**case_state("R-1", t), "p": 1})
    assert clock.tick(kv, t + timedelta(minutes=1), lambda p: True, "p0") == ([], [])
    cases, _ = clock.tick(kv, t + timedelta(minutes=1), lambda p: True, "p0+p1")
    assert [c["case_id"] for c in cases] == ["R-1"] and kv.get("THEIRS") is None


def test_case_clock_forgets_closed_cases_and_any_case_idle_for_months():
    """Every source's cases get lifecycle events (case.events): a closed case goes once unchanged for the retention;
    an open one, whatever its source, stays until it has been idle for `idle_s`."""
    kv, t = DictKV(), datetime(2026, 11, 20, 8, tzinfo=timezone.utc)
    clock = CaseClock(retain_s=7 * 86400, idle_s=90 * 86400)
    week_ago = t - timedelta(days=8)
    kv.put(0, "APP-OVERDUE", case_state("APP-OVERDUE", week_ago, processed=week_ago, source="app", overdue=True))
    kv.put(0, "APP-RECENT", case_state("APP-RECENT", t, processed=t - timedelta(days=1), source="app", overdue=True))
    kv.put(0, "APP-NOT-DUE", case_state("APP-NOT-DUE", t + timedelta(days=1), processed=week_ago, source="app"))
    kv.put(0, "S-ALERT", case_state("S-ALERT", week_ago, processed=week_ago, source="sensor", overdue=True))
    kv.put(0, "T-OPEN", case_state("T-OPEN", week_ago, processed=week_ago, overdue=True))
    kv.put(0, "T-IDLE", case_state("T-IDLE", t - timedelta(days=95), processed=t - timedelta(days=91), overdue=True))
    kv.put(0, "APP-CLOSED", case_state("APP-CLOSED", week_ago, "closed", processed=week_ago, source="app"))
    # Lifecycle events of a ticket whose opening never came (dead-lettered) wait as long as an open ticket.
    def waiting(days: int, *topic: str) -> dict:
        ev = {"event_id": f"e{days}", "status": "dispatched", "received_at": (t - timedelta(days=days)).isoformat()}
        return {"p": 0, "hl": 5, "reporters": [], "pending": [[5, ev, *topic]]}
    kv.put(0, "T-WAITING", waiting(30))
    kv.put(0, "T-WAITED", waiting(91))
    kv.put(0, "C-WAITED", waiting(91, "case.events"))   # a case event waits with its topic
    # Co-reporters of a case whose opening never came: idle from the first scan that finds them alone.
    kv.put(0, "A-REPORTERS", {"p": 0, "hl": -1, "reporters": ["A-2"], "pending": []})
    clock.tick(kv, t, lambda p: True, "a")
    assert sorted(k for k, _ in kv.items()) == ["A-REPORTERS", "APP-NOT-DUE", "APP-OVERDUE", "APP-RECENT", "S-ALERT",
                                                "T-OPEN", "T-WAITING"]
    assert clock.deleted == 4
    clock.tick(kv, t + timedelta(days=89), lambda p: True, "b")
    assert kv.get("A-REPORTERS") is not None
    clock.tick(kv, t + timedelta(days=91), lambda p: True, "c")
    assert kv.get("A-REPORTERS") is None


def test_cases_agent_feeds_the_clock(sent, monkeypatch):
    from streams.cases import handlers

    monkeypatch.setattr(handlers, "clock", CaseClock())
    cid = "X-300001"
    state = case_state(cid, NOW + timedelta(minutes=1))
    done = TicketEvent(ticket_id=cid, status="accepted", occurred_at=NOW)
    handlers.cases_kv.put(0, cid, state)
    asyncio.run(feed("streams.case-commands", orjson.dumps({"op": "ticket", "case_id": cid, "source_offset": 9,
                                                 "event": done.model_dump(mode="json")}), key=cid.encode()))
    assert handlers.clock.heap == [(datetime.fromisoformat(state["case"]["due_at"]).timestamp(), cid)]
    outs = handlers.overdue_sweep(handlers.cases_kv, NOW + timedelta(minutes=2), lambda p: True, "a")
    assert [orjson.loads(v)["overdue"] for t, _, v in outs if t == "cases"] == [True]


def test_the_worker_consumer_does_not_wait_1500_ms_for_internal_topics():
    """Faust's 1.5 s fetch wait delays each internal hop while the source topics are busy (streams/overrides.py)."""
    import asyncio

    from streams.overrides import App

    async def build():   # an app of its own: the worker's shared `app` keeps no consumer bound to this loop
        probe = App("fetch-probe", broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False)
        return probe.consumer._thread._create_worker_consumer(probe.transport)

    assert asyncio.run(build())._fetch_max_wait_ms <= 100


def test_an_output_the_producer_refuses_makes_its_input_a_dead_letter(sent, monkeypatch):
    """The producer refusing one message's output (too large) dead-letters that message with the reason; the
    other messages of the batch are sent as usual and the worker goes on."""
    from aiokafka.errors import MessageSizeTooLargeError
    from faust.exceptions import ProducerSendError

    from streams import runtime

    record = runtime.app._producer.send

    async def send(topic, key, value, partition, timestamp, headers):
        if b"REFUSE-ME" in value:
            raise ProducerSendError("Error while sending") from MessageSizeTooLargeError("too large")
        return await record(topic, key, value, partition, timestamp, headers)

    monkeypatch.setattr(runtime.app._producer, "send", send)
    monkeypatch.setattr(runtime.app, "batch_handlers", dict(runtime.app.batch_handlers))
    topic = "deliveries"   # a topic the worker does not consume: this test's handler is its own
    runtime.consume(topic, lambda m: [("cases", m.key, m.value)])
    asyncio.run(feed(topic, b'{"n": 1}', b'{"n": "REFUSE-ME"}', b'{"n": 3}', key=b"k"))
    assert [v["n"] for v in on(sent, "cases")] == [1, 3]
    letter, = on(sent, "deadletters")
    assert (letter["topic"], letter["offset"], letter["reason"]) == (topic, 1, "output_refused")
    assert "MessageSizeTooLargeError" in letter["detail"]
