"""The sink's fast path against the authority (pydantic per message): for any input, the same inserts —
same rows, same dead letters with the same reasons. And the warehouse refusing a row still ends as a dead letter."""
from __future__ import annotations

import base64
import json
import re
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cityops.models.envelope import EARLIEST, _plausible
from cityops.topics import OUTPUT_TOPICS, SOURCE_TOPICS, by_name
from sinks.batch import Batch, Insert
from sinks.decode import Decoder
from sinks.fast import INTERVAL_CHECKS, shape_of
from bench.samples import BY_TOPIC, make

TOPICS = SOURCE_TOPICS + OUTPUT_TOPICS
FAST, SLOW = Decoder(TOPICS, "test-key"), Decoder(TOPICS, "test-key", fast=False)
CORPUS = Path(__file__).parent / "data" / "bad_input" / "cases.jsonl"
NOW = datetime.now(timezone.utc)


def _bytes(v) -> bytes:
    return v.to_bytes() if hasattr(v, "to_bytes") else v.model_dump_json().encode()


SAMPLES = {t: [json.loads(_bytes(v)) for v in make(t, "fast01", 30, NOW)] for t in BY_TOPIC}


def normal(inserts: list[Insert], decoded_at: datetime) -> list:
    """Inserts as comparable values: timestamps as epoch ms (text or datetime); what a default factory fills in
    while decoding (received_at or event_id absent, the moment of failure) becomes "now" / "uuid"."""
    since = int(decoded_at.timestamp() * 1000)
    out = []
    for ins in inserts:
        cols = []
        for (name, typ), col in zip(ins.table.columns().items(), ins.columns):
            if "DateTime64" in typ:
                col = [None if v is None else
                       int((datetime.fromisoformat(v) if isinstance(v, str) else v).timestamp() * 1000) for v in col]
                col = ["now" if v is not None and v >= since else v for v in col]
            elif name == "event_id":   # uuid4().hex when absent: a new one on each path
                col = ["uuid" if re.fullmatch(r"[0-9a-f]{32}", v) else v for v in col]
            cols.append((name, col))
        out.append((ins.table.name, ins.token, cols))
    return out


def same_inserts(batch: Batch) -> list[Insert]:
    decoded_at = datetime.now(timezone.utc)
    fast = FAST.inserts(batch)
    assert normal(fast, decoded_at) == normal(SLOW.inserts(batch), decoded_at)
    return fast


def batch_of(messages: list[tuple[str, bytes | None]]) -> Batch:
    b = Batch()
    for i, (topic, value) in enumerate(messages):
        b.add(topic, i % 3, 1000 + i, b"k", value)
    return b


def test_every_topic_takes_the_fast_path_and_matches_the_models():
    batch = batch_of([(t, _bytes(v)) for t in BY_TOPIC for v in make(t, "fast02", 40, NOW)])
    for topic, messages in batch.topics.items():
        shape = shape_of(by_name(topic).value)
        assert shape is not None and len(shape.decode(messages.values).index) == 40, topic
    inserts = same_inserts(batch)
    assert {i.table.name for i in inserts} >= {"raw_tickets", "sensor_events", "case_current", "deliveries"}


def test_bad_input_corpus_gives_the_same_dead_letters_and_rows():
    cases = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    messages = [(c["topic"], None if c["payload_b64"] is None else base64.b64decode(c["payload_b64"])) for c in cases]
    # Valid neighbours on both sides: the merge of fast and slow rows keeps arrival order.
    valid = [(t, orjson.dumps(o)) for t in ("hotline.tickets", "sensor.events", "app.reports") for o in SAMPLES[t][:3]]
    inserts = same_inserts(batch_of(valid + messages + valid))
    # Bad input on the source topics is the streams worker's to dead-letter (with the original bytes): the sink
    # writes no second letter. Some cases are valid to the model and rejected by the streams (places outside the
    # city): those are stored raw here, identically on both paths.
    assert sum(len(i) for i in inserts if i.table.name == "dead_letters") == 0
    raw = sum(len(i) for i in inserts if i.table.name in ("raw_tickets", "sensor_events", "raw_app_reports"))
    assert len(valid) * 2 <= raw < len(valid) * 2 + sum(c["expect"] == "dead_letter" for c in cases)


