"""The simulator: reproducible, valid, and shaped like a city (mix, rhythm, loops, rain, duplicates)."""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timezone

import pytest

from cityops.models import AppReport, SensorEvent, TicketEvent
from cityops.registry import CityRegistry
from producers.serde import encode
from producers.simulator import TZ, Simulator

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
