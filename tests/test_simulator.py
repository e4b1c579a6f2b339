"""The simulator: reproducible, valid, and shaped like a city (mix, rhythm, loops, rain, duplicates, the closed loop
of every case, patrols, devices verifying their repair)."""
from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from cityops.models import AppReport, CaseEvent, SensorEvent, TicketEvent
from cityops.registry import CityRegistry
from cityops.taxonomy import load_taxonomy
from cityops.topics import CASE_EVENTS
from producers import replay
from producers.serde import encode
from producers.simulator import TZ, Simulator
from streams.dispatch import due_at, working_minutes_between
from streams.sensors.limits import load_limits

START = datetime(2026, 7, 1, 6, 0, tzinfo=TZ)


@pytest.fixture(scope="module")
def city():
    return CityRegistry.default()


@pytest.fixture(scope="module")
def day(city):
    """About a simulated day at the default density."""
    sim = Simulator(seed=11, registry=city, start=START)
    return sim, sim.take(160_000)


def test_same_seed_same_events(city):
    a = [encode(t, e) for t, e in Simulator(seed=5, registry=city, start=START).take(3000)]
    b = [encode(t, e) for t, e in Simulator(seed=5, registry=city, start=START).take(3000)]
    c = [encode(t, e) for t, e in Simulator(seed=6, registry=city, start=START).take(3000)]
    assert a == b
    assert a != c


def test_events_are_valid_and_ordered(day):
    _, events = day
    now = datetime.now(timezone.utc)
    last = None
    for topic, e in events[:20000]:
        assert isinstance(e, topic.value)
        assert e.occurred_at.tzinfo is not None and e.occurred_at <= now and e.received_at >= e.occurred_at
        assert last is None or e.occurred_at >= last
        last = e.occurred_at
        topic.value.model_validate_json(encode(topic, e)[1])   # what goes on the wire reads back


def test_mix_is_mostly_sensors(day):
    _, events = day
    c = Counter(t.name for t, _ in events)
    n = len(events)
    assert 0.75 < c["sensor.events"] / n < 0.92
    assert 0.05 < c["hotline.tickets"] / n < 0.17
    assert 0.02 < c["app.reports"] / n < 0.09


def test_daily_rhythm_and_barbecue_nights(day):
    _, events = day
    calls = Counter(e.occurred_at.astimezone(TZ).hour for _, e in events
                    if isinstance(e, TicketEvent) and e.status == "created")
    assert calls[10] > 3 * calls[3]
    fume = defaultdict(list)
    for _, e in events:
        if isinstance(e, SensorEvent) and e.kind == "cooking_fume":
            fume[e.occurred_at.astimezone(TZ).hour].append(e.value)
    mean = lambda xs: sum(xs) / len(xs)
    assert mean(fume[20]) > 2 * mean(fume[10])


def test_tickets_go_through_the_closed_loop(day):
    sim, events = day
    loops = defaultdict(list)
    for _, e in events:
        if isinstance(e, TicketEvent):
            loops[e.ticket_id].append(e)
    statuses = Counter(s.status for evs in loops.values() for s in evs)
    for s in ("created", "dispatched", "accepted", "resolved", "return_visit", "closed", "reopened"):
        assert statuses[s] > 0, s
    sats = Counter(e.satisfaction for evs in loops.values() for e in evs if e.satisfaction)
    assert sats["不满意"] > 0 and sats["满意"] > sats["不满意"]
    modes = Counter(e.resolution_mode for evs in loops.values() for e in evs if e.resolution_mode)
    assert modes["服务"] > modes["管理"] > modes["执法"] > 0
    assert any(e.note == "超期升级" for evs in loops.values() for e in evs)
    for evs in loops.values():
        assert evs[0].status == "created" or evs[0].occurred_at == START   # every loop starts with the call
        if evs[0].status == "created":
            assert sim.truth[evs[0].ticket_id]
    labels = Counter(sim.truth[t] for t in loops)
    assert labels["其他"] > 0 and len(labels) >= 18


def test_texts_are_varied(day):
    _, events = day
    texts = [e.text for _, e in events if isinstance(e, TicketEvent) and e.text]
    assert len(set(texts)) > 0.95 * len(texts)


