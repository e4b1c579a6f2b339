"""Producers against the real broker: simulated events survive a Kafka round trip and match the
exported JSON Schemas; replay sends valid lines and reports bad ones by line, field and reason."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

from cityops.topics import SOURCE_TOPICS
from producers.schema import export
from producers.serde import encode
from producers.simulator import TZ, Simulator

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).with_name("cityops"))


def days_ago(days: int, hour: int) -> datetime:
    """A recent hour in Beijing: fixed dates grow older than the warehouse's retention (sensor readings 180 days)."""
    return (datetime.now(TZ) - timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)


def consume(bootstrap: str, topic: str, wanted: set[str], field: str = "event_id", timeout_s: float = 60) -> list[dict]:
    """Every message on `topic` whose `field` is in `wanted` (all partitions, from the start).

    Other tests share the pytest run's broker and put bad input on the same topics: skip what isn't ours."""
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=3000)
    parts = [TopicPartition(topic, p) for p in c.partitions_for_topic(topic)]
    c.assign(parts)
    c.seek_to_beginning(*parts)
    end = c.end_offsets(parts)
    out = []
    for msg in c:
        try:
            doc = orjson.loads(msg.value)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and doc.get(field) in wanted:
            out.append(doc)
        if all(c.position(p) >= end[p] for p in parts):
            break
    c.close()
    return out


def test_round_trip_matches_exported_schemas(broker, stack_env, tmp_path):
    from producers.pump import pump
    from producers.publisher import Publisher

    sim = Simulator(seed=3, start=days_ago(2, 17), density=4)
    events = sim.take(6000)
    sink = Publisher()
    try:
        s = pump(iter(events), sink)
    finally:
        sink.close()
    assert s.failed == 0 and s.total == 6000
    export(tmp_path)
    for topic in SOURCE_TOPICS:
        mine = {e.event_id: encode(topic, e)[1] for t, e in events if t is topic}
        assert mine, topic.name
        got = consume(stack_env["CITYOPS_BOOTSTRAP_SERVERS"], topic.name, set(mine))
        assert len(got) == len(mine)
        v = Draft202012Validator(json.loads((tmp_path / f"{topic.name}.schema.json").read_text()))
        for doc in got:
            errors = list(v.iter_errors(doc))
            assert not errors, (topic.name, errors[0].message)
            assert topic.value.model_validate(doc).model_dump_json(exclude_none=True).encode() == mine[doc["event_id"]]


def test_replay_reports_bad_lines_and_sends_good_ones(broker, subprocess_env, stack_env, tmp_path):
    events = Simulator(seed=9, start=days_ago(1, 9)).take(20)
    lines = [encode(t, e)[1].decode() for t, e in events]
    lines.insert(2, "{not json")
    lines.insert(5, json.dumps({**json.loads(lines[5]), "occurred_at": "2099-01-01T00:00:00+08:00"}))
    lines.insert(7, json.dumps({"source": "app", "report_id": "x", "text": "hi"}))
    f = tmp_path / "replay_events.jsonl"
    f.write_text("\n".join(lines) + "\n")
    r = subprocess.run([CLI, "produce", "replay", str(f), "--as-fast-as-possible"], env=subprocess_env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "line 3: (line): not valid JSON" in r.stdout
    assert "line 6: occurred_at" in r.stdout and "future" in r.stdout
    assert "line 8: occurred_at: Field required" in r.stdout
    assert "3 bad line(s)" in r.stdout
    good = {e.event_id for _, e in events}
    got = [d["event_id"] for t in SOURCE_TOPICS
           for d in consume(stack_env["CITYOPS_BOOTSTRAP_SERVERS"], t.name, good)]
    assert sorted(got) == sorted(good)


def test_replay_csv(broker, subprocess_env, stack_env, tmp_path):
    f = tmp_path / "replay_sensors.csv"
    at = days_ago(2, 20)
    f.write_text("event_id,source,occurred_at,device_id,kind,value,lat,lon\n"
                 f"csvreplay0001,sensor,{at.isoformat()},FU-1,cooking_fume,2.4,36.81,118.05\n"
                 f"csvreplay0002,sensor,{(at + timedelta(seconds=1)).isoformat()},FU-1,cooking_fume,lots,36.81,118.05\n")
    r = subprocess.run([CLI, "produce", "replay", str(f), "--speed", "100"], env=subprocess_env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "line 3: value" in r.stdout
    got = consume(stack_env["CITYOPS_BOOTSTRAP_SERVERS"], "sensor.events", {"csvreplay0001", "csvreplay0002"})
    assert [d["event_id"] for d in got] == ["csvreplay0001"]


def test_simulate_cli_holds_a_small_rate(broker, subprocess_env):
    r = subprocess.run([CLI, "produce", "simulate", "--rate", "300", "--duration", "3", "--seed", "1"],
                       env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sensor.events" in r.stdout and "events/s" in r.stdout
