"""Pure streams logic: calendar, hysteresis, duplicates, case lifecycle, exact minute counts, source checks."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from cityops.models import SensorEvent, TicketEvent
from cityops.taxonomy import load_taxonomy
from streams.aggregates.combine import Combiner
from streams.aggregates.windows import MinuteCounts
from streams.cases import dedup, lifecycle
from streams.dispatch import due_at, working_minutes_between
from streams.sensors.incidents import step
from streams.state import DictKV

TAX = load_taxonomy()
WH = TAX.working_hours
SH = ZoneInfo("Asia/Shanghai")


# -- calendar ---------------------------------------------------------------------------------------
starts = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31),
                      timezones=st.just(timezone.utc))


@hsettings(max_examples=300, deadline=None)
@given(start=starts, minutes=st.integers(min_value=1, max_value=5000))
def test_due_time_spends_exactly_the_limit_in_working_hours(start, minutes):
    due = due_at(start, minutes, WH)
    assert due > start
    assert working_minutes_between(start, due, WH) == pytest.approx(minutes, abs=1e-6)
    local = due.astimezone(SH)
    assert local.weekday() < 5  # due inside or at the end of a working period
    assert any(a <= local.time().replace(tzinfo=None) <= b for a, b in WH.periods)


@hsettings(max_examples=100, deadline=None)
@given(start=starts, minutes=st.integers(min_value=1, max_value=600))
def test_clock_limits_run_on_the_clock(start, minutes):
    assert due_at(start, minutes, WH, clock=True) == start + timedelta(minutes=minutes)


def test_friday_evening_ticket_is_due_monday_morning():
    fri = datetime(2026, 7, 17, 18, 0, tzinfo=SH)  # Friday after work
    assert due_at(fri, 120, WH).astimezone(SH) == datetime(2026, 7, 20, 10, 30, tzinfo=SH)
    lunch = datetime(2026, 7, 15, 11, 30, tzinfo=SH)  # 30 min before lunch, 90 after
    assert due_at(lunch, 120, WH).astimezone(SH) == datetime(2026, 7, 15, 15, 0, tzinfo=SH)


# -- hysteresis -------------------------------------------------------------------------------------
B = (2.0, 1.6)


def run(readings, sustain=300, clear=300):
    state, seen = None, []
    for t, v in readings:
        state, what = step(state, t, v, B, sustain, clear)
        if what:
            seen.append((what, t))
    return state, seen


def test_a_lone_spike_opens_nothing():
    assert run([(0, 1.0), (60, 9.0), (120, 1.0), (180, 1.2)]) == (None, [])


def test_sustained_excess_opens_then_clears_with_hysteresis():
    over = [(t, 2.5) for t in range(0, 360, 60)]
    hover = [(t, 1.8) for t in range(360, 1200, 60)]          # under the limit, above clear: stays open
    under = [(t, 1.0) for t in range(1200, 1600, 60)]
    state, seen = run(over + hover + under)
    assert seen == [("open", 300), ("close", 1500)] and state is None


# -- duplicates and hot spots -----------------------------------------------------------------------
def case(cid, lat, lon, minute, grid="370303001001001"):
    t = datetime(2026, 7, 1, 10, 0, tzinfo=timezone.utc) + timedelta(minutes=minute)
    return {"case_id": cid, "occurred_at": t.isoformat(), "lat": lat, "lon": lon, "grid_code": grid}


def test_reports_within_50m_and_30min_merge_and_replays_decide_the_same():
    kv, decide = DictKV(), lambda c: dedup.decide(kv, 0, "370303|暴露垃圾", c)
    a, p = decide(case("A", 36.8, 118.05, 0))
    assert p is None and a["duplicate_of"] is None
    b, p = decide(case("B", 36.8003, 118.05, 10))     # ~33 m, 10 min later
    assert p == "A" and b["duplicate_of"] == "A"
    c, p = decide(case("C", 36.8010, 118.05, 20))     # ~110 m: its own case
    assert p is None
    d, p = decide(case("D", 36.8, 118.05, 45))        # 45 min after A: its own case
    assert p is None
    assert decide(case("B", 36.8003, 118.05, 10)) == (b, "A")
    assert decide(case("A", 36.8, 118.05, 0)) == (a, None)


def test_a_late_report_does_not_meet_a_case_its_key_dropped_long_ago():
    """Every cell keeps and matches within the key's newest event time minus the kept hour: a report arriving
    a month late must decide as it would have with the whole key in one list (and so must its replay)."""
    kv, decide = DictKV(), lambda c: dedup.decide(kv, 0, "370303|暴露垃圾", c)
    decide(case("A", 36.8, 118.05, 0))
    decide(case("N", 36.9, 118.2, 60 * 24 * 30))            # a month later, elsewhere in the district
    b, p = decide(case("B", 36.8003, 118.05, 10))           # ~33 m from A, 10 min after it, arriving late
    assert p is None and b["duplicate_of"] is None
    assert decide(case("B", 36.8003, 118.05, 10)) == (b, None)


@pytest.mark.parametrize("dlat,dlon", [(-0.0003, 0), (0, -0.0004), (-0.0002, -0.0003)])
def test_a_duplicate_across_a_cell_boundary_merges(dlat, dlon):
    kv = DictKV()
    lat, lon = 7361 * dedup.CELL_DEG + 1e-5, 23610 * dedup.CELL_DEG + 1e-5   # ~1 m inside a cell's corner
    dedup.decide(kv, 0, "k", case("A", lat, lon, 0))
    b, p = dedup.decide(kv, 0, "k", case("B", lat + dlat, lon + dlon, 5))
    assert dedup.cell(lat, lon) != dedup.cell(lat + dlat, lon + dlon)
    assert dedup.metres(lat, lon, lat + dlat, lon + dlon) <= dedup.DUP_METRES
    assert p == "A" and b["duplicate_of"] == "A"


def test_the_state_written_per_case_stays_small_however_busy_the_district():
    kv = SizedKV()
    for i in range(2000):   # 2,000 reports of one label across a district within the hour, one spot per grid
        at = (36.70 + (i % 40) * 0.004, 118.0 + (i // 40 % 40) * 0.004)
        dedup.decide(kv, 0, "370303|暴露垃圾", case(f"Z{i}", *at, i * 0.01, grid=f"G{i % 40}-{i // 40 % 40}"))
    assert max(kv.written) < 2_000, f"a decision wrote {max(kv.written)} bytes: the state is not split"


class SizedKV(DictKV):
    """Records the size of every value written."""

    def __init__(self):
        super().__init__()
        self.written: list[int] = []

    def put(self, partition, key, value):
        super().put(partition, key, value)
        self.written.append(len(orjson.dumps(value)))


def test_third_case_in_a_grid_within_7_days_is_a_hot_spot():
    kv, flags = DictKV(), []
    for i, day in enumerate((0, 2, 5, 20)):
        c, _ = dedup.decide(kv, 0, "370303|暴露垃圾", case(f"X{i}", 36.8 + i * 0.01, 118.05, day * 1440))
        flags.append(c["hot_spot"])
    assert flags == [False, False, True, False]


# -- case lifecycle ---------------------------------------------------------------------------------
def draft(label="暴露垃圾", received=datetime(2026, 7, 15, 9, 0, tzinfo=SH)):
    cat = TAX.by_label(label)
    return {"case_id": "T-000001", "event_id": "e0000001", "source": "hotline", "status": "created",
            "occurred_at": received.isoformat(), "received_at": received.isoformat(), "text": "", "address": "",
            "placed": False, "label": label, "code": cat.code, "department": cat.department, "tier": cat.tier.value,
            "time_limit_minutes": cat.time_limit, "confidence": 0.9,
            "due_at": due_at(received, cat.time_limit, WH, clock=cat.clock).isoformat()}


def ticket(status, offset, **kw):
    ev = TicketEvent(ticket_id="T-000001", status=status, occurred_at=datetime(2026, 7, 15, 10, tzinfo=SH), **kw)
    return ev.model_dump(mode="json"), offset


def test_lifecycle_events_before_open_wait_and_replays_apply_once():
    ev, off = ticket("dispatched", 5, department="环卫")
    s, out, _ = lifecycle.apply_ticket(None, ev, off, TAX)
    assert out == [] and s["pending"]
    s, out, alerts = lifecycle.open_case(s, draft(), 0, TAX)
    assert [c["status"] for c in out] == ["created", "dispatched"] and [c["version"] for c in out] == [1, 2]
    assert alerts == []
    # Replays change no state but re-emit the case as it stands: their first output may have been lost.
    assert lifecycle.apply_ticket(s, ev, off, TAX)[:2] == (s, [s["case"]])     # the same offset again
    assert lifecycle.open_case(s, draft(), 0, TAX)[:2] == (s, [s["case"]])     # opened already
    assert lifecycle.add_reporter(s, s["case"]["case_id"], 0, TAX) == (s, [s["case"]])  # its own report
    ev, off = ticket("reopened", 6)
    s, out, _ = lifecycle.apply_ticket(s, ev, off, TAX)
    assert out[0]["reopen_count"] == 1 and out[0]["version"] == 3


def test_overdue_escalates_one_tier_once_and_emergencies_page():
    s, _, _ = lifecycle.open_case(None, draft(), 0, TAX)
    due = datetime.fromisoformat(s["case"]["due_at"])
    assert lifecycle.check_overdue(s, due - timedelta(seconds=1))[1] == []
    s, out, alerts = lifecycle.check_overdue(s, due + timedelta(seconds=1))
    assert out[0]["overdue"] and out[0]["tier"] == "community" and alerts[0].rule == "overdue_case"
    assert lifecycle.check_overdue(s, due + timedelta(hours=1))[1] == []
    s, _, alerts = lifecycle.open_case(None, draft("井盖缺损"), 0, TAX)
    assert [a.rule for a in alerts] == ["emergency_case"] and alerts[0].department == "市政"
    _, _, again = lifecycle.open_case(s, draft("井盖缺损"), 0, TAX)   # replayed: the same page (same alert id)
    assert [a.alert_id for a in again] == [alerts[0].alert_id]


def test_reporters_count_once_each_and_many_raise_the_tier():
    s, _, _ = lifecycle.open_case(None, draft(), 0, TAX)
    for r in ("R1", "R2", "R2"):
        s, out = lifecycle.add_reporter(s, r, 0, TAX)
    assert s["case"]["reporter_count"] == 3 and s["case"]["tier"] == "community"


# -- minute counts ----------------------------------------------------------------------------------
T0 = datetime(2026, 7, 15, 10, 0, tzinfo=timezone.utc).timestamp()


def feed(mc: MinuteCounts, events):
    for off, t, label in events:
        mc.add("sensor.events", 0, off, t, "370303", "370303001", "sensor", label)
    mc.flush()


def test_replayed_events_are_not_counted_twice_and_windows_close_after_grace():
    kv = DictKV()
    mc = MinuteCounts(kv, grace_s=60)
    events = [(i, T0 + i, "油烟污染") for i in range(50)]
    feed(mc, events)
    feed(MinuteCounts(kv, grace_s=60), events[20:])  # a restarted worker replays part of the batch
    (partial, closed), = mc.partials()
    assert partial["cells"] == {"370303001|sensor|油烟污染": 50} and closed is None
    feed(mc, [(60, T0 + 200, "油烟污染")])  # watermark past the first minute + grace
    first = [p for p, c in mc.partials() if p["minute"] == T0]
    assert first[0]["final"]
    feed(mc, [(61, T0 + 5, "油烟污染")])    # late: not counted
    assert mc.late == 1


def test_combiner_sums_partitions_and_replaces_rather_than_adds():
    comb = Combiner(DictKV())
    p = {"minute": int(T0), "district_code": "370303", "final": False}
    comb.apply({**p, "origin": "sensor.events/0", "cells": {"s|sensor|x": 3}}, 0, TAX)
    comb.apply({**p, "origin": "sensor.events/1", "cells": {"s|sensor|x": 4}}, 0, TAX)
    comb.apply({**p, "origin": "sensor.events/0", "cells": {"s|sensor|x": 5}}, 0, TAX)
    assert [m.count for m in comb.changed()] == [9]
    assert comb.changed() == []


# -- sources ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sources():
    from streams.classify import Classifier
    from streams.sources import Sources
    from streams.placement import default_placer
    from streams.sensors.limits import load_limits

    return Sources(placer=default_placer(), classifier=Classifier.default(), taxonomy=TAX,
                  counts=MinuteCounts(DictKV()), devices=DictKV(), limits=load_limits(), pii_key="k")


NOW = datetime.now(timezone.utc) - timedelta(minutes=5)


def reason(outs):
    (topic, _, value), = outs
    assert topic == "deadletters"
    return orjson.loads(value)["reason"]


@pytest.mark.parametrize("raw,why", [
    (b"{not json", "invalid_json"),
    ('{"ticket_id": "环卫投诉"}'.encode("gbk"), "encoding"),
    (b"{}" + b" " * 70_000, "oversize"),
    (b'{"ticket_id": "X-000001", "status": "created"}', "schema"),
    (TicketEvent(ticket_id="X-000001", status="created", text="t", occurred_at=NOW).to_bytes()
     .replace(str(NOW.year).encode(), b"1970", 1), "timestamp"),
    (TicketEvent(ticket_id="X-000001", status="created", text="t", occurred_at=NOW, lat=0, lon=0).to_bytes(),
     "coordinates"),
    (TicketEvent(ticket_id="X-000001", status="created", text="t", occurred_at=NOW, lat=31.2, lon=121.5).to_bytes(),
     "coordinates"),
])
def test_bad_input_becomes_a_dead_letter_with_reason_and_digest(sources, raw, why):
    """The letter says where the message is, how long it was and its sha256; it keeps a masked excerpt."""
    import hashlib

    from cityops.models.deadletters import EXCERPT_BYTES, DeadLetter
    from cityops.pii import mask_payload

    outs = sources.hotline(raw, b"k", "hotline.tickets", 2, 41)
    assert reason(outs) == why
    dl = DeadLetter.model_validate_json(outs[0][2])
    assert (dl.partition, dl.offset, dl.payload_size) == (2, 41, len(raw))
    assert dl.payload_sha256 == hashlib.sha256(raw).hexdigest()
    assert dl.excerpt == mask_payload(raw, EXCERPT_BYTES)[0][:EXCERPT_BYTES]


def test_placed_and_unplaced_tickets_become_candidates(sources):
    from cityops.registry import CityRegistry

    g = next(iter(CityRegistry.default().grids.values()))
    ev = TicketEvent(ticket_id="X-000002", status="created", text="小区门口垃圾桶满了溢出来", occurred_at=NOW,
                     lat=g.centroid[0], lon=g.centroid[1], caller_phone="13812345678")
    (topic, key, value), = sources.hotline(ev.to_bytes(), None, "hotline.tickets", 0, 1)
    cand = orjson.loads(value)["case"]
    assert topic == "streams.case-candidates" and cand["placed"] and cand["grid_code"] == g.code
    assert cand["label"] == "垃圾满溢" and "13812345678" not in value.decode()
    ev = TicketEvent(ticket_id="X-000003", status="created", text="有人占道经营", occurred_at=NOW,
                     address="火星路999号")
    cand = orjson.loads(sources.hotline(ev.to_bytes(), None, "hotline.tickets", 0, 2)[0][2])["case"]
    assert cand["placed"] is False and key.decode().endswith("垃圾满溢")


def test_sustained_fume_readings_open_an_incident_and_page(sources):
    from cityops.registry import CityRegistry

    g = next(iter(CityRegistry.default().grids.values()))
    outs, sent = [], []
    for i in range(8):
        ev = SensorEvent(device_id="FUME-1", kind="cooking_fume", value=3.1, lat=g.centroid[0], lon=g.centroid[1],
                         occurred_at=NOW - timedelta(minutes=8 - i))
        sent.append(ev)
        outs += sources.sensor(ev.to_bytes(), b"FUME-1", "sensor.events", 1, 100 + i)
    state = sources.devices.get("FUME-1")
    topics = [o[0] for o in outs]
    assert topics == ["incidents", "alerts"]
    inc = orjson.loads(outs[0][2])
    assert inc["state"] == "open" and inc["label"] == "油烟污染" and inc["limit"] == 2.0
    # A replay changes nothing; replaying the reading that opened the incident re-emits what it emitted (its
    # changelog write may have reached the broker without them), the others re-emit nothing.
    replays = [sources.sensor(e.to_bytes(), b"FUME-1", "sensor.events", 1, 100 + i) for i, e in enumerate(sent)]
    assert [r for r in replays if r] == [outs]
    assert sources.devices.get("FUME-1") == state


# -- placement --------------------------------------------------------------------------------------
@hsettings(max_examples=200, deadline=None)
@given(points=st.lists(st.tuples(st.floats(36.1, 37.25), st.floats(117.72, 118.43)), min_size=1, max_size=20))
def test_cached_placement_answers_as_the_registry_does(points):
    from cityops.registry import CityRegistry
    from streams.placement import RegistryPlacer

    reg = CityRegistry.default()
    placer = RegistryPlacer(reg)
    for lat, lon in points + points:  # the second round is answered from the cache
        g = reg.locate(lat, lon)
        p = placer.place(lat, lon, None)
        assert (p.grid_code, p.lat, p.lon, p.how) == (g.code, lat, lon, "gps") if g else p is None
        assert placer.in_city(lat, lon) == reg.in_city(lat, lon)


def test_the_same_ticket_event_sent_twice_applies_once():
    s, _, _ = lifecycle.open_case(None, draft(), 0, TAX)
    ev, off = ticket("dispatched", 5, department="环卫")
    s, out, _ = lifecycle.apply_ticket(s, ev, off, TAX)
    assert [c["version"] for c in out] == [2]
    s, again, _ = lifecycle.apply_ticket(s, ev, off + 1, TAX)   # resent: a new offset, the same event id
    assert again == [] and s["case"]["version"] == 2


def test_a_case_is_never_its_own_duplicate_reporter():
    s, _, _ = lifecycle.open_case(None, draft(), 0, TAX)
    s, out = lifecycle.add_reporter(s, s["case"]["case_id"], 0, TAX)
    assert [c["version"] for c in out] == [1] and s["case"]["reporter_count"] == 1


def test_the_producer_buffer_flush_waits_for_the_write_being_handed_over():
    """An offset commit flushes the producer first: the flush must not return while a table write is still
    in the buffer or being handed to the Kafka producer (Faust's own gives up after 0.1 s)."""
    import asyncio
    from types import SimpleNamespace

    from streams.app import app

    async def scenario():
        buffer = app.producer.buffer
        handed: list = []
        release = asyncio.Event()

        class Producer:
            async def send(self, topic, key, value, partition, timestamp, headers):
                await release.wait()                 # a full partition batch: the hand-over waits
                handed.append((topic, partition, key, value))
                done = asyncio.get_running_loop().create_future()
                done.set_result(None)
                return done

        buffer.app = SimpleNamespace(producer=Producer(), conf=app.conf)
        await buffer.start()
        try:
            buffer.put_changelog("t-changelog", 1, b"k", b"v1")
            buffer.put_changelog("t-changelog", 1, b"k", None)
            flushing = asyncio.ensure_future(buffer.flush())
            await asyncio.sleep(0.3)
            assert not flushing.done() and buffer.size == 1 and buffer.handing_over == 1
            release.set()
            await asyncio.wait_for(flushing, 2)
            assert handed == [("t-changelog", 1, b"k", b"v1"), ("t-changelog", 1, b"k", None)] and buffer.size == 0
        finally:
            await buffer.stop()
            buffer.app = app

    asyncio.run(scenario())


def _table_kv(on_write, cache: bool = True):
    """A TableKV over a stand-in Faust table: an in-memory store, changelog writes handed to `on_write`."""
    from types import SimpleNamespace

    from streams.state import TableKV

    tables: list = []
    app = SimpleNamespace(checkpoint=SimpleNamespace(tables=tables, track=tables.append), producer=SimpleNamespace(
        buffer=SimpleNamespace(put_changelog=lambda *w: on_write(w))))
    table = SimpleNamespace(app=app, changelog_topic=SimpleNamespace(get_topic_name=lambda: "t-changelog"),
                            data=SimpleNamespace(data={}))
    return TableKV(table, cache), table


def test_table_writes_reach_the_changelog_once_per_key_at_the_flush():
    """A key rewritten every batch goes to the changelog once per commit with its latest value; a deletion as
    a tombstone; a key Faust's recovery dropped (its partition moved away) is not deleted in the changelog."""
    written: list = []
    kv, table = _table_kv(written.append)
    app = table.app
    for n in range(3):
        kv.put(2, "minute", {"n": n})
    kv.put(1, "gone", {"n": 0})
    kv.delete(1, "gone")
    kv.put(3, "moved", {"n": 0})
    table.data.data.pop(b"moved")                      # what Faust's recovery does to a partition moved away
    assert written == [] and kv.get("minute") == {"n": 2}
    for table_kv in app.checkpoint.tables:
        table_kv.write_changelog()
    assert written == [("t-changelog", 2, b"minute", b'{"n":2}'), ("t-changelog", 1, b"gone", None)]
    app.checkpoint.tables[0].write_changelog()
    assert len(written) == 2                           # nothing changed since


def test_a_stored_value_costs_about_its_length():
    """The tables keep every case and window for days: a value must not hold a serialiser's spare buffer."""
    import tracemalloc

    kv, _ = _table_kv(lambda w: None)
    value = {"case": {"description": "路灯不亮" * 60, "reporters": [f"S-{i:016x}" for i in range(20)]}}
    size = len(orjson.dumps(value))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(1000):
            kv.put(0, f"case-{n}", {**value, "n": n})
        kv._decoded.clear()                            # only what the store itself holds
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held / 1000 < 1.5 * size + 200, f"{held / 1000:.0f} bytes held per {size}-byte value"


def _commit_book(acked, committed, gaps=()):
    """The bookkeeping `BatchConsumer._new_offset` reads, for one partition."""
    from collections import defaultdict
    from types import SimpleNamespace

    from faust.types import TP
    from intervaltree import IntervalTree

    tp = TP("sensor.events", 0)
    book = SimpleNamespace(_acked=defaultdict(list, {tp: list(acked)}), _gap=defaultdict(IntervalTree),
                           _committed_offset=defaultdict(lambda: None, {tp: committed}),
                           _acked_index=defaultdict(set, {tp: set(acked)}))
    for begin, end in gaps:
        book._gap[tp].addi(begin, end)
    return book, tp


@pytest.mark.parametrize("acked, committed, gaps, commit, left", [
    # every offset twice (a re-read after a seek over a gap): Faust's commit moved one offset at a time
    ([4787, 4788, 4788, 4789, 4789, 4790, 4790], 4787, (), 4791, []),
    # the offset that revealed a gap is also in it (Faust's own gap call), and acked
    ([3, 4, 7], 3, [(5, 8)], 8, []),
    ([6, 7], 3, (), None, [6, 7]),            # a hole at the head holds the commit
    ([10, 11, 13], None, (), 12, [13]),       # a run, then a hole
])
def test_the_commit_takes_the_run_of_acked_offsets_however_often_each_was_acked(acked, committed, gaps, commit,
                                                                                left):
    from streams.overrides import BatchConsumer

    book, tp = _commit_book(acked, committed, gaps)
    assert BatchConsumer._new_offset(book, tp) == commit
    assert book._acked[tp] == left
    assert book._acked_index[tp] <= set(left)


def test_a_seek_runs_on_the_consumer_thread_not_beside_its_fetch():
    """aiokafka's seek deletes the partition's fetched records; from the worker's main thread that raced the
    consumer thread's `fetched_records` (KeyError, the worker crashed in a bench drain)."""
    import asyncio
    import threading
    from types import SimpleNamespace

    from faust.types import TP

    from streams.overrides import BatchConsumer

    ran_on, consumer_thread = [], threading.Thread(target=lambda: None, name="consumer")

    async def call_thread(fun, *args):
        consumer_thread.run = lambda: fun(*args)
        consumer_thread.start()
        consumer_thread.join()

    book = SimpleNamespace(_thread=SimpleNamespace(
        call_thread=call_thread, seek=lambda tp, offset: ran_on.append((threading.current_thread().name, tp, offset))))
    tp = TP("sensor.events", 0)
    asyncio.run(BatchConsumer._seek(book, tp, 1016))
    assert ran_on == [("consumer", tp, 1016)]


def test_the_case_states_stay_bytes_and_give_the_collector_nothing_to_walk():
    """Cases are kept up to 90 days and read a few times each: decoded and cached, every state would be
    objects each full collection of the worker walks, stalling it (docs/streams.md)."""
    import gc

    from streams.cases.handlers import cases_kv

    assert cases_kv.cache is False
    kv, _ = _table_kv(lambda w: None, cache=False)
    state = {"case": {"case_id": "RX1", "status": "created", "tier": "street"}, "p": 0, "hl": -1,
             "reporters": ["A", "B"], "pending": [], "seen": ["e1"]}
    gc.collect()
    before = len(gc.get_objects())
    for n in range(1000):
        kv.put(0, f"RX{n}", {**state, "hl": n})
        assert kv.get(f"RX{n}")["hl"] == n
    gc.collect()
    assert len(gc.get_objects()) - before < 100


def test_the_worker_freezes_its_startup_heap():
    """Full collections walk only what came after start-up (the registry, classifier and modules are frozen)."""
    import asyncio
    import gc

    from streams import worker

    try:
        asyncio.run(worker._freeze_startup_heap())
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