def test_rain_raises_water_and_reports_together(day):
    sim, events = day
    assert sim.rains
    rain = sim.rains[0]
    water = [e.value for _, e in events if isinstance(e, SensorEvent) and e.kind == "water_depth"
             and rain.start + 2400 <= e.occurred_at.timestamp() <= rain.end]
    dry = [e.value for _, e in events if isinstance(e, SensorEvent) and e.kind == "water_depth"
           and e.occurred_at.timestamp() < rain.start]
    assert max(water) > 15 and max(dry, default=0) == 0
    flood_reports = [e for _, e in events if isinstance(e, (TicketEvent, AppReport))
                     and sim.truth.get(getattr(e, "ticket_id", None) or getattr(e, "report_id", None)) == "道路积水"
                     and rain.start <= e.occurred_at.timestamp() <= rain.end + 3600]
    assert len(flood_reports) >= 5


def test_several_citizens_report_the_same_incident(day):
    sim, events = day
    points = Counter()
    for _, e in events:
        if isinstance(e, AppReport):
            points[(sim.truth[e.report_id], round(e.lat, 3), round(e.lon, 3))] += 1
    assert max(points.values()) >= 2


def test_small_ads_come_back_to_the_same_grids(day, city):
    sim, events = day
    grids = Counter()
    for _, e in events:
        if isinstance(e, AppReport) and sim.truth[e.report_id] == "非法小广告":
            g = city.locate(e.lat, e.lon)
            grids[g.code if g else None] += 1
    top = sum(n for _, n in grids.most_common(12))
    assert top > 0.5 * sum(grids.values())


# -- the closed loop of app reports and device alerts (case.events) ------------------------------------------
HOLD = timedelta(minutes=30)      # the streams' verify_hold_s default
PATROL = ((time(8, 30), time(11, 30)), (time(14, 0), time(17, 30)))
# Each status's possible successors as the platform and departments report them; a device case's verification
# and closing are the worker's own (from the device's readings), so after `resolved` it is either re-dispatched
# (the device still alarming: the worker reopened it) or its loop on case.events ends.
APP_NEXT = {"dispatched": {"accepted", "returned"}, "returned": {"dispatched"}, "accepted": {"resolved"},
            "resolved": {"verified", "reopened"}, "reopened": {"dispatched"}, "verified": {"closed"}}
DEVICE_NEXT = {"dispatched": {"accepted", "returned"}, "returned": {"dispatched"}, "accepted": {"resolved"},
               "resolved": {"dispatched"}}


@pytest.fixture(scope="module")
def two_days(city):
    """Two simulated days (from a Wednesday morning) at half the default density."""
    sim = Simulator(seed=23, registry=city, start=START, density=1.0)
    end = START + timedelta(days=2)
    events = []
    for topic, e in sim:
        if e.occurred_at > end:
            break
        events.append((topic, e))
    return sim, events


def case_loops(events):
    """Openers (app reports, device alerts) and each case id's CaseEvents in order."""
    openers, loops = {}, defaultdict(list)
    for topic, e in events:
        if isinstance(e, AppReport):
            openers[e.report_id] = e
        elif isinstance(e, SensorEvent) and e.event == "alert":
            openers[f"S-{e.event_id}"[:64]] = e
        elif isinstance(e, CaseEvent):
            assert topic is CASE_EVENTS and topic.key_of(e) == e.case_id.encode()
            loops[e.case_id].append(e)
    return openers, loops


