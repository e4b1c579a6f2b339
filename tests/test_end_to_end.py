"""One hotline ticket the whole way: kafka-python producer → real broker → Faust worker → sink → ClickHouse."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from cityops.models import TicketEvent
from cityops.stack.process import Managed
from cityops.topics import CASES, HOTLINE_TICKETS

pytestmark = pytest.mark.integration
SINK_GROUP = "cityops-sink"


def wait_until_sunk(bootstrap: str, topics: list[str], timeout: float = 120.0) -> None:
    """The sink commits offsets only after the insert: all committed == end offsets means stored."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    probe = KafkaConsumer(bootstrap_servers=bootstrap)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            parts = [TopicPartition(t, p) for t in topics for p in probe.partitions_for_topic(t) or ()]
            ends = probe.end_offsets(parts)
            try:
                committed = admin.list_group_offsets(SINK_GROUP).get(SINK_GROUP, {})
            except KafkaError:  # the group coordinator is still starting
                committed = {}
            every_topic_has_data = all(sum(e for tp, e in ends.items() if tp.topic == t) for t in topics)
            if every_topic_has_data and all(committed.get(tp) and committed[tp].offset >= end
                                            for tp, end in ends.items() if end):
                return
            time.sleep(0.5)
    finally:
        admin.close()
        probe.close()
    raise AssertionError(f"the sink did not store {topics} within {timeout:.0f} s")


def query(env: dict[str, str], sql: str) -> list[dict]:
    """Read through `cityops query` in its own process, as a historian would (chdb: one path per process)."""
    r = subprocess.run([sys.executable, "-m", "cityops", "query", sql, "--format", "json"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_hotline_ticket_reaches_clickhouse_with_its_values(broker, subprocess_env, tmp_path):
    from cityops.settings import get_settings

    s = get_settings()
    # A warehouse of this test's own: other tests may hold the run's embedded directory open.
    env = {**subprocess_env, "CITYOPS_CLICKHOUSE_URL": f"chdb://{tmp_path / 'warehouse'}",
           "CITYOPS_DATA_DIR": str(tmp_path)}
    run, logs = tmp_path / "run", tmp_path / "logs"
    cli = [sys.executable, "-m", "cityops"]
    worker, sink = Managed("worker", run), Managed("sink", run)
    occurred = datetime(2026, 7, 15, 20, 31, 5, 123000, tzinfo=timezone.utc)
    ticket = TicketEvent(ticket_id="RX20260715-000042", status="created", occurred_at=occurred,
                         text="八大局便民市场门口晚上有人露天烧烤，烟很大。我叫张三，电话13812345678",
                         caller_phone="13812345678", address="张店区八大局便民市场", channel="phone")
    try:
        worker.start([*cli, "worker", "--loglevel", "info"], logs / "worker.log", env=env)
        sink.start([*cli, "sink"], logs / "sink.log", env=env)
        producer = KafkaProducer(bootstrap_servers=s.bootstrap_servers, acks="all")
        producer.send(HOTLINE_TICKETS.name, key=HOTLINE_TICKETS.key_of(ticket), value=ticket.to_bytes()).get(30)
        producer.close()
        wait_until_sunk(s.bootstrap_servers, [HOTLINE_TICKETS.name, CASES.name])
    finally:
        sink.stop()
        worker.stop()
    for name in ("worker", "sink"):
        assert "Traceback" not in (logs / f"{name}.log").read_text(), f"{name} crashed: see {logs / name}.log"

    case = query(env, "SELECT case_id, status, label, code, department, tier, time_limit_minutes, text, caller_hash, "
                      f"occurred_at FROM case_current FINAL WHERE case_id = '{ticket.ticket_id}'")
    raw = query(env, f"SELECT event_id, text, address FROM raw_tickets WHERE ticket_id = '{ticket.ticket_id}'")
    assert len(case) == 1 and len(raw) == 1
    c = case[0]
    assert (c["case_id"], c["status"], c["label"], c["code"], c["department"]) == \
        (ticket.ticket_id, "created", "露天烧烤", "0404", "城管执法")
    assert datetime.fromisoformat(c["occurred_at"]).astimezone(timezone.utc) == occurred
    assert raw[0]["event_id"] == ticket.event_id and raw[0]["address"] == ticket.address
    # Personal data never reaches the warehouse in clear text; the caller stays countable.
    for text in (c["text"], raw[0]["text"]):
        assert "13812345678" not in text and "张三" not in text and "八大局便民市场门口" in text
    assert c["caller_hash"] and "13812345678" not in c["caller_hash"]
