"""The sink against the real broker and the real engine (chdb): every message stored once, personal data
masked, bad messages dead-lettered, and exact counts after a SIGKILL mid-batch."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from kafka import KafkaProducer

from bench.pipeline import lag as group_lag
from cityops.topics import by_name
from bench.samples import make

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).parent / "cityops")

# (topic, table, column holding the run's prefix, messages)
PLAN = [("hotline.tickets", "raw_tickets", "ticket_id", 300), ("sensor.events", "sensor_events", "device_id", 400),
        ("app.reports", "raw_app_reports", "report_id", 200), ("cases", "case_history", "case_id", 300),
        ("incidents", "incidents", "incident_id", 50), ("aggregates", "minute_counts", "label", 60),
        ("alerts", "alerts", "alert_id", 40), ("deliveries", "deliveries", "alert_id", 40)]


def produce(bootstrap: str, topic: str, values, raw: list[bytes] = ()) -> None:
    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024, acks="all")
    t = by_name(topic)
    for v in values:
        p.send(topic, v.to_bytes() if hasattr(v, "to_bytes") else v.model_dump_json().encode(), key=t.key_of(v))
    for b in raw:
        p.send(topic, b)
    p.flush()
    p.close()


def count(wh, table: str, column: str, prefix: str) -> int:
    final = " FINAL" if "Replacing" in wh.query(f"SELECT engine FROM system.tables WHERE name = '{table}'").result_rows[0][0] else ""
    return wh.query(f"SELECT count() FROM {table}{final} WHERE startsWith({column}, %(p)s)",
                    parameters={"p": prefix}).result_rows[0][0]


def wait_for(check, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    check(final=True)


@pytest.fixture
def warehouse(stack_env):
    from cityops.settings import get_settings
    from cityops.warehouse import connect, migrate

    wh = connect(get_settings())
    migrate(wh)
    return wh


@pytest.mark.parametrize("process_from_rows", [100_000, 1], ids=["in-process", "decoding-process"])
def test_sink_stores_every_topic_once_masked_and_dead_letters_bad_input(broker, warehouse, process_from_rows):
    """Bad messages on an output topic become masked dead letters from the sink; on a source topic the
    streams worker dead-letters them (with the original bytes), so the sink stores nothing for them. The same
    whether batches are decoded in the sink's process or in its decoding process (sinks/decode_pool.py)."""
    from cityops.settings import get_settings
    from sinks.service import SinkConfig, run

    s = get_settings()
    prefix = f"s{uuid.uuid4().hex[:8]}"
    bad = [f"{{not json {prefix}".encode(), f'{{"case_id": "{prefix}-bad", "text": "我的电话13912345678"}}'.encode()]
    for topic, _, _, n in PLAN:
        values = make(topic, prefix, n)
        if topic == "cases":  # a restarted worker re-emits the versions it replays: same (case id, version)
            values += values[:40]
        produce(s.bootstrap_servers, topic, values, raw=bad if topic in ("cases", "hotline.tickets") else ())
    stop = threading.Event()
    stats = {}
    th = threading.Thread(target=lambda: stats.update(vars(run(s, stop, warehouse, SinkConfig(
        batch_rows=500, linger_s=0.2, group_id=f"sink-{prefix}", process_from_rows=process_from_rows)))))
    th.start()

    def letters(topic: str) -> list[tuple]:
        return warehouse.query("SELECT reason, base64Decode(payload_b64) FROM dead_letters FINAL "
                               "WHERE kafka_topic = %(t)s AND positionUTF8(base64Decode(payload_b64), %(p)s) > 0",
                               parameters={"t": topic, "p": prefix}).result_rows
    try:
        def done(final=False):
            got = {table: count(warehouse, table, col, prefix) for _, table, col, _ in PLAN}
            want = {table: n for _, table, _, n in PLAN}
            n_letters = len(letters("cases"))
            if final:
                assert (got, n_letters) == (want, 2)
            return got == want and n_letters == 2
        wait_for(done)
    finally:
        stop.set()
        th.join(30)
    assert not th.is_alive()
    # case_current holds one row per case; case_history (read without FINAL, summed by the rollups) holds each
    # version once, the re-emitted copies dropped.
    assert count(warehouse, "case_current", "case_id", prefix) == 300
    plain = warehouse.query("SELECT count() FROM case_history WHERE startsWith(case_id, %(p)s)",
                            parameters={"p": prefix}).result_rows[0][0]
    assert plain == 300 and stats["duplicates"] >= 40
    # No phone number, ID number or caller name in clear text anywhere the sink wrote.
    leaked = warehouse.query(
        "SELECT count() FROM raw_tickets WHERE startsWith(ticket_id, %(p)s) AND (match(text, '1[3-9][0-9]{9}') "
        "OR match(text, '[0-9]{17}[0-9Xx]') OR position(text, '张三') > 0 OR length(caller_hash) != 20)",
        parameters={"p": prefix}).result_rows[0][0]
    assert leaked == 0
    reasons = sorted(r[0] for r in letters("cases"))
    assert reasons == ["invalid_json", "schema"]
    assert not any("13912345678" in r[1] for r in letters("cases"))
    assert letters("hotline.tickets") == []


