"""A three-broker KRaft cluster on loopback (`cityops stack up --brokers 3`): every topic three times replicated
with two in-sync replicas required, each broker in `status`, and a broker killed with kill -9 in the middle of a
simulator run while the worker, the sink and the pager go on.

The cluster is this module's own (free ports, a temporary directory), stopped at the end."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from cityops.topics import CATALOGUE
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

