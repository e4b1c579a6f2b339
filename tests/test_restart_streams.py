"""The whole streams path on the real broker, with the worker SIGKILLed mid-stream and restarted: case states
and minute counts must come out as if it had never stopped (no event lost, none counted twice)."""
from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from cityops.stack.process import Managed
from cityops.topics import AGGREGATES, CASES, DEADLETTERS, INCIDENTS, INTERNAL_TOPICS, SOURCE_TOPICS

pytestmark = pytest.mark.integration
GROUP = "cityops-streams"
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
    probe = KafkaConsumer(bootstrap_servers=bootstrap)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(t, p) for t in CONSUMED for p in probe.partitions_for_topic(t)]
        ends = probe.end_offsets(parts)
        try:
            done = admin.list_group_offsets(GROUP).get(GROUP, {})
        except KafkaError:
            done = {}
        behind = {f"{tp.topic}/{tp.partition}": end - (done[tp].offset if tp in done else 0)
                  for tp, end in ends.items()}
        return {k: n for k, n in behind.items() if n} if per_partition else sum(behind.values())
    finally:
        probe.close()
        admin.close()


def wait_drained(bootstrap: str, worker: Managed, timeout: float = 300) -> None:
    """No lag on any consumed topic for several checks in a row (timers emit every 2 s)."""
    deadline, quiet = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        assert worker.pid() is not None, "the worker died"
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
    from streams.intake import Intake
    from streams.placement import default_placer
    from streams.sensors.limits import load_limits
    from streams.state import DictKV

    kv = DictKV()
    run = Intake(placer=default_placer(), classifier=Classifier.default(), taxonomy=load_taxonomy(),
                 counts=MinuteCounts(kv), devices=DictKV(), limits=load_limits(), pii_key="x")
    cases, status, dead = set(), {}, 0
    for t in SOURCE_TOPICS:
        handle = {"hotline.tickets": run.hotline, "app.reports": run.app, "sensor.events": run.sensor}[t.name]
        for m in sorted(read_all(bootstrap, t.name), key=lambda m: (m.partition, m.offset)):
            for topic, key, value in handle(m.value, m.key, m.topic, m.partition, m.offset):
                if topic == "streams.case-candidates":
                    cases.add(orjson.loads(value)["case"]["case_id"])
                elif topic == "streams.case-commands":
                    ev = orjson.loads(value)["event"]
                    status[ev["ticket_id"]] = ev["status"]
                elif topic == "deadletters":
                    dead += 1
            run.counts.flush()
    cells: Counter = Counter()  # late events (past the grace period) are not counted, as in the worker
    for key, entry in kv.items():
        for cell, (n, _) in entry.get("cells", {}).items():
            street, source, label = cell.split("|", 2)
            cells[(entry["minute"], entry["district"], street, source, label)] += n
    return cells, cases, status, dead


def produce(bootstrap: str, seed: int, n: int, minutes: int) -> None:
    """`n` simulated events from `minutes` ago (none from the future) and three broken tickets."""
    from producers.simulator.engine import Simulator

    sim = Simulator(seed=seed, start=datetime.now(timezone.utc) - timedelta(minutes=minutes), density=12)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    for topic, ev in sim.take(n):
        if ev.occurred_at < datetime.now(timezone.utc):
            producer.send(topic.name, key=topic.key_of(ev), value=ev.to_bytes())
    for bad in (b"{oops", "{\"投诉\": 1}".encode("gbk"), b'{"ticket_id": "X"}'):
        producer.send("hotline.tickets", key=b"bad", value=bad)
    producer.flush()
    producer.close()


