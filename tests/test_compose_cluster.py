"""docker-compose.cluster.yml cannot run here (no engine): its shape. A three-broker KRaft quorum with every copy
setting at 3 / 2 in sync, three Keeper nodes, 2 shards × 2 replicas named alike in compose and in the ClickHouse
cluster's config, and the pipeline pointed at all of it."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[1]
TEXT = (ROOT / "docker-compose.cluster.yml").read_text()
SERVICES = yaml.safe_load(TEXT)["services"]
CLUSTER = ET.parse(ROOT / "sinks/clickhouse/cluster.xml").getroot()
KEEPER = ET.parse(ROOT / "sinks/clickhouse/keeper.xml").getroot()


def _named(prefix: str) -> dict:
    return {n: s for n, s in SERVICES.items() if n.startswith(prefix)}


def test_three_brokers_one_quorum_three_copies():
    brokers = _named("kafka-")
    assert len(brokers) == 3 and all(s["image"] == "apache/kafka:3.9.1" for s in brokers.values())
    envs = [s["environment"] for s in brokers.values()]
    assert sorted(e["KAFKA_NODE_ID"] for e in envs) == [1, 2, 3]
    assert {e["KAFKA_CONTROLLER_QUORUM_VOTERS"] for e in envs} == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert len({e["CLUSTER_ID"] for e in envs}) == 1
    for e in envs:
        assert e["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://kafka-{e['KAFKA_NODE_ID']}:9092"
        assert (e["KAFKA_DEFAULT_REPLICATION_FACTOR"], e["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"],
                e["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == (3, 3, 3)
        assert (e["KAFKA_MIN_INSYNC_REPLICAS"], e["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == (2, 2)


def test_two_shards_of_two_replicas_kept_by_three_keepers():
    keepers = _named("keeper-")
    assert sorted(s["environment"]["KEEPER_ID"] for s in keepers.values()) == [1, 2, 3]
    assert {h.text for h in KEEPER.iter("hostname")} == set(keepers)
    assert {n.find("host").text for n in CLUSTER.find("zookeeper")} == set(keepers)
    nodes = _named("clickhouse-")
    shards = CLUSTER.find("remote_servers").find("cityops").findall("shard")
    assert [len(s.findall("replica")) for s in shards] == [2, 2]
    in_config = {r.find("host").text: str(i) for i, s in enumerate(shards, start=1) for r in s.findall("replica")}
    assert in_config == {n: s["environment"]["CH_SHARD"] for n, s in nodes.items()}
    assert all(s["environment"]["CH_REPLICA"] == n for n, s in nodes.items())
    assert all(any(v.startswith("./sinks/clickhouse/cluster.xml:") for v in s["volumes"]) for s in nodes.values())


def test_the_pipeline_uses_every_broker_and_the_cluster():
    app = {n: s for n, s in SERVICES.items() if s.get("build")}
    assert {"topics", "migrate", "producer", "worker", "sink", "pager"} <= set(app)
    for name, svc in app.items():
        env = svc["environment"]
        assert env["CITYOPS_KAFKA_BROKERS"] == "3" and env["CITYOPS_BOOTSTRAP_SERVERS"].split(",") == \
               [f"{n}:9092" for n in sorted(_named("kafka-"))], name
        assert env["CITYOPS_CLICKHOUSE_CLUSTER"] == "cityops", name
        assert re.search(r"@clickhouse-s\d+r\d+:8123/", env["CITYOPS_CLICKHOUSE_URL"]), name


def test_no_secrets_in_the_file():
    for m in re.finditer(r"^\s+\w*(PASSWORD|PII_KEY|API_KEYS)\w*:\s*(.+)$", TEXT, re.M):
        assert m.group(2).strip().startswith("${"), f"{m.group(0)!r} must come from the environment"
    for url in re.findall(r"http://\w+:([^@]+)@", TEXT):
        assert url.startswith("${"), url
