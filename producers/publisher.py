"""The publisher: a kafka-python producer tuned for throughput, acks=all and idempotence.

`send` is fire-and-count (the simulator, replay); `submit` gives the send's future, which resolves on the
broker's acknowledgement (the intake replies to a citizen only after that).
"""
from __future__ import annotations

import threading
from collections import Counter

from kafka.partitioner.default import murmur2
from pydantic import BaseModel

from cityops.settings import get_settings
from cityops.topics import MAX_RECORD_BYTES, Topic, by_name
from producers.serde import check_size, encode


class Partitioner:
    """kafka-python's default partitioner (murmur2, as Java clients and Faust), cached per key: in pure Python
    it costs more than building the event, and device ids repeat. `partitions_for` is a producer's."""

    def __init__(self, partitions_for):
        self.partitions_for = partitions_for
        self._partitions: dict[tuple[str, bytes], int] = {}
        self._partition_lists: dict[str, list[int]] = {}

    def __call__(self, topic: str, key: bytes | None) -> int | None:
        if key is None:
            return None
        p = self._partitions.get((topic, key))
        if p is None:
            parts = self._partition_lists.get(topic)
            if parts is None:
                parts = self._partition_lists[topic] = sorted(self.partitions_for(topic))
            if len(self._partitions) > 500_000:
                self._partitions.clear()
            p = self._partitions[(topic, key)] = parts[(murmur2(key) & 0x7FFFFFFF) % len(parts)]
        return p


class Publisher:
    def __init__(self, bootstrap_servers: str | None = None, client_id: str = "cityops-producer",
                 linger_ms: int = 50, batch_size: int = 256 * 1024, delivery_timeout_ms: int = 60_000,
                 max_block_ms: int = 60_000):
        from kafka import KafkaProducer

        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers or get_settings().bootstrap_servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,       # broker drops retried duplicates: a send lands once
            linger_ms=linger_ms,           # fill batches: fewer, larger requests
            batch_size=batch_size,
            max_in_flight_requests_per_connection=5,
            retries=2**31 - 1,
            delivery_timeout_ms=delivery_timeout_ms,
            max_block_ms=max_block_ms,     # how long send() may wait for metadata or buffer space
            max_request_size=MAX_RECORD_BYTES,   # within every topic's max.message.bytes (cityops/topics.py)
        )
        self.sent: Counter[str] = Counter()
        self.acked: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.last_error: str = ""
        self._lock = threading.Lock()
        self.partition = Partitioner(self.producer.partitions_for)

    def send(self, topic: Topic, event: BaseModel) -> None:
        key, value = encode(topic, event)   # size checked
        self._produce(topic.name, key, value)

    def send_raw(self, topic: str, key: bytes | None, value: bytes) -> None:
        check_size(by_name(topic), value)
        self._produce(topic, key, value)

    def _produce(self, topic: str, key: bytes | None, value: bytes) -> None:
        fut = self.producer.send(topic, value=value, key=key, partition=self.partition(topic, key))
        self.sent[topic] += 1
        fut.add_callback(self._ok, topic)
        fut.add_errback(self._fail, topic)

    def submit(self, topic: Topic, event: BaseModel):
        """Send; returns kafka-python's future (acks=all). A caller that stops waiting does not stop the send."""
        key, value = encode(topic, event)
        fut = self.producer.send(topic.name, value=value, key=key, partition=self.partition(topic.name, key))
        self.sent[topic.name] += 1
        fut.add_callback(self._ok, topic.name)
        fut.add_errback(self._fail, topic.name)
        return fut

    def _ok(self, _md, topic: str) -> None:
        with self._lock:
            self.acked[topic] += 1

    def _fail(self, exc, topic: str) -> None:
        with self._lock:
            self.failed[topic] += 1
            self.last_error = f"{type(exc).__name__}: {exc}"

    def flush(self, timeout: float | None = 60.0) -> None:
        self.producer.flush(timeout=timeout)

    def close(self) -> None:
        self.producer.flush(timeout=30)
        self.producer.close(timeout=10)