# Real losses it found: a replay that emitted nothing (fixed in streams/cases/lifecycle.py), minute counts
# short when an offset commit passed a buffered state write (streams/app.py DrainingBuffer), and case
# candidates dropped by Faust's stream path during the restart's seek, with the internal-topic fetch stall
# on that path (every topic now goes through batch handlers; docs/streams.md). It also checks what the
# earlier tests' workers left on the session's broker: minute counts short by 1-7 per cell in the minute
# of the lost-ack fault test were a fetch handled before the commit's run (streams/inorder.py).
def test_worker_killed_mid_stream_comes_out_as_if_it_never_stopped(broker, subprocess_env, stack_env):
    from cityops.settings import get_settings

    s = get_settings()
    bootstrap = s.bootstrap_servers
    produce(bootstrap, seed=11, n=12_000, minutes=20)
    run, logs = s.data_dir / "run", s.data_dir / "logs"
    worker = Managed("streams-worker", run)
    cli = [sys.executable, "-m", "cityops", "worker", "--loglevel", "info"]
    total = lag(bootstrap)
    worker.start(cli, logs / "streams-worker-1.log", env=subprocess_env)
    try:
        deadline = time.monotonic() + 180
        while lag(bootstrap) > total * 0.6 and time.monotonic() < deadline:  # part-way through
            time.sleep(0.2)
        os.killpg(worker.pid(), signal.SIGKILL)
        time.sleep(1)
        assert lag(bootstrap) > 0, "the worker finished before it could be killed mid-stream"
        worker.start(cli, logs / "streams-worker-2.log", env=subprocess_env)
        wait_drained(bootstrap, worker)
    finally:
        worker.stop()
    for n in (1, 2):
        assert "Traceback" not in (logs / f"streams-worker-{n}.log").read_text(errors="replace")
    assert_as_if_never_stopped(bootstrap)


def test_a_fetch_from_past_the_commit_is_read_from_the_commit(broker, subprocess_env, stack_env):
    """A worker whose partitions are fetched from 300 offsets past their commits (fault injection) must
    read them from the commits all the same, and hand each partition's messages over in order."""
    from cityops.settings import get_settings

    s = get_settings()
    bootstrap = s.bootstrap_servers
    produce(bootstrap, seed=12, n=5_000, minutes=8)
    worker = Managed("streams-worker", s.data_dir / "run")
    log = s.data_dir / "logs" / "streams-worker-ahead.log"
    worker.start([sys.executable, "-m", "cityops", "worker", "--loglevel", "info"], log,
                 env={**subprocess_env, "CITYOPS_WORKER_FETCH_AHEAD": "300"})
    try:
        wait_drained(bootstrap, worker)
    finally:
        worker.stop()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text
    assert "is the next to handle: reading from" in text, "the injected fetch past the commit did not happen"
    assert_as_if_never_stopped(bootstrap)


def assert_as_if_never_stopped(bootstrap: str) -> None:
    """The worker's outputs on the broker are what a worker that never stopped computes from every source
    message on it."""
    cells, case_ids, status, dead = expected(bootstrap)

    counts = {}
    for m in read_all(bootstrap, AGGREGATES.name):  # keyed by district: per cell, the last one wins
        v = orjson.loads(m.value)
        minute = int(datetime.fromisoformat(v["minute"]).timestamp())
        counts[(minute, v["district_code"], v["street_code"], v["source"], v["label"])] = v["count"]
    assert counts == dict(cells)

    latest = {}
    for m in read_all(bootstrap, CASES.name):
        v = orjson.loads(m.value)
        if v["case_id"] not in latest or v["version"] >= latest[v["case_id"]]["version"]:
            latest[v["case_id"]] = v
    assert set(latest) == case_ids
    assert {cid: latest[cid]["status"] for cid in status} == status
    # Each merged duplicate counted exactly once on its primary, replays notwithstanding.
    dups = Counter(c["duplicate_of"] for c in latest.values() if c["duplicate_of"])
    assert {cid: latest[cid]["reporter_count"] - 1 for cid in dups} == dict(dups)
    assert all(c["reporter_count"] == 1 for cid, c in latest.items() if cid not in dups)

    assert len(read_all(bootstrap, DEADLETTERS.name)) >= dead >= 3
    incidents = [orjson.loads(m.value) for m in read_all(bootstrap, INCIDENTS.name)]
    assert all(i["label"] and i["limit"] > 0 for i in incidents)
