"""Start, stop and inspect a KRaft broker (the single node, or one node of a cluster: cityops/stack/cluster.py);
create the catalogue's topics with their replication."""
from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from cityops.errors import UserError
from cityops.settings import Settings
from cityops.stack.process import Managed
from cityops.topics import CATALOGUE, TOPIC_MAX_BYTES, Topic

HERE = Path(__file__).parent
POM = HERE / "kafka-pom.xml"
KAFKA_VERSION = "3.9.1"


class StackError(UserError):
    """A stack step failed; the message says what to do."""


@dataclass(frozen=True)
class Node:
    """Where node `id` of the cluster listens: the id-th address of CITYOPS_BOOTSTRAP_SERVERS, and its
    controller on CITYOPS_KAFKA_CONTROLLER_PORT + 2 (id − 1)."""

    id: int
    host: str
    port: int
    controller_port: int

    @classmethod
    def of(cls, settings: Settings, node_id: int) -> "Node":
        host, _, port = settings.bootstrap_servers.split(",")[node_id - 1].strip().rpartition(":")
        return cls(node_id, host or "127.0.0.1", int(port), settings.kafka_controller_port + 2 * (node_id - 1))

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class Broker:
    settings: Settings
    node_id: int = 1

    @property
    def clustered(self) -> bool:
        return self.settings.kafka_brokers > 1

    @property
    def node(self) -> Node:
        return Node.of(self.settings, self.node_id)

    @property
    def name(self) -> str:
        """kafka (the single broker), kafka-1, kafka-2 … (a cluster's)."""
        return f"kafka-{self.node_id}" if self.clustered else "kafka"

    @property
    def home(self) -> Path:
        return self.settings.data_dir / self.name

    @property
    def libs(self) -> Path:
        return self.settings.cache_dir / f"kafka-{KAFKA_VERSION}" / "libs"

    @property
    def process(self) -> Managed:
        return Managed(f"broker-{self.node_id}" if self.clustered else "broker", self.settings.data_dir / "run")

    @property
    def log(self) -> Path:
        return self.home / "broker.log"

    # -- set-up -------------------------------------------------------------------------------
    def fetch(self) -> Path:
        """Copy the broker's jars from Maven Central into the cache, once."""
        done = self.libs / ".complete"
        if done.exists():
            return self.libs
        if not shutil.which("mvn"):
            raise StackError("Maven (mvn) is not installed: apt-get install maven, or set CITYOPS_CACHE_DIR to a filled cache")
        tmp = self.libs.with_name("libs.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        r = subprocess.run(["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
                            f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise StackError(f"fetching Kafka jars from Maven Central failed: {(r.stdout + r.stderr)[-800:]}")
        shutil.rmtree(self.libs, ignore_errors=True)
        tmp.rename(self.libs)
        done.touch()
        return self.libs

    def properties(self) -> Path:
        node, rf = self.node, self.settings.replication_factor
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node.id),
            **self._quorum(),
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.home / "data"),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": str(rf),
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": str(min_insync(rf)),
            "transaction.state.log.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0",
            "share.coordinator.state.topic.replication.factor": str(rf),
            "log.retention.check.interval.ms": "60000",
        }
        if rf > 1:   # a topic created by a client (Faust's changelogs) is as safe as the catalogue's
            props |= {"default.replication.factor": str(rf), "min.insync.replicas": str(min_insync(rf))}
        path = self.home / "server.properties"
        self.home.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _quorum(self) -> dict[str, str]:
        """The single node is its own dynamic quorum; a cluster's nodes are its fixed voters (KRaft, Kafka 3.9)."""
        if not self.clustered:
            return {"controller.quorum.bootstrap.servers": f"127.0.0.1:{self.node.controller_port}"}
        nodes = [Node.of(self.settings, i) for i in range(1, self.settings.kafka_brokers + 1)]
        return {"controller.quorum.voters": ",".join(f"{n.id}@127.0.0.1:{n.controller_port}" for n in nodes)}

    def _java(self, main: str, *args: str) -> list[str]:
        return ["java", f"-Xmx{self.settings.kafka_heap}", "-Xms128m", "-XX:+UseG1GC",
                f"-Dlog4j.configuration=file:{HERE / 'log4j.properties'}",
                "-cp", f"{self.libs}/*", main, *args]

    def format(self, props: Path, cluster_id: str | None = None) -> None:
        """Format KRaft storage the first time only; a formatted directory keeps its cluster id."""
        if (self.home / "data" / "meta.properties").exists():
            return
        cluster_id = cluster_id or base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # `=`: a base64 id may start with "-", which the tool's argument parser would take for an option.
        # A cluster's voters are in its properties; the single node formats itself as the whole quorum.
        standalone = [] if self.clustered else ["--standalone"]
        r = subprocess.run(self._java("kafka.tools.StorageTool", "format", *standalone,
                                      f"--cluster-id={cluster_id}", "-c", str(props)), capture_output=True, text=True)
        if r.returncode != 0:
            raise StackError(f"formatting Kafka storage in {self.home} failed: {(r.stdout + r.stderr)[-800:]}")

    # -- lifecycle ----------------------------------------------------------------------------
    def up(self, timeout: float = 90.0) -> int:
        """Start the broker unless it runs; wait until it answers; create missing topics. Returns pid."""
        pid = self.process.pid() or self.start()
        self.wait_ready(timeout)
        ensure_topics(self.settings.bootstrap_servers, CATALOGUE, self.settings.replication_factor)
        return pid

    def start(self, cluster_id: str | None = None) -> int:
        """Start the (stopped) broker, its storage formatted first if new; returns its pid without waiting."""
        node = self.node
        for p in (node.port, node.controller_port):
            if _port_open("127.0.0.1", p):
                raise StackError(f"port {p} is taken by another program: stop it or set "
                                 "CITYOPS_BOOTSTRAP_SERVERS / CITYOPS_KAFKA_CONTROLLER_PORT")
        if not shutil.which("java"):
            raise StackError("Java is not installed: the broker needs Java 17 (apt-get install openjdk-17-jre-headless)")
        self.fetch()
        props = self.properties()
        self.format(props, cluster_id)
        return self.process.start(self._java("kafka.Kafka", str(props)), self.log).pid

    def wait_ready(self, timeout: float) -> None:
        node = self.node
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.pid() is None:
                raise StackError(f"the broker {self.name} exited during start-up; see {self.log}")
            if _port_open(node.host, node.port) and _metadata_ok(node.address):
                return
            time.sleep(0.5)
        raise StackError(f"the broker {self.name} did not answer on {node.address} within {timeout:.0f} s; "
                         f"see {self.log}")

    def down(self) -> bool:
        return self.process.stop(timeout=30)

    def status(self) -> dict:
        node = self.node
        pid = self.process.pid()
        return {"service": self.name, "pid": pid, "running": pid is not None,
                "listening": node.address if pid and _port_open(node.host, node.port) else "",
                "controller": f"127.0.0.1:{node.controller_port}",
                "data_dir": str(self.home), "log": str(self.log), "jars": str(self.libs)}


