"""Streams throughput: pre-load N simulator events onto the source topics, then time one worker (or several)
draining them (start → committed offsets reach the end of every source partition).

The rate is taken from the first commit that moves to the last one, so Faust's start-up and group join
(a few seconds, not throughput) stay out of it; the wall time including start-up is reported too. The
workers' CPU time per event over the same span is reported beside it: on a shared host the rate follows the
load, the CPU cost much less.
"""
from __future__ import annotations

import os
import platform
import socket
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from bench.pipeline import cpu_tree, simulate
from cityops.stack.process import Managed
from cityops.topics import SOURCE_TOPICS

GROUP = "cityops-streams"
RATE = 10_000


def preload(bootstrap: str, n: int, seed: int = 7) -> Counter:
    """N events of the simulator's realistic mix (a Beijing evening's), ending about now."""
    # Event time advances as it would in a city producing RATE events/s (the rate the worker must sustain):
    # the windows, incidents and duplicates per event are those of a live stream at that rate.
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=50, batch_size=512 * 1024,
                             compression_type=None)
    counts: Counter = Counter()
    for topic, ev in simulate(n, seed, RATE, datetime.now(timezone.utc)):
        producer.send(topic.name, key=topic.key_of(ev), value=ev.to_bytes())
        counts[topic.name] += 1
    producer.flush()
    producer.close()
    return counts


def _progress(admin: KafkaAdminClient, ends: dict[TopicPartition, int]) -> int:
    try:
        committed = admin.list_group_offsets(GROUP).get(GROUP, {})
    except KafkaError:  # the group coordinator is still starting
        return 0
    return sum(min(committed[tp].offset, end) for tp, end in ends.items()
               if tp in committed and committed[tp].offset >= 0)


def drain(bootstrap: str, env: dict[str, str], home: Path, workers: int = 1, timeout: float = 900.0) -> dict:
    probe = KafkaConsumer(bootstrap_servers=bootstrap)
    parts = [TopicPartition(t.name, p) for t in SOURCE_TOPICS for p in probe.partitions_for_topic(t.name)]
    ends = probe.end_offsets(parts)
    probe.close()
    total = sum(ends.values())
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    procs = [Managed(f"bench-worker-{i}", home / "run") for i in range(workers)]
    t0 = time.monotonic()
    for i, w in enumerate(procs):
        w.start([sys.executable, "-m", "cityops", "worker"], home / f"worker-{i}.log", env=env)

    def cpu() -> float:
        return sum(cpu_tree({w.name: w.pid() for w in procs}).values())

    first = None
    try:
        while time.monotonic() - t0 < timeout:
            done = _progress(admin, ends)
            now = time.monotonic()
            if done and first is None:
                first = (now, done, cpu())
            if done >= total:
                cpu_end, load = cpu(), os.getloadavg()
                break
            if any(w.pid() is None for w in procs):
                raise RuntimeError(f"a worker died: see {home}/worker-*.log")
            time.sleep(0.2)
        else:
            raise TimeoutError(f"the workers did not drain {total} events in {timeout:.0f} s")
    finally:
        for w in procs:
            w.stop()
        admin.close()
    t1, d1, c1 = first
    return {"events": total, "wall_s": now - t0, "rate": (total - d1) / max(now - t1, 1e-9),
            "measured_events": total - d1, "measured_s": now - t1, "load": load,
            "cpu_us": (cpu_end - c1) / max(total - d1, 1) * 1e6}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(n: int, workers: int = 1) -> str:
    """A fresh broker of its own (temp dir, free ports): preload, drain with `workers` workers, stop the broker."""
    from cityops.settings import get_settings
    from cityops.stack.kafka import Broker

    home = Path(tempfile.mkdtemp(prefix="cityops-bench-streams-"))
    env = {"CITYOPS_DATA_DIR": str(home), "CITYOPS_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
           "CITYOPS_KAFKA_CONTROLLER_PORT": str(free_port()), "CITYOPS_WORKER_PORT": str(free_port())}
    os.environ.update(env)
    get_settings.cache_clear()
    broker = Broker(get_settings())
    broker.up()
    try:
        mix = preload(env["CITYOPS_BOOTSTRAP_SERVERS"], n)
        r = drain(env["CITYOPS_BOOTSTRAP_SERVERS"], {**os.environ, "PYTHONUNBUFFERED": "1"}, home, workers)
    finally:
        broker.down()
    load = " / ".join(f"{x:.1f}" for x in r["load"])
    share = ", ".join(f"{k} {v / mix.total():.0%}" for k, v in mix.most_common())
    return (f"\n## Streams worker drain, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n\n"
            f"- machine: {platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}\n"
            f"- input: {r['events']:,} simulator events pre-loaded ({share}), "
            f"{len(SOURCE_TOPICS)} source topics × {env.get('CITYOPS_PARTITIONS', '4')} partitions\n"
            f"- {workers} worker{'s' if workers > 1 else ''}: **{r['rate']:,.0f} events/s** sustained ({r['measured_events']:,} events in "
            f"{r['measured_s']:.1f} s from its first commit to the last); {r['wall_s']:.1f} s wall including "
            f"start-up and group join; worker CPU {r['cpu_us']:.0f} µs per event "
            f"(≈ {1e6 / r['cpu_us']:,.0f} events per CPU-second); load average (1/5/15 min) at the end {load}\n")


def append(path: Path, md: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("# Streams benchmarks\n\nMeasured with `cityops bench streams` (see docs/streams.md).\n")
    with path.open("a") as f:
        f.write(md)
