"""Load for the end-to-end benchmark: a backlog pre-loaded on the source topics, or events paced at a rate."""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone

from kafka import KafkaProducer

from bench.pipeline import simulate
from bench.targets import TARGET_RATE


def _producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024,
                         max_request_size=2 * 1024 * 1024)


def preload(bootstrap: str, n: int, seed: int, end: datetime) -> Counter:
    producer = _producer(bootstrap)
    mix: Counter = Counter()
    for topic, ev in simulate(n, seed, TARGET_RATE, end):
        producer.send(topic.name, key=topic.key_of(ev), value=ev.to_bytes())
        mix[topic.name] += 1
    producer.flush()
    producer.close()
    return mix


_STAMP = "1999-09-09T09:09:09.999+00:00"   # stands in for the sending moment, the same length as it


def paced(bootstrap: str, rate: float, seconds: float, seed: int, end: datetime | None = None,
          meter: Callable[[], dict[str, float]] | None = None) -> tuple[int, float, dict[str, float]]:
    """Send at `rate` for `seconds`, stamping occurred_at/received_at with the sending moment; with `end`,
    the events keep the simulator's times, ending at `end`. The generator shares the CPU the pipeline is
    measured on, where a city's producers would not: messages are serialised up front and sent through
    librdkafka, a fraction of kafka-python's CPU per message (docs/benchmarks-producers.md). Its
    `murmur2_random` partitioner is the producers' (kafka-python's and Java's default). Returns the events
    sent, the rate achieved and the cores used while sending: "bench" (this process) and those of `meter`'s
    CPU seconds by name."""
    import orjson
    from confluent_kafka import Producer

    events = []
    for t, ev in simulate(int(rate * seconds), seed, rate, end or datetime.now(timezone.utc)):
        body = ev.model_dump(mode="json", exclude_none=True)
        if end is None:
            body["occurred_at"] = body["received_at"] = _STAMP
        events.append((t.name, t.key_of(ev), orjson.dumps(body)))
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20,
                         "partitioner": "murmur2_random", "enable.idempotence": False,
                         "queue.buffering.max.messages": 1_000_000})
    mark = _STAMP.encode()
    before = meter() if meter else {}
    t0, cpu = time.perf_counter(), time.process_time()
    for i, (topic, key, raw) in enumerate(events):
        ahead = i / rate - (time.perf_counter() - t0)
        if ahead > 0.002:
            time.sleep(ahead)
            producer.poll(0)   # serves librdkafka's delivery reports, which otherwise pile up
        if end is None:
            raw = raw.replace(mark, datetime.now(timezone.utc).isoformat(timespec="milliseconds").encode())
        producer.produce(topic, value=raw, key=key)
    if left := producer.flush(60):
        raise RuntimeError(f"paced load: {left} messages not delivered to the broker in 60 s")
    elapsed = time.perf_counter() - t0
    cores = {"bench": (time.process_time() - cpu) / elapsed}
    if meter:
        cores.update({k: (v - before.get(k, v)) / elapsed for k, v in meter().items()})
    return len(events), len(events) / elapsed, cores