def min_insync(replicas: int) -> int:
    """Copies a write needs before it is acknowledged (acks=all): 2 of 3, so one broker may be down."""
    return max(1, replicas - 1)


def topic_config(t: Topic, replicas: int) -> dict[str, str]:
    config = {"retention.ms": str(t.retention_ms), "max.message.bytes": str(TOPIC_MAX_BYTES)}
    if t.source:   # the broker's clock says when an event arrived, whatever its source's clock says
        config["message.timestamp.type"] = "LogAppendTime"
    if replicas > 1:
        config["min.insync.replicas"] = str(min_insync(replicas))
    return config


def ensure_topics(bootstrap: str, topics: tuple[Topic, ...], replicas: int = 1) -> list[str]:
    """Create the topics that do not exist yet, with their partition counts and `replicas` copies, and give every
    topic its retention, size limit and in-sync copies needed (a changed setting applies to existing topics too).
    Returns those created."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="cityops-stack")
    try:
        existing = set(admin.list_topics())
        new = [NewTopic(t.name, t.partition_count, replicas, topic_configs=topic_config(t, replicas))
               for t in topics if t.name not in existing]
        if new:
            admin.create_topics(new)
        old = [t for t in topics if t.name in existing]
        if old:   # incremental (IncrementalAlterConfigs): other settings of a topic stay as they are
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t.name, configs=topic_config(t, replicas))
                                 for t in old])
        for t in topics:  # a topic created earlier with another count breaks Faust's co-partitioning
            if t.name in existing:
                got = len(admin.describe_topics([t.name])[0]["partitions"])
                if got != t.partition_count:
                    raise StackError(f"topic {t.name} has {got} partitions, the catalogue says "
                                     f"{t.partition_count}: delete it or set CITYOPS_PARTITIONS={got}")
        return [n.name for n in new]
    finally:
        admin.close()


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _metadata_ok(bootstrap: str) -> bool:
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    try:
        c = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=3000,
                          connections_max_idle_ms=5000)
    except KafkaError:
        return False
    try:
        return c.topics() is not None
    except KafkaError:
        return False
    finally:
        c.close()
