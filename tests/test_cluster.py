"""A three-broker KRaft cluster on loopback (`cityops stack up --brokers 3`): every topic three times replicated
with two in-sync replicas required, each broker in `status`, and a broker killed with kill -9 in the middle of a
simulator run while the worker, the sink and the pager go on: afterwards the warehouse holds exactly what was
produced, every alert was delivered once, and the minute counts and cases are what a worker that never saw the
fault computes (tests/oracle.py).

The cluster is this module's own (free ports, a temporary directory), stopped at the end."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from cityops.topics import CASES, CATALOGUE, HOTLINE_TICKETS
from tests.cluster_stack import cluster_env, settings_of

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from cityops.stack.cluster import Cluster

    env = cluster_env(tmp_path_factory.mktemp("cluster"))
    c = Cluster(settings_of(env))
    try:
        c.up()
        yield c, env
    finally:
        c.down()


def _env(env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def replicas(bootstrap: str, names: list[str]) -> dict[str, dict]:
    """topic → its partitions' replica and in-sync counts and its min.insync.replicas."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="cityops-test")
    try:
        out = {t["name"]: {"replicas": {len(p["replica_nodes"]) for p in t["partitions"]},
                           "isr": {len(p["isr_nodes"]) for p in t["partitions"]}}
               for t in admin.describe_topics(names)}
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names],
                                         config_filter="all")["topic"]
        for name, conf in configs.items():   # the topic's own setting or the brokers' default
            out[name]["min_isr"] = conf["min.insync.replicas"]["value"]
    finally:
        admin.close()
    return out


def test_every_topic_has_three_replicas_and_needs_two_in_sync(cluster):
    c, env = cluster
    got = replicas(env["CITYOPS_BOOTSTRAP_SERVERS"], [t.name for t in CATALOGUE])
    assert got == {t.name: {"replicas": {3}, "isr": {3}, "min_isr": "2"} for t in CATALOGUE}


def test_status_shows_each_broker_and_a_second_up_changes_nothing(cluster):
    c, env = cluster
    pids = [b.process.pid() for b in c.brokers]
    assert None not in pids and c.up() == pids
    r = subprocess.run([sys.executable, "-m", "cityops", "stack", "status"], env=_env(env), capture_output=True,
                       text=True, check=True, cwd=ROOT)
    for i, (b, pid) in enumerate(zip(c.brokers, pids), start=1):
        line = next((ln for ln in r.stdout.splitlines() if f"kafka-{i} " in ln), "")
        assert str(pid) in line and str(b.node.port) in line, r.stdout


def test_the_streams_replicate_their_own_topics_as_the_catalogue_does():
    """Faust creates its changelog and internal topics itself, with the app's replication factor."""
    probe = "from streams.app import app; print(app.conf.topic_replication_factor)"
    for brokers, want in (("1", "1"), ("3", "3"), ("5", "3")):
        env = {**os.environ, "CITYOPS_KAFKA_BROKERS": brokers, "PYTHONPATH": str(ROOT)}
        r = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
        assert r.stdout.strip() == want


def test_one_broker_stays_the_default(tmp_path, monkeypatch):
    from cityops.settings import Settings
    from cityops.stack.kafka import Broker, topic_config
    from cityops.topics import HOTLINE_TICKETS

    for name in ("CITYOPS_KAFKA_BROKERS", "CITYOPS_KAFKA_CONTROLLER_PORT"):   # the defaults, whatever this run set
        monkeypatch.delenv(name, raising=False)
    s = Settings(data_dir=tmp_path, bootstrap_servers="127.0.0.1:9092")
    assert (s.kafka_brokers, s.replication_factor, s.bootstrap_servers) == (1, 1, "127.0.0.1:9092")
    props = Broker(s).properties().read_text()
    assert "controller.quorum.bootstrap.servers=127.0.0.1:9093\n" in props and "voters" not in props
    assert "offsets.topic.replication.factor=1\n" in props and "min.insync.replicas" not in props
    assert "min.insync.replicas" not in topic_config(HOTLINE_TICKETS, 1)
    three = Settings(data_dir=tmp_path, bootstrap_servers="127.0.0.1:9092", kafka_brokers=3)
    assert three.bootstrap_servers == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"


def collapse(bootstrap: str, ticket_id: str) -> None:
    """A hotline ticket whose category pages its department at once (路面塌陷), acknowledged by two brokers."""
    from cityops.models import TicketEvent

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    try:
        ev = TicketEvent(ticket_id=ticket_id, status="created", text="马路中间路面塌陷了一个大坑", lat=36.81,
                         lon=118.05, occurred_at=datetime.now(timezone.utc))
        producer.send(HOTLINE_TICKETS.name, key=ticket_id.encode(), value=ev.to_bytes()).get(timeout=60)
    finally:
        producer.close()


def test_a_broker_killed_mid_stream(cluster, tmp_path_factory):
    from tests.oracle import expected, read_all
    from tests.test_faults import assert_exact, run_with_fault

    c, env = cluster
    bootstrap = env["CITYOPS_BOOTSTRAP_SERVERS"]
    victim = c.leader_of_most()

    page = f"CLU-{uuid.uuid4().hex[:8]}"

    def fault(pipe, sup):
        os.kill(victim.process.pid(), signal.SIGKILL)
        time.sleep(3)             # the city goes on with two brokers, and a road caves in
        collapse(bootstrap, page)
        time.sleep(7)
        c.start(victim)

    def ready(pipe):   # the broker dies mid-stream, not while the worker is still starting (declaring topics)
        deadline = time.monotonic() + 120
        while "[^Worker]: Ready" not in pipe.log("worker") and time.monotonic() < deadline:
            time.sleep(0.5)

    r = run_with_fault("cluster", env, tmp_path_factory, fault, ready)
    assert r["restarts"] == [], f"a process died when the broker did: {r['restarts']}"
    assert_exact(r)
    assert [a for a in r["delivered"] if page in a], f"the collapse raised no alert: {r['delivered']}"

    # The cases are those of a worker that never saw the fault: the same ids, and each merged duplicate counted
    # once on its primary. Not their statuses: no simulated ticket has a lifecycle event within this run's
    # simulated minute, and a device case's check races its device's readings (tests/test_restart_streams.py).
    case_ids = expected(bootstrap)[1]
    latest = {}
    for m in read_all(bootstrap, CASES.name):
        v = orjson.loads(m.value)
        if v["case_id"] not in latest or v["version"] >= latest[v["case_id"]]["version"]:
            latest[v["case_id"]] = v
    assert case_ids and set(latest) == case_ids
    dups = Counter(v["duplicate_of"] for v in latest.values() if v["duplicate_of"])
    assert {cid: latest[cid]["reporter_count"] - 1 for cid in dups} == dict(dups)

    # The restarted broker caught up: every partition, the worker's own topics and the offsets included, has
    # its three replicas in sync again, and needs two of them for a write.
    deadline = time.monotonic() + 120
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        names = [n for n in admin.list_topics() if n != "__cluster_metadata"]
    finally:
        admin.close()
    assert any(n.endswith("-changelog") for n in names), names
    while time.monotonic() < deadline:
        got = replicas(bootstrap, names)
        if all(v["isr"] == {3} for v in got.values()):
            break
        time.sleep(2)
    assert {n: (v["replicas"], v["isr"], v["min_isr"]) for n, v in got.items()} == \
           {n: ({3}, {3}, "2") for n in names}
