"""The whole streams path on the real broker, with a worker SIGKILLed mid-stream (restarted, or its partitions
taken over by the other worker) or fetching from past its commits: case states and minute counts must come out
as if it had never stopped (no event lost, none counted twice)."""
from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from kafka import KafkaProducer

from cityops.stack.process import Managed
from cityops.topics import CASES, DEADLETTERS, INCIDENTS
from tests.oracle import count_errors, expected, lag, minute_counts, read_all, wait_drained

pytestmark = pytest.mark.integration


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


def wait_part_way(bootstrap: str, total: int) -> None:
    """Until 40 % of the `total` messages the worker had to handle are committed (at most 3 minutes)."""
    deadline = time.monotonic() + 180
    while lag(bootstrap) > total * 0.6 and time.monotonic() < deadline:
        time.sleep(0.2)


# Guards every replay path of docs/streams.md "Exactness across crashes": re-emitted cases, state writes before
# commits, no candidate lost in the restart's seek, offsets in order from the commit (streams/inorder.py).
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
        wait_part_way(bootstrap, total)
        os.killpg(worker.pid(), signal.SIGKILL)
        time.sleep(1)
        assert lag(bootstrap) > 0, "the worker finished before it could be killed mid-stream"
        worker.start(cli, logs / "streams-worker-2.log", env=subprocess_env)
        wait_drained(bootstrap, lambda: worker.pid() is not None)
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
        wait_drained(bootstrap, lambda: worker.pid() is not None)
    finally:
        worker.stop()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text
    assert "is the next to handle: reading from" in text, "the injected fetch past the commit did not happen"
    assert_as_if_never_stopped(bootstrap)


def test_two_workers_one_killed_mid_stream_come_out_as_if_neither_stopped(broker, subprocess_env, stack_env,
                                                                         tmp_path):
    """The survivor takes the killed worker's partitions over (a rebalance: its tables recover them from the
    changelogs) and reads them from the killed worker's commits."""
    from bench.pipeline import Pipeline
    from cityops.settings import get_settings

    bootstrap = get_settings().bootstrap_servers
    produce(bootstrap, seed=13, n=12_000, minutes=12)
    pipe = Pipeline(subprocess_env, tmp_path)
    total = lag(bootstrap)
    try:
        pipe.start_worker("worker-1")
        pipe.start_worker("worker-2")
        wait_part_way(bootstrap, total)
        os.kill(pipe.pid("worker-2"), signal.SIGKILL)
        wait_drained(bootstrap, lambda: pipe.pid("worker-1") is not None)
    finally:
        pipe.stop()
    assert "Traceback" not in pipe.log("worker-1") + pipe.log("worker-2")
    assert_as_if_never_stopped(bootstrap)


def assert_as_if_never_stopped(bootstrap: str) -> None:
    """The worker's outputs on the broker are what a worker that never stopped computes from every source
    message on it."""
    cells, case_ids, status, dead = expected(bootstrap)

    assert count_errors(minute_counts(bootstrap), cells) == {}

    latest = {}
    for m in read_all(bootstrap, CASES.name):
        v = orjson.loads(m.value)
        if "duplicate_of" not in v:   # tests/test_intake_loop.py's stand-in versions (no nulls), same broker
            continue
        if v["case_id"] not in latest or v["version"] >= latest[v["case_id"]]["version"]:
            latest[v["case_id"]] = v
    assert set(latest) == case_ids
    # A device case's check races its device's readings (another topic), so only other sources' statuses.
    # Events of cases never opened here (tests/test_intake_loop.py's) wait for their opening: no status.
    status = {cid: s for cid, s in status.items() if cid in case_ids and latest[cid]["source"] != "sensor"}
    assert {cid: latest[cid]["status"] for cid in status} == status
    # Each merged duplicate counted exactly once on its primary, replays notwithstanding.
    dups = Counter(c["duplicate_of"] for c in latest.values() if c["duplicate_of"])
    assert {cid: latest[cid]["reporter_count"] - 1 for cid in dups} == dict(dups)
    assert all(c["reporter_count"] == 1 for cid, c in latest.items() if cid not in dups)

    assert len(read_all(bootstrap, DEADLETTERS.name)) >= dead >= 3
    incidents = [orjson.loads(m.value) for m in read_all(bootstrap, INCIDENTS.name)]
    assert all(i["label"] and i["limit"] > 0 for i in incidents)