# A kill can land between a raw table's part and its rollup's part, which the sink tops up on resume. Rollups
# keep readings past the table's TTL: they equal the raw rows, other tests' included, within the retention.
RETAINED = "toStartOfDay(now() - INTERVAL 179 DAY)"
def test_sink_resumes_exactly_after_sigkill_mid_batch(broker, subprocess_env, tmp_path):
    """`cityops sink` subprocesses are SIGKILLed between inserts (stored, not committed) and at a random moment
    while messages keep arriving; after a final restart every count equals what was produced."""
    from cityops.settings import get_settings

    s = get_settings()
    prefix = f"k{uuid.uuid4().hex[:8]}"
    env = {**subprocess_env, "CITYOPS_DATA_DIR": str(tmp_path / "data"),
           "CITYOPS_CLICKHOUSE_URL": f"chdb://{tmp_path / 'warehouse'}"}
    argv = [CLI, "sink", "--batch-rows", "3000", "--linger", "0.3", "--group", f"sink-{prefix}"]
    topics = {"hotline.tickets": 4000, "sensor.events": 6000, "cases": 3000}
    rounds = 5
    log = tmp_path / "sink.log"

    def start(**extra):
        return subprocess.Popen(argv, env={**env, **extra}, stdout=open(log, "ab"), stderr=subprocess.STDOUT)

    def send(r: int) -> None:
        for topic, n in topics.items():
            produce(s.bootstrap_servers, topic, make(topic, f"{prefix}x{r}", n // rounds))

    send(0)
    # Readings from before the sensor table's retention (a replay of old data): stored in no raw table, counted
    # by the rollups; the comparison below must hold with them, as with any other test's messages.
    produce(s.bootstrap_servers, "sensor.events",
            make("sensor.events", f"{prefix}old", 50, datetime.now(timezone.utc) - timedelta(days=200)))
    # 1: kills itself after the raw lane's first insert, mid-flush: rows stored, offsets not committed.
    assert start(CITYOPS_SINK_KILL_AFTER_INSERTS="raw:1").wait(120) == -signal.SIGKILL
    # 2: killed from outside while production continues.
    first_stored = log.read_text().count("stored")
    second = start()
    for r in range(1, rounds):
        send(r)
        if r == 1:   # once the second has stored something itself (the first's lines are in the log too)
            wait_for(lambda final=False: log.read_text().count("stored") > first_stored
                     or (final and pytest.fail(log.read_text())))
            second.kill()
            second.wait()
    # The first crash did hit the window the warehouse offsets exist for.
    assert re.search(r"resuming at (\d+) \(committed (\d+|None)\)", log.read_text())
    assert any(int(a) > int(b if b != "None" else 0)
               for a, b in re.findall(r"resuming at (\d+) \(committed (\d+|None)\)", log.read_text()))
    third = start()
    try:
        def caught_up(final=False):
            lag = group_lag(s.bootstrap_servers, f"sink-{prefix}", list(topics))
            if final:
                assert lag == 0, log.read_text()[-3000:]
            return lag == 0
        wait_for(caught_up, 180)
    finally:
        third.terminate()
        third.wait(60)
    out = subprocess.run([CLI, "query", "--format", "json",
                          f"SELECT (SELECT count() FROM raw_tickets WHERE startsWith(ticket_id, '{prefix}')) AS tickets, "
                          f"(SELECT count() FROM sensor_events WHERE startsWith(device_id, '{prefix}')) AS sensors, "
                          f"(SELECT count() FROM case_history WHERE startsWith(case_id, '{prefix}')) AS history, "
                          f"(SELECT count() FROM case_current FINAL WHERE startsWith(case_id, '{prefix}')) AS current, "
                          f"(SELECT sum(events) FROM events_per_minute WHERE minute >= {RETAINED}) AS rolled, "
                          f"(SELECT count() FROM raw_tickets WHERE occurred_at >= {RETAINED}) "
                          f"+ (SELECT count() FROM sensor_events WHERE occurred_at >= {RETAINED}) "
                          f"+ (SELECT count() FROM raw_app_reports WHERE occurred_at >= {RETAINED}) AS raw"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)[0]
    # No FINAL on the append tables: what a dashboard counts is exactly what was produced.
    assert (got["tickets"], got["sensors"], got["history"], got["current"]) == (4000, 6000, 3000, 3000)
    assert got["rolled"] == got["raw"]


def test_the_cockpits_topics_have_a_lane_of_their_own():
    """Every topic is stored by exactly one lane; what the control room and the pager read (cases, alerts…) is
    not in the lane of the raw events, so its inserts do not queue behind theirs."""
    from cityops.topics import ALERTS, CASES, OUTPUT_TOPICS, SENSOR_EVENTS, SOURCE_TOPICS
    from sinks.config import TOPICS, lanes_of

    lanes = dict(lanes_of(TOPICS))
    assert sorted(t.name for ts in lanes.values() for t in ts) == sorted(t.name for t in TOPICS)
    assert set(lanes["operations"]) == set(OUTPUT_TOPICS) and set(lanes["raw"]) == set(SOURCE_TOPICS)
    assert CASES in lanes["operations"] and ALERTS in lanes["operations"]
    assert lanes_of((SENSOR_EVENTS,)) == [("raw", (SENSOR_EVENTS,))]


def test_the_lanes_figures_add_up():
    from sinks.service import Stats

    a = Stats(messages=10, rows=12, dead_letters=1, batches=2, per_table={"cases": 5, "dead_letters": 1})
    b = Stats(messages=7, rows=7, dead_letters=2, batches=1, retries=3, per_table={"raw_tickets": 5, "dead_letters": 2})
    m = Stats.merged([a, b])
    assert (m.messages, m.rows, m.dead_letters, m.batches, m.retries) == (17, 19, 3, 3, 3)
    assert m.per_table == {"cases": 5, "dead_letters": 3, "raw_tickets": 5}
