"""A Kafka cluster on loopback: CITYOPS_KAFKA_BROKERS KRaft nodes, each a broker and one of the controller
quorum's voters, formatted with one cluster id; every catalogue topic replicated on three of them. With one
node (the default) it is the single broker, so callers need not tell the two apart."""
from __future__ import annotations

import base64
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from cityops.settings import Settings
from cityops.stack.kafka import Broker, StackError, ensure_topics
from cityops.topics import CATALOGUE


class Cluster:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.brokers = [Broker(settings, i) for i in range(1, settings.kafka_brokers + 1)]

    def cluster_id(self) -> str:
        """The id a formatted node already has (one node may have been formatted, its peers not), else a new one."""
        for b in self.brokers:
            meta = b.home / "data" / "meta.properties"
            if meta.exists():
                for line in meta.read_text().splitlines():
                    if line.startswith("cluster.id="):
                        return line.removeprefix("cluster.id=")
        return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")

    def up(self, timeout: float = 120.0) -> list[int]:
        """Start the nodes that do not run; wait until every one is in the cluster; create missing topics.
        Returns the brokers' pids."""
        if len(self.brokers) == 1:
            return [self.brokers[0].up(timeout)]   # no quorum of peers, no replicas to wait for
        cluster_id = self.cluster_id()
        pids = [b.process.pid() or b.start(cluster_id) for b in self.brokers]
        deadline = time.monotonic() + timeout
        for b in self.brokers:   # a quorum needs a majority of the nodes: all were started before waiting
            b.wait_ready(deadline - time.monotonic())
        self._wait_registered(deadline)
        ensure_topics(self.settings.bootstrap_servers, CATALOGUE, self.settings.replication_factor)
        self._wait_in_sync(deadline)
        return pids

    def start(self, broker: Broker, timeout: float = 90.0) -> int:
        """Start one node again (after it stopped or died) and wait until it answers."""
        pid = broker.process.pid() or broker.start(self.cluster_id())
        broker.wait_ready(timeout)
        return pid

    def down(self) -> bool:
        """Stop every node at once (the last one stopped alone would wait for a quorum that is gone); True if
        one was running."""
        with ThreadPoolExecutor(len(self.brokers)) as pool:
            return any(list(pool.map(Broker.down, self.brokers)))

    def leader_of_most(self) -> Broker:
        """The broker leading the most catalogue partitions (the one whose death moves most)."""
        leaders = Counter(p["leader_id"] for t in self._described() for p in t["partitions"])
        return self.brokers[leaders.most_common(1)[0][0] - 1]

    def _described(self, timeout: float = 30.0) -> list[dict]:
        """The catalogue's topics with all their partitions (a broker may answer with none a moment after
        the topics were created)."""
        from kafka.admin import KafkaAdminClient

        deadline = time.monotonic() + timeout
        while True:
            admin = KafkaAdminClient(bootstrap_servers=self.settings.bootstrap_servers, client_id="cityops-stack")
            try:
                described = admin.describe_topics([t.name for t in CATALOGUE])
            finally:
                admin.close()
            counts = {t["name"]: len(t["partitions"]) for t in described}
            if counts == {t.name: t.partition_count for t in CATALOGUE} or time.monotonic() > deadline:
                return described
            time.sleep(0.5)

    def _wait_in_sync(self, deadline: float) -> None:
        """Up means writable with acks=all: every catalogue partition known with all its copies in sync."""
        from kafka.errors import KafkaError

        lagging = ["(not described yet)"]
        while time.monotonic() < deadline:
            try:
                described = {t["name"]: t for t in self._described(timeout=0)}
                lagging = [t.name for t in CATALOGUE if t.name not in described
                           or len(described[t.name]["partitions"]) != t.partition_count]
                lagging += [f"{t['name']}/{p['partition_index']}" for t in described.values()
                            for p in t["partitions"] if len(p["isr_nodes"]) < len(p["replica_nodes"])]
            except KafkaError:
                pass
            if not lagging:
                return
            time.sleep(0.5)
        raise StackError(f"partitions not in sync on every replica: {', '.join(lagging[:5])}; see the brokers' "
                         f"logs in {self.settings.data_dir}/kafka-*/broker.log")

    def _wait_registered(self, deadline: float) -> None:
        """Topics get their replicas only from brokers the controller knows: wait until it knows all of them."""
        from kafka.admin import KafkaAdminClient
        from kafka.errors import KafkaError

        want, seen = len(self.brokers), 0
        while time.monotonic() < deadline:
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.settings.bootstrap_servers, client_id="cityops-stack")
                try:
                    seen = len(admin.describe_cluster()["brokers"])
                finally:
                    admin.close()
            except KafkaError:
                seen = 0
            if seen == want:
                return
            time.sleep(0.5)
        raise StackError(f"only {seen} of {want} brokers joined the cluster; see their logs in "
                         f"{self.settings.data_dir}/kafka-*/broker.log")
