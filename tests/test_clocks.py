"""Sources whose clocks run up to 10 minutes fast or slow: no event is lost, no window moves wrongly.

The rule (docs/streams.md, clocks): an event's time is its `occurred_at`, except that it cannot be later than
when the broker took it (the source topics' LogAppendTime): a fast clock's events count in the minute they
arrived and cannot run a partition's windows ahead. A slow clock's events are indistinguishable from events
that took long to arrive: they count in the minute they claim, within the 15-minute grace period."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from cityops.models import SensorEvent, TicketEvent
from cityops.taxonomy import load_taxonomy
from streams.aggregates.windows import MinuteCounts
from streams.state import DictKV

SKEW = 600   # seconds: the clocks of this test run 10 minutes off


@pytest.fixture
def sources():
    from streams.classify import Classifier
    from streams.sources import Sources
    from streams.placement import default_placer
    from streams.sensors.limits import load_limits

    return Sources(placer=default_placer(), classifier=Classifier.default(), taxonomy=load_taxonomy(),
                  counts=MinuteCounts(DictKV()), devices=DictKV(), limits=load_limits(), pii_key="k")


def test_fast_and_slow_clocks_lose_no_event_and_shift_no_window(sources):
    """Three noise meters on one partition, 40 minutes of a reading every 10 s each: one with a right clock,
    one 10 minutes fast, one 10 minutes slow. Each reading reaches the broker 1 s after it was taken."""
    start = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(second=0, microsecond=0).timestamp()
    clocks = {"NO-RIGHT": 0, "NO-FAST": SKEW, "NO-SLOW": -SKEW}
    want: Counter = Counter()
    offset = 0
    for step in range(240):
        real = start + step * 10
        arrived = real + 1
        for device, skew in clocks.items():
            ev = SensorEvent(device_id=device, kind="noise", value=50.0, lat=36.81, lon=118.05,
                             occurred_at=datetime.fromtimestamp(real + skew, timezone.utc))
            sources.sensor(ev.to_bytes(), device.encode(), "sensor.events", 0, offset, arrived)
            offset += 1
            # the right clock's and the slow clock's minute as they say; the fast one's when it arrived
            want[(device, int((real + skew if skew <= 0 else arrived) // 60) * 60)] += 1
        sources.counts.flush()
    got: Counter = Counter()
    minutes: dict[int, int] = {}
    for key, entry in sources.counts.kv.items():
        for cell, (n, _) in entry.get("cells", {}).items():
            minutes[entry["minute"]] = minutes.get(entry["minute"], 0) + n
    assert sources.counts.late == 0, f"{sources.counts.late} readings dropped as late"
    assert sum(minutes.values()) == 240 * 3
    # Per minute, what the three clocks put there by the rule, nothing moved elsewhere.
    for (device, minute), n in want.items():
        got[minute] += n
    assert minutes == dict(got)


def test_a_right_clock_is_not_made_late_by_a_fast_one(sources):
    """One event from a clock 10 minutes fast, then the right clocks' events of the same minute: all counted
    in their own minute (the fast clock must not run the watermark ahead and make them late)."""
    now = (datetime.now(timezone.utc) - timedelta(minutes=30)).replace(second=0, microsecond=0)
    fast = TicketEvent(ticket_id="CLOCK-FAST", status="created", text="路灯不亮", occurred_at=now + timedelta(seconds=SKEW))
    sources.hotline(fast.to_bytes(), None, "hotline.tickets", 3, 0, now.timestamp() + 1)
    for i in range(1, 6):
        right = TicketEvent(ticket_id=f"CLOCK-RIGHT-{i}", status="created", text="路灯不亮",
                            occurred_at=now + timedelta(seconds=i))
        sources.hotline(right.to_bytes(), None, "hotline.tickets", 3, i, now.timestamp() + i + 1)
    sources.counts.flush()
    counted = sum(n for _, e in sources.counts.kv.items() if e.get("minute") == int(now.timestamp())
                  for n, _ in e["cells"].values())
    assert (counted, sources.counts.late) == (6, 0)


def test_a_clock_10_minutes_fast_is_accepted_and_one_20_minutes_fast_refused():
    now = datetime.now(timezone.utc)
    SensorEvent(device_id="NO-1", kind="noise", value=50.0, lat=36.81, lon=118.05, occurred_at=now + timedelta(seconds=SKEW))
    with pytest.raises(ValidationError, match="future"):
        SensorEvent(device_id="NO-1", kind="noise", value=50.0, lat=36.81, lon=118.05, occurred_at=now + timedelta(minutes=20))


@pytest.mark.integration
def test_source_topics_carry_the_brokers_time(broker, stack_env):
    """The time an event arrived is the broker's (LogAppendTime), not the sending source's clock."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    from cityops.topics import CATALOGUE, SOURCE_TOPICS

    admin = KafkaAdminClient(bootstrap_servers=stack_env["CITYOPS_BOOTSTRAP_SERVERS"])
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t.name) for t in CATALOGUE])
    finally:
        admin.close()
    kinds = {name: configs.get("message.timestamp.type", {}).get("value")
             for by_name in described.values() for name, configs in by_name.items()}
    assert {name for name, kind in kinds.items() if kind == "LogAppendTime"} == {t.name for t in SOURCE_TOPICS}