JSON_VALUE = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=False, allow_infinity=False)
                          | st.text(max_size=20) | st.sampled_from(["2026-07-15T12:00:00Z", "2026-07-15T12:00:00.123+08:00",
                                                                    "2026-07-15 12:00:00", "2014-12-31T23:59:59Z",
                                                                    "2026-13-01T00:00:00Z", "2999-01-01T00:00:00Z",
                                                                    "370302001001001", "370302", "370302\n", "١٢٣٤٥٦",
                                                                    "https://img.example.cn/p/1.jpg", "ftp://x", "created",
                                                                    "sensor", "hotline", "noise", "reading", ""]),
                          lambda children: st.lists(children, max_size=2) | st.dictionaries(st.text(max_size=4), children, max_size=2),
                          max_leaves=4)


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    topic = draw(st.sampled_from(sorted(SAMPLES)))
    obj = dict(draw(st.sampled_from(SAMPLES[topic])))
    field = draw(st.sampled_from(sorted(set(obj) | set(by_name(topic).value.model_fields) | {"extra"})))
    if draw(st.booleans()):
        obj.pop(field, None)
    else:
        obj[field] = draw(JSON_VALUE)
    return topic, json.dumps(obj, ensure_ascii=False).encode()   # json: integers beyond 64 bits too


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated(), min_size=1, max_size=6))
def test_any_one_field_changed_the_fast_path_agrees_with_the_model(messages):
    same_inserts(batch_of(messages))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.datetimes(min_value=datetime(2010, 1, 1), max_value=datetime(2030, 1, 1),
                             timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=8))])), min_size=3, max_size=3))
def test_interval_checks_pass_whatever_lies_between_two_passing_times(times):
    """INTERVAL_CHECKS are checked on a column's extremes only: that is sound only for pure interval checks."""
    lo, mid, hi = sorted(times)
    for check in INTERVAL_CHECKS:
        try:
            check(lo), check(hi)
        except ValueError:
            continue
        check(mid)
    assert _plausible in INTERVAL_CHECKS and EARLIEST.year == 2015


@pytest.mark.integration
def test_a_row_the_warehouse_refuses_becomes_a_dead_letter(stack_env):
    """In the pytest run's warehouse (chdb opens one path per process), on a partition no real topic has."""
    from cityops.settings import get_settings
    from cityops.warehouse import connect, migrate
    from sinks.store import Store

    wh = connect(get_settings())
    migrate(wh)
    batch = Batch()
    for i, o in enumerate(SAMPLES["sensor.events"][:5]):
        batch.add("sensor.events", 97, 1000 + i, b"k", orjson.dumps(o))
    [ins] = FAST.inserts(batch)
    value = list(ins.table.columns()).index("value")
    ins.columns[value][2] = "not a number"     # as if a stage had let it through
    assert Store(wh, threading.Event()).insert(ins, batch) == 4
    rows = wh.query("SELECT kafka_topic, kafka_offset, reason, detail FROM dead_letters "
                    "WHERE kafka_partition = 97").result_rows
    assert [(t, o, r) for t, o, r, _ in rows] == [("sensor.events", 1002, "warehouse_rejected")]
    assert "sensor_events" in rows[0][3]
    assert wh.query("SELECT count() FROM sensor_events WHERE kafka_partition = 97").result_rows[0][0] == 4


class Counted:
    """The pytest run's warehouse, counting the inserts made through it (the engine itself answers)."""

    def __init__(self, wh):
        self.wh, self.inserts = wh, 0

    def raw_insert(self, *args, **kwargs):
        self.inserts += 1
        return self.wh.raw_insert(*args, **kwargs)


def test_poison_rows_are_found_by_bisection_and_the_batch_goes_on(stack_env):
    """Three rows the model accepted and the warehouse refuses, in 2,000: 1,997 stored, 3 dead letters with the
    reason, in a few dozen inserts (one by one, it took 2,001)."""
    from cityops.settings import get_settings
    from cityops.warehouse import connect, migrate
    from sinks.store import Store

    wh = connect(get_settings())
    migrate(wh)
    batch = Batch()
    for i in range(2000):
        o = SAMPLES["sensor.events"][i % 30]
        batch.add("sensor.events", 96, 5000 + i, b"k", orjson.dumps({**o, "event_id": f"bisect-{i:05d}"}))
    [ins] = FAST.inserts(batch)
    value = list(ins.table.columns()).index("value")
    for i in (7, 1000, 1999):
        ins.columns[value][i] = "not a number"     # as if a stage had let it through
    counted = Counted(wh)
    assert Store(counted, threading.Event()).insert(ins, batch) == 1997
    rows = wh.query("SELECT kafka_offset, reason FROM dead_letters WHERE kafka_partition = 96").result_rows
    assert sorted(rows) == [(5007, "warehouse_rejected"), (6000, "warehouse_rejected"), (6999, "warehouse_rejected")]
    assert wh.query("SELECT count() FROM sensor_events WHERE kafka_partition = 96").result_rows[0][0] == 1997
    assert counted.inserts <= 3 * 2 * 11 + 2, counted.inserts


