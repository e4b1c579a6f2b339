"""The streams oracle: what a worker that never stopped computes from every source message on the broker,
and the worker's outputs there to compare with (tests/test_restart_streams.py, tests/test_faults.py)."""
from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import Callable

import orjson
from kafka import KafkaConsumer, TopicPartition

from bench.pipeline import WORKER_GROUP
from bench.pipeline import lag as group_lag
from cityops.topics import AGGREGATES, INTERNAL_TOPICS, SOURCE_TOPICS

CONSUMED = [t.name for t in SOURCE_TOPICS + INTERNAL_TOPICS]


def read_all(bootstrap: str, topic: str) -> list:
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=3000)
    parts = [TopicPartition(topic, p) for p in c.partitions_for_topic(topic)]
    c.assign(parts)
    c.seek_to_beginning()
    ends = c.end_offsets(parts)
    out = []
    while any(c.position(tp) < ends[tp] for tp in parts):
        for tp, msgs in c.poll(timeout_ms=1000).items():
            out += msgs
    c.close()
    return out


def lag(bootstrap: str, per_partition: bool = False):
    """Messages of the consumed topics the worker has not committed yet (by partition: those that lag)."""
    return group_lag(bootstrap, WORKER_GROUP, CONSUMED, per_partition)


def wait_drained(bootstrap: str, alive: Callable[[], bool], timeout: float = 300) -> None:
    """No lag on any consumed topic for several checks in a row (timers emit every 2 s)."""
    deadline, quiet = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        assert alive(), "the worker died"
        quiet = quiet + 1 if lag(bootstrap) == 0 else 0
        if quiet >= 6:
            return
        time.sleep(1.0)
    raise AssertionError(f"the worker did not drain its input: {lag(bootstrap, per_partition=True)} behind")


def expected(bootstrap: str):
    """What a worker that never stopped computes: the pure intake over every source message, in order."""
    from cityops.taxonomy import load_taxonomy
    from streams.aggregates.windows import MinuteCounts
    from streams.classify import Classifier
    from streams.sources import Sources
    from streams.placement import default_placer
    from streams.sensors.limits import load_limits
    from streams.state import DictKV

    kv = DictKV()
    run = Sources(placer=default_placer(), classifier=Classifier.default(), taxonomy=load_taxonomy(),
                 counts=MinuteCounts(kv), devices=DictKV(), limits=load_limits(), pii_key="x")
    cases, status, dead = set(), {}, 0
    for t in SOURCE_TOPICS:
        handle = {"hotline.tickets": run.hotline, "app.reports": run.app, "sensor.events": run.sensor,
                  "case.events": run.case_event}[t.name]
        for m in sorted(read_all(bootstrap, t.name), key=lambda m: (m.partition, m.offset)):
            for topic, key, value in handle(m.value, m.key, m.topic, m.partition, m.offset, m.timestamp / 1000):
                if topic == "streams.case-candidates":
                    cases.add(orjson.loads(value)["case"]["case_id"])
                elif topic == "streams.case-commands":
                    cmd = orjson.loads(value)
                    if cmd["op"] == "ticket":   # a verified repair is closed at once
                        status[cmd["case_id"]] = "closed" if cmd["event"].get("then_closed") else cmd["event"]["status"]
                elif topic == "deadletters":
                    dead += 1
            run.counts.flush()
    cells: Counter = Counter()  # late events (past the grace period) are not counted, as in the worker
    for key, entry in kv.items():
        for cell, (n, _) in entry.get("cells", {}).items():
            street, source, label = cell.split("|", 2)
            cells[(entry["minute"], entry["district"], street, source, label)] += n
    return cells, cases, status, dead


def minute_counts(bootstrap: str) -> dict:
    """The worker's MinuteCounts on the broker, keyed by district: per cell, the last one wins. Only the
    taxonomy's labels: test_sink.py writes made-up counts to the same topic (labels `<run prefix>-L`), which
    no worker counted and the oracle cannot expect, whichever test runs first."""
    from cityops.taxonomy import load_taxonomy

    labels = load_taxonomy().index["label"]
    counts = {}
    for m in read_all(bootstrap, AGGREGATES.name):
        try:
            v = orjson.loads(m.value)
        except orjson.JSONDecodeError:   # another test's bad input for the sink (tests/test_sink.py)
            continue
        if not isinstance(v, dict) or v.get("label") not in labels:
            continue
        minute = int(datetime.fromisoformat(v["minute"]).timestamp())
        counts[(minute, v["district_code"], v["street_code"], v["source"], v["label"])] = v["count"]
    return counts


RECENT_S = 2 * 86400


def count_errors(got: dict, want: Counter) -> dict:
    """Cells whose count differs: cell → (the worker's, the oracle's). Only cells of the last two days: older ones
    are other tests' backdated events (tests/test_pii_everywhere.py's 2026-11-17 tickets), late or not depending on
    how the worker interleaved the topics, which the oracle, reading topic after topic, cannot replay."""
    since = time.time() - RECENT_S
    return {k: (got.get(k), want.get(k)) for k in set(got) | set(want)
            if k[0] >= since and got.get(k) != want.get(k)}
