"""The local stack: a real broker comes up once, answers, has every catalogue topic, and goes away cleanly."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from kafka.admin import KafkaAdminClient

from cityops.topics import CATALOGUE

pytestmark = pytest.mark.integration


def test_up_creates_every_topic_with_its_partitions(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.settings.bootstrap_servers)
    try:
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics([t.name for t in CATALOGUE])}
    finally:
        admin.close()
    assert described == {t.name: t.partition_count for t in CATALOGUE}


def test_second_up_is_harmless_and_status_reports(broker, subprocess_env):
    pid = broker.process.pid()
    assert broker.up() == pid
    r = subprocess.run([sys.executable, "-m", "cityops", "stack", "status"], env=subprocess_env, capture_output=True, text=True,
                       check=True, cwd=os.path.dirname(__file__))
    assert str(pid) in r.stdout and broker.settings.kafka_host_port[1] and "kafka" in r.stdout


def test_down_leaves_no_process(stack_env, tmp_path):
    """A second broker on other ports and its own directory: down() must leave nothing running."""
    from cityops.settings import Settings
    from cityops.stack.kafka import Broker
    from tests.conftest import free_port

    s = Settings(data_dir=tmp_path, bootstrap_servers=f"127.0.0.1:{free_port()}",
                 kafka_controller_port=free_port())
    b = Broker(s)
    pid = b.up()
    assert b.down() is True
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] == "Z"
    assert b.process.pid() is None and b.down() is False


def test_format_takes_a_cluster_id_that_starts_with_a_dash(tmp_path):
    """One random id in 64 starts with "-": the storage tool must not read it as an option."""
    from cityops.settings import Settings
    from cityops.stack.kafka import Broker

    b = Broker(Settings(data_dir=tmp_path))
    b.fetch()
    b.format(b.properties(), cluster_id="-Ab3dEfGhIjKlMnOpQrStUv")
    assert "cluster.id=-Ab3dEfGhIjKlMnOpQrStUv" in (b.home / "data" / "meta.properties").read_text()