def test_an_error_of_no_known_kind_is_counted_and_does_not_loop(stack_env, caplog):
    """Inserting into a view (ClickHouse: NOT_IMPLEMENTED) is neither refused data nor an outage: logged with
    its traceback, counted, tried a few times, then its rows are dead letters with the error."""
    import dataclasses

    from cityops.settings import get_settings
    from cityops.warehouse import connect, migrate
    from cityops.warehouse.schema import RAW_SENSOR_EVENTS
    from sinks.store import UNKNOWN_TRIES, Store

    wh = connect(get_settings())
    migrate(wh)
    wh.command("CREATE VIEW IF NOT EXISTS sensor_events_view AS SELECT * FROM sensor_events")
    batch = Batch()
    for i, o in enumerate(SAMPLES["sensor.events"][:2]):
        batch.add("sensor.events", 95, 7000 + i, b"k", orjson.dumps(o))
    [ins] = FAST.inserts(batch)
    ins = Insert(dataclasses.replace(RAW_SENSOR_EVENTS, name="sensor_events_view"), ins.columns)
    store = Store(wh, threading.Event(), max_backoff_s=0.01)
    assert store.insert(ins, batch) == 0
    assert store.unexplained == 3 * UNKNOWN_TRIES   # the batch, then each of its two rows
    assert "no known kind" in caplog.text and "Traceback" in caplog.text
    rows = wh.query("SELECT kafka_offset, reason FROM dead_letters WHERE kafka_partition = 95").result_rows
    assert sorted(rows) == [(7000, "warehouse_error"), (7001, "warehouse_error")]


def test_an_oversize_source_message_is_skipped_even_when_valid():
    """The streams worker dead-letters it as `oversize`; the sink stores nothing for it, on both paths."""
    from cityops.topics import MAX_MESSAGE_BYTES

    obj = dict(SAMPLES["hotline.tickets"][0])
    padded = orjson.dumps({**obj, "note": "x" * 2000}).rstrip(b"}") + b" " * MAX_MESSAGE_BYTES + b"}"
    assert len(padded) > MAX_MESSAGE_BYTES and orjson.loads(padded)
    inserts = same_inserts(batch_of([("hotline.tickets", orjson.dumps(obj)), ("hotline.tickets", padded)]))
    assert [(i.table.name, len(i)) for i in inserts] == [("raw_tickets", 1)]


def test_a_resent_event_id_is_stored_once_within_and_across_batches():
    from sinks.dedup import Dedup

    dedup = Dedup(capacity=2)
    first = [orjson.dumps(o) for o in SAMPLES["sensor.events"][:3]]
    [ins] = dedup.filter(FAST.inserts(batch_of([("sensor.events", v) for v in first + first[:1]])))
    ids = ins.columns[list(ins.table.columns()).index("event_id")]
    assert len(ins) == 3 and len(set(ids)) == 3 and dedup.dropped == 1
    assert dedup.filter(FAST.inserts(batch_of([("sensor.events", first[1])]))) == []
    # Bounded: after `capacity` newer ids, the oldest one is forgotten and would be stored again.
    newer = [orjson.dumps(o) for o in SAMPLES["sensor.events"][3:5]]
    assert len(dedup.filter(FAST.inserts(batch_of([("sensor.events", v) for v in newer])))[0]) == 2
    assert len(dedup.filter(FAST.inserts(batch_of([("sensor.events", first[0])])))[0]) == 1
    # Other topics pass untouched.
    cases = [orjson.dumps(o) for o in SAMPLES["cases"][:2]]
    assert sum(map(len, dedup.filter(FAST.inserts(batch_of([("cases", v) for v in cases * 2]))))) >= 4


