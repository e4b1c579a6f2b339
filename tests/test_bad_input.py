"""The bad-input corpus (tests/data/bad_input/cases.jsonl) through the real pipeline: broker, worker
subprocess, sink subprocess, embedded ClickHouse.

One worker and one sink handle the whole corpus, with valid events before and after it. Afterwards every
case is checked on its own (one test per case, so a report names exactly what is wrong): a rejected message
is one dead letter with the expected reason class, and the original bytes are still on the deadletters
topic; an accepted one is stored once, text verbatim (SQL and script in complaints are text, never run).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer

from bench.pipeline import Pipeline, alive, end_offsets, query, worker_topics
from cityops.models import AppReport, SensorEvent, TicketEvent
from cityops.models.deadletters import EXCERPT_BYTES
from cityops.pii import mask_payload
from cityops.topics import APP_REPORTS, DEADLETTERS, HOTLINE_TICKETS, SENSOR_EVENTS
from cityops.warehouse.schema import tables_of

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parent / "data" / "bad_input" / "cases.jsonl"
CORPUS_DAY = b"2026-07-15"   # the day the corpus's events happened (tests/data/bad_input/make_corpus.py)
# Sent on a recent day: a fixed one grows older than the warehouse's retention, and the accepted events must be
# stored; same length, so sizes and reasons stay.
RECENT_DAY = (datetime.now(timezone.utc) - timedelta(days=20)).strftime("%Y-%m-%d").encode()


def _recent(case: dict) -> dict:
    if case["payload_b64"] is None:
        return case
    payload = base64.b64decode(case["payload_b64"]).replace(CORPUS_DAY, RECENT_DAY)
    return {**case, "payload_b64": base64.b64encode(payload).decode()}


CASES = [_recent(json.loads(line)) for line in CORPUS.read_text().splitlines() if line.strip()]
T = datetime.combine(datetime.fromisoformat(RECENT_DAY.decode()).date(), datetime.min.time().replace(hour=12),
                     tzinfo=timezone.utc)
SOURCES = (HOTLINE_TICKETS.name, SENSOR_EVENTS.name, APP_REPORTS.name)


def raw_table(topic: str) -> str:
    return tables_of(topic)[-1].name


def valid_events(tag: str) -> list[tuple[str, object]]:
    """A few events that must go through: before the corpus (warm-up) and after it (the worker survived)."""
    out: list[tuple[str, object]] = []
    for i in range(3):
        out.append((HOTLINE_TICKETS.name, TicketEvent(
            event_id=f"valid-{tag}-ticket-{i}", ticket_id=f"VALID-{tag}-{i}", status="created", occurred_at=T,
            text="小区门口的井盖缺失了，晚上很危险", address="张店区华光路", channel="phone")))
    out.append((SENSOR_EVENTS.name, SensorEvent(event_id=f"valid-{tag}-sensor", device_id=f"noise-{tag}-1",
                                                kind="noise", value=61.5, lat=36.81, lon=118.05, occurred_at=T)))
    out.append((APP_REPORTS.name, AppReport(event_id=f"valid-{tag}-report", report_id=f"VALID-{tag}-R",
                                            text="路边有人乱贴小广告", lat=36.80, lon=118.04, occurred_at=T)))
    return out


@dataclass
class Outcome:
    positions: dict[str, list[tuple[int, int]]]     # case name → (partition, offset) of each copy sent
    valid: list[tuple[str, str]]                    # (topic, event_id) of the valid events
    worker_alive: bool
    worker_topics: list[str]
    letters_on_topic: dict[tuple[str, int, int], dict]    # the worker's dead letters
    rows: dict[str, list[list]]
    logs: dict[str, str]
    source_messages: int                            # on the source topics, whoever sent them


def _send_all(bootstrap: str) -> tuple[dict[str, list[tuple[int, int]]], list[tuple[str, str]]]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=2 * 1024 * 1024)
    positions: dict[str, list[tuple[int, int]]] = {}
    valid: list[tuple[str, str]] = []

    def send_valid(tag: str) -> None:
        for topic, ev in valid_events(tag):
            producer.send(topic, key=ev.event_id.encode(), value=ev.to_bytes()).get(30)
            valid.append((topic, ev.event_id))

    send_valid("before")
    for case in CASES:
        value = None if case["payload_b64"] is None else base64.b64decode(case["payload_b64"])
        for _ in range(case["repeat"]):
            md = producer.send(case["topic"], key=case["key"].encode(), value=value).get(30)
            positions.setdefault(case["name"], []).append((md.partition, md.offset))
    send_valid("after")
    producer.close()
    return positions, valid


def _worker_letters(bootstrap: str) -> dict[tuple[str, int, int], bytes]:
    consumer = KafkaConsumer(DEADLETTERS.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=3000, enable_auto_commit=False)
    out = {}
    for m in consumer:
        letter = json.loads(m.value)
        out[(letter["topic"], letter["partition"], letter["offset"])] = letter
    consumer.close()
    return out


@pytest.fixture(scope="module")
def outcome(broker, stack_env, tmp_path_factory) -> Outcome:
    home = tmp_path_factory.mktemp("bad_input")
    dsn = f"chdb://{home / 'clickhouse'}"
    env = {**os.environ, **stack_env, "PYTHONUNBUFFERED": "1", "CITYOPS_CLICKHOUSE_URL": dsn,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(Path(__file__).parents[1])}
    bootstrap = stack_env["CITYOPS_BOOTSTRAP_SERVERS"]
    # Its own sink group and warehouse: it stores every message on the topics, other tests' included.
    pipe = Pipeline(env, home, sink_group="bad-input-sink")
    try:
        pipe.start_worker()
        pipe.start_sink()
        positions, valid = _send_all(bootstrap)
        pipe.wait_processed(timeout=300)
        worker_pid = pipe.pid("worker")
        worker_ok = alive(worker_pid)
        consumed = worker_topics(bootstrap)
        sent = sum(end_offsets(bootstrap, list(SOURCES)).values())
    finally:
        pipe.stop()
    logs = {name: pipe.log(name) for name in ("worker", "sink")}
    queries = {
        "dead": "SELECT topic, `partition`, `offset`, reason, kafka_topic, length(payload_b64) "
                "FROM dead_letters FINAL",
        # Everything: a few hundred rows (this module's and the other tests' messages on the same broker).
        **{f"raw:{t}": f"SELECT event_id, kafka_partition, kafka_offset, "
                       f"{'text, address' if t != SENSOR_EVENTS.name else chr(39) * 2 + ', ' + chr(39) * 2} "
                       f"FROM {raw_table(t)}" for t in SOURCES},
        "cases": "SELECT event_id, case_id, text, address, placed, grid_code, version, reporter_count, duplicate_of "
                 "FROM case_history FINAL",
        "tables": "SELECT name FROM system.tables WHERE database = currentDatabase()",
        "cockpit_dead_letter_rate": _cockpit_sql("dead_letter_rate"),
        "rejected": f"SELECT uniqExact(topic, `partition`, `offset`) FROM dead_letters WHERE topic IN {SOURCES}",
    }
    return Outcome(positions, valid, worker_ok, consumed, _worker_letters(bootstrap), query(dsn, queries), logs,
                   sent)


def _cockpit_sql(panel: str) -> str:
    from dashboards.macros import QueryContext, expand
    from dashboards.panels import by_key

    ctx = QueryContext(datetime(2020, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc))
    return expand(by_key(panel).sql, ctx)


def test_the_corpus_is_big_and_covers_every_source_topic():
    assert len(CASES) >= 60
    for topic in (HOTLINE_TICKETS.name, SENSOR_EVENTS.name, APP_REPORTS.name):
        mine = [c for c in CASES if c["topic"] == topic]
        assert {c["expect"] for c in mine} == {"dead_letter", "accepted"}, topic


def test_the_worker_survived_and_processed_what_came_after(outcome):
    assert outcome.worker_alive, "the worker died during the corpus; see its log:\n" + outcome.logs["worker"][-3000:]
    for name in ("worker", "sink"):
        assert "Traceback" not in outcome.logs[name], f"{name} logged a traceback:\n{outcome.logs[name][-3000:]}"
    stored = {r[0] for t in (HOTLINE_TICKETS, SENSOR_EVENTS, APP_REPORTS) for r in outcome.rows[f"raw:{t.name}"]}
    assert {e for _, e in outcome.valid} <= stored
    cased = {r[0] for r in outcome.rows["cases"]}
    assert {e for t, e in outcome.valid if t == HOTLINE_TICKETS.name} <= cased, "valid tickets made no case"


def test_no_injected_statement_ran(outcome):
    tables = {r[0] for r in outcome.rows["tables"]}
    assert {"cases", "raw_tickets"} & tables == {"raw_tickets"} and "case_current" in tables


def test_cockpit_dead_letter_rate_counts_each_rejected_message_once(outcome):
    """The cockpit's 死信率 panel, run on this warehouse: rejected source messages / all source events (a resent
    copy is one event)."""
    rejected = outcome.rows["rejected"][0][0]
    assert rejected >= sum(c["expect"] == "dead_letter" for c in CASES)
    resent = sum(c["repeat"] - 1 for c in CASES)   # a resent copy is one event, neither rejected nor new
    expected = rejected / (outcome.source_messages - resent)
    shown = float(outcome.rows["cockpit_dead_letter_rate"][0][0])
    assert shown == pytest.approx(expected, rel=0.02), \
        f"the cockpit shows {shown:.1%} dead letters; {rejected} of {outcome.source_messages - resent} events were rejected"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(outcome, case):
    sent = outcome.positions[case["name"]]
    if case["expect"] == "dead_letter":
        _check_dead_letter(outcome, case, sent)
    else:
        _check_accepted(outcome, case, sent)


def _check_dead_letter(outcome: Outcome, case: dict, sent: list[tuple[int, int]]) -> None:
    topic = case["topic"]
    (partition, offset), = sent
    letters = [r for r in outcome.rows["dead"] if (r[0], r[1], r[2]) == (topic, partition, offset)]
    assert letters, f"{case['name']}: no dead letter for {topic}/{partition}/{offset} ({case['why']})"
    # Who said what: the worker's letters arrive through the deadletters topic, the sink's from the source.
    said = {("worker" if r[4] == DEADLETTERS.name else "sink"): r[3] for r in letters}
    assert set(said.values()) <= set(case["reasons"]), \
        f"{case['name']}: reasons {said}, expected one of {case['reasons']} ({case['why']})"
    assert len(letters) == 1, f"{case['name']}: {len(letters)} dead-letter rows as queries see them (FINAL): {said}"
    if case["reasons"] != ["coordinates"]:   # well-formed but implausible events are kept raw, as received
        stored = [r for r in outcome.rows[f"raw:{topic}"] if (r[1], r[2]) == (partition, offset)]
        assert not stored, f"{case['name']}: rejected but also stored in {raw_table(topic)}"
    assert not [r for r in outcome.rows["cases"] if case["name"] in r[0]], f"{case['name']}: made a case"
    original = b"" if case["payload_b64"] is None else base64.b64decode(case["payload_b64"])
    if topic in outcome.worker_topics:
        # The worker's letter names the message (its bytes stay on the source topic for the retention) and keeps
        # its text masked.
        assert (topic, partition, offset) in outcome.letters_on_topic, \
            f"{case['name']}: the worker consumes {topic} but sent no dead letter"
        letter = outcome.letters_on_topic[(topic, partition, offset)]
        assert (letter["payload_size"], letter["payload_sha256"]) == \
            (len(original), hashlib.sha256(original).hexdigest() if original else "")
        text, _ = mask_payload(original, EXCERPT_BYTES) if original else ("", "")
        assert base64.b64decode(letter["payload_b64"]) == (text or "").encode()[:EXCERPT_BYTES].decode(
            errors="ignore").encode()


def _check_accepted(outcome: Outcome, case: dict, sent: list[tuple[int, int]]) -> None:
    topic, event_id = case["topic"], case["event_id"]
    stored = [r for r in outcome.rows[f"raw:{topic}"] if r[0] == event_id]
    assert stored, f"{case['name']}: accepted event {event_id} not stored in {raw_table(topic)}"
    assert not [r for r in outcome.rows["dead"] if r[0] == topic and (r[1], r[2]) in sent], \
        f"{case['name']}: valid event also dead-lettered"
    versions = [r for r in outcome.rows["cases"] if r[0] == event_id]
    assert len(stored) == 1, (f"{case['name']}: sent {case['repeat']}×, {len(stored)} rows in {raw_table(topic)} "
                              f"and {len(versions)} case versions (an event id must be stored once as queries see it)")
    if "text" in case:
        assert stored[0][3] == case["text"], f"{case['name']}: text not stored verbatim"
    if "address" in case:
        assert stored[0][4] == case["address"], f"{case['name']}: address not stored verbatim"
    if topic == HOTLINE_TICKETS.name:
        # One case opened, however often the event came. Later versions with its event id are reporters merged
        # in: other accepted tickets of the corpus share its text, place and time, so it may be their primary.
        cases = [r for r in versions if r[6] == 1]
        assert len(cases) == 1, f"{case['name']}: {len(cases)} cases opened for event {event_id} (expected 1)"
        merged = {r[1] for r in outcome.rows["cases"] if r[8] == cases[0][1]}
        assert max(r[7] for r in versions) == 1 + len(merged), \
            f"{case['name']}: reporter count {max(r[7] for r in versions)}, {len(merged)} other reports merged in"
        if "text" in case:
            assert cases[0][2] == case["text"], f"{case['name']}: case text not verbatim"