def sensor_labels() -> dict[str, str]:
    """The worker's label for each kind of device (streams/classify/rules.yaml)."""
    with open(Path(__file__).parents[1] / "streams" / "classify" / "rules.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)["sensors"]


def absorbed(loops, openers):
    """Alarms right after a false closure: each reopens its case and opens none (docs/streams.md)."""
    windows = defaultdict(list)
    for cid, evs in loops.items():
        if cid.startswith("S-"):
            windows[openers[cid].device_id] += [(a.occurred_at, b.occurred_at) for a, b in zip(evs, evs[1:])
                                                if a.status == "resolved" and b.status == "dispatched"]
    return lambda alert: any(a <= alert.occurred_at <= b for a, b in windows[alert.device_id])


def test_every_app_and_device_case_is_dispatched_and_most_close(two_days):
    sim, events = two_days
    openers, loops = case_loops(events)
    assert not set(loops) - set(openers)                     # every case event is for a case that was opened
    tax, kinds = load_taxonomy(), sensor_labels()
    day_one = START + timedelta(days=1)
    app = [o for o in openers.values() if isinstance(o, AppReport) and o.occurred_at < day_one]
    alerts = [o for o in openers.values() if isinstance(o, SensorEvent) and o.occurred_at < day_one]
    reopens = absorbed(loops, openers)
    device = [a for a in alerts if not reopens(a)]
    assert len(app) > 500 and len(device) > 150 and len(alerts) > len(device)
    closed = 0
    for r in app:
        evs = loops[r.report_id]
        dispatches = [e for e in evs if e.status == "dispatched"]
        assert dispatches and evs[0].status == "dispatched" and evs[0].system == "szcg", r.report_id
        cat = tax.by_label(sim.truth[r.report_id])
        assert (dispatches[-1].department, dispatches[-1].tier) == (cat.department, cat.tier)
        closed += evs[-1].status == "closed"
    assert closed > 0.85 * len(app)
    verified = 0
    for a in device:
        evs = loops[f"S-{a.event_id}"]
        cat = tax.by_label(kinds[a.kind])
        assert evs and evs[0].status == "dispatched", a.event_id
        assert {(e.department, e.tier) for e in evs if e.status == "dispatched"} == {(cat.department, cat.tier)}
        assert not {"verified", "closed"} & {e.status for e in evs}   # the worker verifies and closes them
        verified += evs[-1].status == "resolved"
    assert verified > 0.85 * len(device)


def test_case_loops_go_as_the_platform_and_departments_report_them(two_days):
    _, events = two_days
    openers, loops = case_loops(events)
    statuses = Counter()
    for cid, evs in loops.items():
        nexts = DEVICE_NEXT if cid.startswith("S-") else APP_NEXT
        assert evs[0].occurred_at >= openers[cid].occurred_at
        for a, b in zip(evs, evs[1:]):
            assert b.status in nexts[a.status], (cid, a.status, b.status)
            assert b.occurred_at >= a.occurred_at
        statuses.update(e.status for e in evs)
        for e in evs:
            if e.status in ("dispatched", "verified", "closed") or (e.status == "reopened"):
                assert e.system == "szcg"
            elif e.status in ("accepted", "resolved", "returned"):
                assert e.system != "szcg" and e.department
    for s in ("returned", "reopened"):
        assert 0 < statuses[s] < 0.1 * statuses["resolved"], s
    modes = Counter(e.resolution_mode for evs in loops.values() for e in evs if e.status == "resolved")
    n = sum(modes.values())
    assert 0.62 < modes["服务"] / n < 0.78 and 0.14 < modes["管理"] / n < 0.26 and 0.05 < modes["执法"] / n < 0.15


def _limit(kind: str, at: datetime):
    return load_limits().bounds(kind, at)


def _alarming(e: SensorEvent) -> bool:
    bounds = _limit(e.kind, e.occurred_at)
    return e.event == "alert" or (bounds is not None and e.value >= bounds[0])


def test_false_closures_are_caught_by_the_device_and_repairs_read_normal(two_days):
    _, events = two_days
    openers, loops = case_loops(events)
    readings = defaultdict(list)
    for _, e in events:
        if isinstance(e, SensorEvent):
            readings[e.device_id].append(e)
    end = events[-1][1].occurred_at
    false, repaired = 0, 0
    for cid, evs in loops.items():
        if not cid.startswith("S-"):
            continue
        device = readings[openers[cid].device_id]
        for i, e in enumerate(evs):
            if e.status != "resolved" or e.occurred_at + 2 * HOLD > end:
                continue
            after = [r for r in device if r.occurred_at >= e.occurred_at]
            if i + 1 < len(evs):       # dispatched again: the device kept alarming after the "repair" (虚假办结)
                false += 1
                assert after and _alarming(after[0]) and after[0].occurred_at < e.occurred_at + HOLD, cid
            else:                      # repaired: normal readings through the hold time, and one past it
                repaired += 1
                held = [r for r in after if r.occurred_at <= e.occurred_at + HOLD]
                past = [r for r in after if r.occurred_at > e.occurred_at + HOLD][:1]
                assert held and past and not any(_alarming(r) for r in held + past), cid
    assert false > 5 and repaired > 150
    assert false < 0.12 * (false + repaired)


def test_some_cases_are_overdue_and_grid_workers_act_first(two_days):
    sim, events = two_days
    openers, loops = case_loops(events)
    tax = load_taxonomy()
    wh, kinds = tax.working_hours, sensor_labels()
    end = events[-1][1].occurred_at
    due, overdue, late_accepts, accepts = 0, 0, 0, 0
    took = defaultdict(list)
    for cid, evs in loops.items():
        op = openers[cid]
        cat = tax.by_label(kinds[op.kind] if isinstance(op, SensorEvent) else sim.truth[cid])
        deadline = due_at(op.received_at, cat.time_limit, wh, clock=cat.clock)
        resolved = next((e.occurred_at for e in evs if e.status == "resolved"), None)
        if deadline < end:
            due += 1
            overdue += resolved is None or resolved > deadline
        tier = None
        for a, b in zip(evs, evs[1:]):
            tier = a.tier or tier
            if a.status == "dispatched" and b.status == "accepted":
                accepts += 1
                limit = tax.accept_limit_of(cat)
                late_accepts += b.occurred_at > due_at(a.occurred_at, limit, wh, clock=cat.clock)
            if a.status == "accepted" and b.status == "resolved" and not cat.clock:
                took[tier].append(working_minutes_between(a.occurred_at, b.occurred_at, wh))
    assert 0.01 < overdue / due < 0.1
    assert 0 < late_accepts < 0.08 * accepts
    median = {tier: sorted(xs)[len(xs) // 2] for tier, xs in took.items()}
    assert median["grid"] <= 60 < median["street"] and median["grid"] < median["community"] < median["street"]


def test_grid_workers_patrol_in_their_hours(two_days):
    _, events = two_days
    reports = [e for _, e in events if isinstance(e, AppReport)]
    patrol = [e for e in reports if e.reporter_role == "grid_worker"]
    for e in patrol:
        local = e.occurred_at.astimezone(TZ)
        assert local.weekday() < 5 and any(a <= local.time() < b for a, b in PATROL), local
    assert 0.15 < len(patrol) / len(reports) < 0.45
    hours = Counter(e.occurred_at.astimezone(TZ).hour for e in patrol)
    assert hours[9] and hours[15] and not hours[12]


def test_case_events_keep_the_rate_and_the_mix(day, two_days):
    for (sim, events), density in ((day, 2.0), (two_days, 1.0)):
        span = events[-1][1].occurred_at.timestamp() - sim.start.timestamp()
        assert 0.9 * density < len(events) / span < 1.1 * density
    c = Counter(t.name for t, _ in day[1])
    assert 0.05 < c["case.events"] / len(day[1]) < 0.2


def test_the_simulated_stream_replays_onto_the_same_topics(city, tmp_path):
    events = Simulator(seed=4, registry=city, start=START).take(4000)
    f = tmp_path / "recorded.jsonl"
    f.write_bytes(b"\n".join(encode(t, e)[1] for t, e in events) + b"\n")
    bad = []
    replayed = list(replay.read(f, bad=bad))
    assert bad == [] and {t.name for t, _ in events} >= {"case.events", "app.reports", "sensor.events"}
    assert [(t.name, e) for t, e in replayed] == [(t.name, e) for t, e in events]


def test_same_seed_same_events_in_any_process(city):
    """String hashing differs between processes: nothing the simulator draws may depend on it."""
    code = ("import hashlib, sys; from datetime import datetime; from producers.simulator import TZ, Simulator; "
            "from producers.serde import encode; h = hashlib.sha256(); "
            "[h.update(encode(t, e)[1]) for t, e in Simulator(seed=8, start=datetime(2026, 7, 1, 6, tzinfo=TZ))"
            ".take(30000)]; print(h.hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}, cwd=Path(__file__).parents[1]).stdout
               for seed in ("1", "2")}
    assert len(digests) == 1
