"""Messages that could stop the city or leak personal data, through the real broker, worker and sink.

- A 0.8 MiB and a 0.99 MiB message on every source topic (under the broker's limit, far over what an event may
  be): each becomes a dead letter with its size, sha256 and a bounded, masked excerpt; the worker never stops and
  the event sent right behind it on the same partition is processed (a letter embedding the payload in base64,
  a third larger, would be refused by the producer).
- A ticket encoded in GBK with a name, a mobile and an ID number in it: its dead letter, on the topic and in the
  warehouse, holds the text masked (masking reads bytes that are not UTF-8 too).
- A 5 MB message is refused at our producers with a clear error."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer

from bench.pipeline import Pipeline, query
from cityops.models.deadletters import EXCERPT_BYTES
from cityops.topics import APP_REPORTS, DEADLETTERS, HOTLINE_TICKETS, SOURCE_TOPICS
from tests.personal import readable, warehouse_texts

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).parent / "cityops")
SIZES = {"0.8MiB": int(0.8 * 1024 * 1024), "0.99MiB": int(0.99 * 1024 * 1024)}
NAME, MOBILE, ID = "张秀英", "13912345678", "370303199001011234"
SECRETS = (NAME, MOBILE, ID, "+86 139-1234-5678")
TEXT = f"我叫{NAME}，电话+86 139-1234-5678，身份证{ID}，楼下烧烤油烟太大了"


def event(topic: str, run: str, tag: str) -> dict:
    t = (datetime.now(timezone.utc) - timedelta(minutes=2)).isoformat()
    if topic == HOTLINE_TICKETS.name:
        return {"source": "hotline", "event_id": f"{run}-{tag}", "ticket_id": f"{run}-{tag}", "status": "created",
                "occurred_at": t, "text": TEXT, "caller_name": NAME, "caller_phone": MOBILE, "channel": "phone",
                "address": "张店区人民西路8号"}
    if topic == APP_REPORTS.name:
        return {"source": "app", "event_id": f"{run}-{tag}", "report_id": f"{run}-{tag}", "occurred_at": t,
                "text": TEXT, "reporter_phone": MOBILE, "lat": 36.81, "lon": 118.05}
    return {"source": "sensor", "event_id": f"{run}-{tag}", "device_id": f"{run}-{tag}", "kind": "noise",
            "value": 55.0, "occurred_at": t, "lat": 36.81, "lon": 118.05}


def padded(doc: dict, size: int) -> bytes:
    """The event as JSON, its text (or a note) padded with Chinese text to exactly `size` bytes."""
    field = "text" if "text" in doc else "alert_code"
    body = json.dumps({**doc, field: doc.get(field, "") + "∅"}, ensure_ascii=False).encode()
    fill = ("噪声" * size).encode()[: size - len(body) + len("∅".encode())]
    fill = fill.decode(errors="ignore").encode()
    out = body.replace("∅".encode(), fill)
    return out + b" " * (size - len(out))


@pytest.fixture(scope="module")
def outcome(broker, stack_env, tmp_path_factory):
    home = tmp_path_factory.mktemp("hostile")
    dsn = f"chdb://{home / 'clickhouse'}"
    env = {**os.environ, **stack_env, "PYTHONUNBUFFERED": "1", "CITYOPS_CLICKHOUSE_URL": dsn,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(Path(__file__).parents[1])}
    run = f"H{uuid.uuid4().hex[:8]}"
    pipe = Pipeline(env, home, sink_group=f"hostile-sink-{run}")
    producer = KafkaProducer(bootstrap_servers=stack_env["CITYOPS_BOOTSTRAP_SERVERS"], acks="all",
                             max_request_size=2 * 1024 * 1024)
    big, after = {}, {}
    try:
        pipe.start_worker()
        pipe.start_sink()
        worker_pid = pipe.pid("worker")
        for topic in (t.name for t in SOURCE_TOPICS):
            for tag, size in SIZES.items():
                value = padded(event(topic, run, f"big{tag.replace('.', '')}"), size)
                md = producer.send(topic, key=f"{run}-big".encode(), value=value, partition=0).get(30)
                big[(topic, tag)] = (md.partition, md.offset, value)
            # right behind them on the same partition: processed as if nothing happened
            value = json.dumps(event(topic, run, "after"), ensure_ascii=False).encode()
            producer.send(topic, key=f"{run}-after".encode(), value=value, partition=0).get(30)
            after[topic] = f"{run}-after"
        gbk = json.dumps(event(HOTLINE_TICKETS.name, run, "gbk"), ensure_ascii=False).encode("gbk")
        md = producer.send(HOTLINE_TICKETS.name, key=f"{run}-gbk".encode(), value=gbk, partition=1).get(30)
        producer.flush()
        pipe.wait_processed(timeout=240)
        alive = pipe.pid("worker") == worker_pid
    finally:
        producer.close()
        pipe.stop()
    letters = _letters(stack_env["CITYOPS_BOOTSTRAP_SERVERS"], run)
    rows = query(dsn, {
        "dead": "SELECT topic, `partition`, `offset`, reason, payload_size, payload_sha256, payload_encoding, "
                "base64Decode(payload_b64), detail FROM dead_letters FINAL",
        "cases": f"SELECT case_id, text FROM case_history WHERE startsWith(case_id, '{run}')",
        "raw": f"SELECT event_id FROM raw_tickets WHERE startsWith(event_id, '{run}') UNION ALL "
               f"SELECT event_id FROM raw_app_reports WHERE startsWith(event_id, '{run}') UNION ALL "
               f"SELECT event_id FROM sensor_events WHERE startsWith(event_id, '{run}')",
    })
    rows["texts"] = warehouse_texts(dsn)
    return {"alive": alive, "big": big, "after": after, "gbk": (md.partition, md.offset, gbk), "letters": letters,
            "rows": rows, "logs": {n: pipe.log(n) for n in ("worker", "sink")}}


def _letters(bootstrap: str, run: str) -> list[dict]:
    c = KafkaConsumer(DEADLETTERS.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                      consumer_timeout_ms=3000, enable_auto_commit=False, fetch_max_bytes=64 * 1024 * 1024)
    out = [{**json.loads(m.value), "_bytes": len(m.value)} for m in c]
    c.close()
    return out


def test_the_worker_never_stopped_and_what_came_after_was_processed(outcome):
    assert outcome["alive"], "the worker died or restarted:\n" + outcome["logs"]["worker"][-3000:]
    assert "Traceback" not in outcome["logs"]["worker"], outcome["logs"]["worker"][-3000:]
    stored = {r[0] for r in outcome["rows"]["raw"]}
    assert set(outcome["after"].values()) <= stored
    cases = {r[0] for r in outcome["rows"]["cases"]}
    assert outcome["after"][HOTLINE_TICKETS.name] in cases and outcome["after"][APP_REPORTS.name] in cases


@pytest.mark.parametrize("topic", [t.name for t in SOURCE_TOPICS])
@pytest.mark.parametrize("size", list(SIZES))
def test_an_oversize_message_is_a_bounded_masked_dead_letter(outcome, topic, size):
    partition, offset, value = outcome["big"][(topic, size)]
    rows = [r for r in outcome["rows"]["dead"] if tuple(r[:3]) == (topic, partition, offset)]
    assert len(rows) == 1, rows
    _, _, _, reason, n, sha, encoding, excerpt, detail = rows[0]
    assert (reason, n, sha, encoding) == ("oversize", len(value), hashlib.sha256(value).hexdigest(), "utf-8")
    assert 0 < len(excerpt.encode()) <= EXCERPT_BYTES
    assert str(len(value)) in detail
    on_topic = [d for d in outcome["letters"] if (d["topic"], d["partition"], d["offset"]) == (topic, partition, offset)]
    # a worker that replays its input (a rebalance) sends its letters again: the warehouse keeps one
    assert on_topic and all(d["_bytes"] < 2 * EXCERPT_BYTES + 2048 for d in on_topic)
    for secret in SECRETS:
        assert not readable(secret, excerpt)
        assert not any(readable(secret, base64.b64decode(d["payload_b64"]).decode()) for d in on_topic)


def test_a_gbk_ticket_with_personal_data_is_kept_masked(outcome):
    partition, offset, value = outcome["gbk"]
    rows = [r for r in outcome["rows"]["dead"] if tuple(r[:3]) == (HOTLINE_TICKETS.name, partition, offset)]
    assert len(rows) == 1, rows
    _, _, _, reason, n, sha, encoding, excerpt, _ = rows[0]
    assert (reason, n, sha, encoding) == ("encoding", len(value), hashlib.sha256(value).hexdigest(), "gb18030")
    assert "楼下烧烤油烟太大了" in excerpt   # read as the citizen wrote it…
    for secret in SECRETS:                  # …and masked
        assert not readable(secret, excerpt), excerpt
    on_topic = [d for d in outcome["letters"]
                if (d["topic"], d["partition"], d["offset"]) == (HOTLINE_TICKETS.name, partition, offset)]
    kept = base64.b64decode(on_topic[0]["payload_b64"]).decode()
    assert "楼下烧烤油烟太大了" in kept and not any(readable(s, kept) for s in SECRETS)


def test_a_5_mb_message_is_refused_at_the_producer(broker, subprocess_env, tmp_path):
    from producers.errors import InvalidEvent
    from producers.publisher import Publisher

    sink = Publisher()
    try:
        with pytest.raises(InvalidEvent, match=r"5,000,000 bytes, larger than the 65,536 bytes hotline.tickets"):
            sink.send_raw(HOTLINE_TICKETS.name, b"k", b"x" * 5_000_000)
    finally:
        sink.close()
    f = tmp_path / "big.jsonl"
    f.write_text(json.dumps({"source": "sensor", "device_id": "NO-BIG", "kind": "noise", "value": 1,
                             "occurred_at": datetime.now(timezone.utc).isoformat(), "lat": 36.81, "lon": 118.05,
                             "alert_code": "x" * 5_000_000}) + "\n")
    r = subprocess.run([CLI, "produce", "replay", str(f), "--as-fast-as-possible"], env=subprocess_env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "line 1: (line): 5,000,1" in r.stdout and "larger than the 65,536 bytes" in r.stdout


def test_no_personal_data_in_any_table(outcome):
    """Every string column of every table (dead letters' base64 decoded): none of the secrets."""
    texts = outcome["rows"]["texts"]
    assert "楼下烧烤油烟太大了" in "".join(texts.values())   # the scan reads what was stored
    leaks = [(where, s) for where, text in texts.items() for s in SECRETS if readable(s, text)]
    assert not leaks, leaks