@pytest.mark.parametrize("decoder", [FAST, SLOW], ids=["fast", "slow"])
def test_source_events_placed_outside_the_city_are_not_stored(decoder):
    """The worker dead-letters them (`coordinates`); the raw tables must not count them as accepted too."""
    inside = dict(SAMPLES["sensor.events"][0])
    beijing = {**SAMPLES["sensor.events"][1], "lat": 39.9042, "lon": 116.4074}
    null_island = {**SAMPLES["sensor.events"][2], "lat": 0.0, "lon": 0.0}
    values = [orjson.dumps(o) for o in (beijing, inside, null_island)]
    [ins] = decoder.inserts(batch_of([("sensor.events", v) for v in values]))
    ids = ins.columns[list(ins.table.columns()).index("event_id")]
    assert (ins.table.name, ids) == ("sensor_events", [inside["event_id"]])


def test_the_decoding_process_sends_what_the_sink_would_insert_itself():
    """Every topic, the bad-input corpus and a resent event: the same tables, rows, tokens and identities as the
    in-process decoder (up to what a default factory fills in while decoding: failure times, absent ids)."""
    from sinks.decode_pool import DecodePool

    cases = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    messages = [(t, orjson.dumps(o)) for t, objs in SAMPLES.items() for o in objs]
    messages += [(c["topic"], None if c["payload_b64"] is None else base64.b64decode(c["payload_b64"])) for c in cases]
    batch = batch_of(messages + messages[:1])
    decoding = DecodePool(tuple(t.name for t in TOPICS), "test-key", min_rows=1)
    decoded_at = datetime.now(timezone.utc)
    try:
        encoded = decoding.result(decoding.submit(batch))
    finally:
        decoding.close()
    local = FAST.inserts(batch)
    sent = [Insert(e.table, list(orjson.loads(e.body()).values())) for e in encoded]
    assert normal(sent, decoded_at) == normal(local, decoded_at)
    assert [len(e) for e in encoded] == [len(i) for i in local]
    assert [e.identities for e in encoded] == [i.identities for i in local]
    assert DecodePool((), "k", min_rows=10).submit(batch_of(messages[:9])) is None   # small: in-process


def test_dedup_passes_a_childs_insert_untouched_unless_a_row_was_stored():
    """An insert a decoding child sent (its body and identities, no columns) goes on as it came when none of its
    rows was stored; otherwise only the stored rows (and twins within the batch) are dropped."""
    from cityops.warehouse.schema import RAW_SENSOR_EVENTS
    from sinks.dedup import Dedup

    def sent(*ids):
        local = Insert(RAW_SENSOR_EVENTS, FAST.inserts(batch_of([("sensor.events", orjson.dumps(
            {**SAMPLES["sensor.events"][0], "event_id": i})) for i in ids]))[0].columns)
        return Insert(RAW_SENSOR_EVENTS, body=local.body(), token=local.token, identities=list(ids), size=len(ids))

    dedup = Dedup(capacity=100)
    first = sent("aaaaaaaa", "bbbbbbbb")
    assert dedup.filter([first]) == [first] and first._columns is None   # not even parsed
    [kept] = dedup.filter([sent("cccccccc", "aaaaaaaa")])                               # "aaaaaaaa" was stored
    assert kept.identities == ["cccccccc"]
    [kept] = dedup.filter([sent("dddddddd", "dddddddd")])                               # twice within the batch
    assert kept.identities == ["dddddddd"] and dedup.dropped == 2


def test_kafka_python_checks_crcs_in_c():
    """Without the crc32c package kafka-python checks each fetched batch in pure Python (docs/warehouse.md)."""
    from kafka.record import util

    assert util.crc32c_c is not None


def test_decoding_processes_leave_when_the_sink_is_killed(tmp_path):
    """A SIGKILLed sink must not leave its decoding processes behind (they would wait for work forever)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import multiprocessing, time\n"
        "from sinks.batch import Batch\n"
        "from sinks.decode_pool import DecodePool\n"
        "if __name__ == '__main__':\n"
        "    d = DecodePool(('sensor.events',), 'k', min_rows=1)\n"
        "    b = Batch(); b.add('sensor.events', 0, 0, None, b'{}')\n"
        "    d.result(d.submit(b))\n"
        "    print(*[c.pid for c in multiprocessing.active_children()], flush=True)\n"
        "    time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              cwd=Path(__file__).parent.parent)
    children = [int(p) for p in parent.stdout.readline().split()]
    assert children
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(map(_running, children)):
        time.sleep(0.2)
    alive = [c for c in children if _running(c)]
    for c in alive:
        os.kill(c, signal.SIGKILL)
    assert not alive, f"decoding processes {alive} outlived the sink"


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
