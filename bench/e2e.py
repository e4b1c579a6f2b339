"""`cityops bench e2e`: the whole pipeline (broker → Faust worker(s) → sink → embedded ClickHouse) on a
stack of its own (free ports, temp dir), fed with the simulator's realistic mix.

Method (docs/benchmarks.md says the same for readers):
- Mix: the simulator's of a Beijing evening (19:45), its event times moved to end about now, whatever the
  hour (the mix follows the hour of event time: at night it is almost all sensor readings).
- Warm-up: the whole pipeline runs at the latency run's rate, untimed, in 10 s chunks until the broker's
  JIT compiler threads used under 5 % of a core over one (at most 3 min). A fresh broker spends its first
  minute of load compiling its hot paths (half the broker's CPU in a drain right after start): a broker
  running for weeks has done that, and the baseline, measured last, always got a warm broker.
- Throughput: N events are pre-loaded on the source topics, then the worker(s) and the sink start and
  drain them. The clock runs from the worker group's first offset commit once the group is stable with
  every worker (start-up, group join, hand-over and changelog recovery are not throughput) until the sink's
  last commit, when it has committed the end of every source and output topic — the sink commits only after
  its insert, so that is "everything processed and queryable". Events the workers committed before the
  clock started are not counted.
- CPU: user + system time of the broker, the worker(s) and the sink (with its decoding processes) over
  the clock, per event; the baseline's own process time. The sink stores the raw events several times
  faster than the worker handles them, so much of that work precedes the clock: the sum is a lower bound
  of the pipeline's CPU per event, and the rate it gives an upper bound.
- Latency: a paced run at half the 10,000 events/s target (the issue's "p99 under 2 s at half that rate";
  half the measured throughput moved the test with the machine's load) with occurred_at = the moment of
  sending. A
  watcher polls the sink group's committed offsets every 50 ms; a row is queryable from the first poll
  that sees its partition committed past its offset. Latency = that time − occurred_at, for raw events
  (source → warehouse) and for case updates (source → worker → cases topic → warehouse). Resolution:
  the poll interval (50 ms) plus the commit's own round trip.
- Alerts: `cityops pager` runs with CITYOPS_PAGER_WEBHOOKS sending every department's alerts (JSON) to a
  webhook receiver on 127.0.0.1 that records arrival times; latency = first arrival − the alert's
  occurred_at, matched by alert id.
- Memory: VmHWM (peak resident set) of the worker and sink processes, read from /proc before stopping.
- Baseline: bench/baseline.py, a plain consumer inserting the same pre-loaded messages straight into
  ClickHouse (its own directory), timed the same way (first poll with data → last insert).
- Scaling: the same drain with 2 workers (same broker, new pre-load; tables recover from changelogs first).
- Earlier versions started the clock at the first commit the watcher saw, which for a group with offsets
  from an earlier drain was its first poll: the 2-worker figure included start-up and recovery.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import tempfile
import threading
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kafka import KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from bench.pipeline import (WORKER_GROUP, Pipeline, cpu_tree, end_offsets, jit_cpu, machine_busy, peak_rss_mb, query,
                            simulate)
from cityops.models.alerts import AlertRule
from cityops.topics import CASES, SOURCE_TOPICS

SOURCES = [t.name for t in SOURCE_TOPICS]
TARGET_RATE = 10_000          # events/s the pipeline should sustain end to end
TARGET_P99_S = 2.0            # event → queryable at half that rate…
LATENCY_RATE = TARGET_RATE // 2
WARM_CHUNK_S = 10.0           # warm-up: paced chunks of this many seconds…
WARM_MAX_S = 180.0            # …until the broker's JIT compiler used under JIT_SETTLED of a core over one
JIT_SETTLED = 0.05


@dataclass
class Drain:
    workers: int
    events: int
    seconds: float
    rate: float
    wall_s: float
    cpu_us: dict[str, float] = field(default_factory=dict)   # CPU µs per event, by part of the pipeline
    jit_us: float | None = None       # of the broker's: its JIT compiler threads


@dataclass
class Latency:
    rate_target: float
    rate_sent: float
    events: int
    raw_ms: dict[str, float]          # p50/p95/p99 source event → queryable raw row
    case_ms: dict[str, float]         # … → queryable case update (through the worker)
    case_worker_ms: dict[str, float]  # … → worker's processed_at (the worker's share)
    alert_ms: dict[str, float] | None  # … → alert delivered, for alerts an event raised
    alerts_delivered: int
    samples: dict[str, list[float]] = field(default_factory=dict)
    stalled: str = ""                 # why the pipeline did not catch up after the paced run, if it did not
    anomaly_ms: dict[str, float] | None = None   # volume anomalies: start of the minute counted → delivered
    generator_cores: float | None = None   # the bench's own process while it sent: load generator, watchers
    cores: dict[str, float] = field(default_factory=dict)   # while it sent: worker, sink, broker, whole machine


@dataclass
class Result:
    when: str
    machine: str
    load_before: float
    quick: bool
    mix: dict[str, int]
    one_worker: Drain
    two_workers: Drain | None
    baseline: dict
    latency: Latency
    peak_mb: dict[str, float]
    notes: list[str] = field(default_factory=list)
    warm_up: dict = field(default_factory=dict)   # seconds, events, the JIT compiler's cores per chunk

    def checks(self) -> dict[str, bool]:
        # Each deployment the bench runs is judged on its own: on 2 cores a second worker is a real choice.
        rates = {"1 worker": self.one_worker.rate}
        if self.two_workers:
            rates["2 workers"] = self.two_workers.rate
        return {
            **{f"sustains ≥ {TARGET_RATE:,} events/s end to end with {k}": v >= TARGET_RATE for k, v in rates.items()},
            f"p99 event → queryable case < {TARGET_P99_S:.0f} s at half rate":
                bool(self.latency.case_ms) and self.latency.case_ms.get("p99", 1e12) < TARGET_P99_S * 1000,
            **{f"pipeline with {k} ≥ half the baseline's throughput": v >= 0.5 * self.baseline["rate"]
               for k, v in rates.items()},
        }


# -- commit watcher ---------------------------------------------------------------------------------
class Watcher(threading.Thread):
    """Polls committed offsets of a group; `when(tp, offset)` is the first time it saw offset stored.

    Offsets already committed at the first poll (an earlier run's) are not commits of this run. With
    `members`, it also notes when the group was first seen stable with that many members."""

    def __init__(self, bootstrap: str, group: str, every: float = 0.05, members: int = 0,
                 meter: Callable[[], dict[str, float]] | None = None):
        super().__init__(daemon=True, name=f"watch-{group}")
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        self.group, self.every, self.members, self.meter = group, every, members, meter
        self.seen: dict[TopicPartition, tuple[list[float], list[int]]] = {}
        self.base: dict[TopicPartition, int] | None = None
        self.stable_since: float | None = None
        self.cpu_at_start: dict[str, float] = {}   # `meter()` at the first commit once stable (the clock's start)
        self.halt = threading.Event()

    def run(self) -> None:
        self._unstable_at = time.time()
        while not self.halt.is_set():
            polled_at = time.time()
            try:
                if self.members and self.stable_since is None:
                    self._check_stable(polled_at)
                found = self.admin.list_group_offsets(self.group).get(self.group, {})
            except KafkaError:
                found = None
            now = time.time()
            if found is not None and self.base is None:
                self.base = {tp: om.offset for tp, om in found.items()}
            for tp, om in (found or {}).items():
                ts, offs = self.seen.setdefault(tp, ([], []))
                if om.offset > (offs[-1] if offs else self.base.get(tp, -1)):
                    ts.append(now)
                    offs.append(om.offset)
                    if self.meter and not self.cpu_at_start and self.stable_since is not None:
                        self.cpu_at_start = self.meter()
            self.halt.wait(self.every)
        self.admin.close()

    def _check_stable(self, polled_at: float) -> None:
        """When the group became stable with all its members: after the last poll that saw it otherwise (a
        later rebalance counts as throughput)."""
        group = self.admin.describe_groups([self.group]).get(self.group) or {}
        if group.get("group_state") == "Stable" and len(group.get("members") or ()) == self.members:
            self.stable_since = self._unstable_at
        else:
            self._unstable_at = polled_at

    def first_commit(self, after: float = 0.0) -> float | None:
        return min((t for ts, _ in self.seen.values() for t in ts if t >= after), default=None)

    def committed_at(self, t: float, tp: TopicPartition, default: int) -> int:
        ts, offs = self.seen.get(tp, ([], []))
        i = bisect_right(ts, t)
        return offs[i - 1] if i else default

    def when(self, topic: str, partition: int, offset: int) -> float | None:
        ts, offs = self.seen.get(TopicPartition(topic, partition), ([], []))
        i = bisect_right(offs, offset)      # first commit > offset stores it
        return ts[i] if i < len(ts) else None

    def stop(self) -> None:
        self.halt.set()
        self.join(5)


# -- load -------------------------------------------------------------------------------------------
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
    librdkafka, 3 µs of CPU per message against kafka-python's 21-26 µs (the whole bench process, watchers and
    webhook receiver included, took 0.40 of a core at 5,000 events/s with kafka-python). Its `murmur2_random`
    partitioner is the producers' (kafka-python's and Java's default: the same partition for 8,000 keys
    tried). Returns the events sent, the rate achieved and the cores used while sending: "bench" (this process)
    and those of `meter`'s CPU seconds by name."""
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


# -- runs -------------------------------------------------------------------------------------------
def warm_up(pipe: Pipeline, broker_pid: int, seed: int, end: datetime, max_s: float,
            chunk_s: float = WARM_CHUNK_S) -> dict:
    """The whole pipeline at the latency run's rate, untimed, in chunks of event time ending at `end`, until
    the broker's JIT compiler used under JIT_SETTLED of a core over a chunk's sending (or `max_s` of it).
    Sustained throughput is a warm broker's; a fresh one compiles through its first minute of load (in a
    drain right after its start: half of the broker's CPU). The worker and the sink restart for the drains
    anyway, so only the broker keeps what this warms."""
    chunks = max(1, int(max_s // chunk_s))
    shares: list[float] = []
    sent, t0 = 0, time.monotonic()
    pipe.start_worker("worker-1")
    pipe.start_sink()
    try:
        for i in range(chunks):
            jit = jit_cpu(broker_pid)
            n, achieved, _ = paced(pipe.bootstrap, LATENCY_RATE, chunk_s, seed + i,
                                end=end - timedelta(seconds=(chunks - 1 - i) * chunk_s))
            sent += n
            # Over the sending only (n / achieved); the compiling done meanwhile while events were simulated
            # counts too, which errs towards warming longer.
            shares.append((jit_cpu(broker_pid) - jit) / (n / achieved))
            if shares[-1] < JIT_SETTLED:
                break
        pipe.wait_processed(timeout=600)
    finally:
        pipe.stop()
    return {"seconds": round(time.monotonic() - t0, 1), "events": sent, "chunk_s": chunk_s,
            "jit_cores": [round(x, 3) for x in shares]}


def drain(pipe: Pipeline, workers: int, before: dict, after: dict, timeout: float,
          broker_pid: int | None = None) -> tuple[Drain, dict[str, float]]:
    """Start `workers` workers and the sink on a pre-loaded backlog (source offsets `before` → `after`); time it
    from the first commit once the group is stable with every worker (a worker joining late makes the first
    ones stop, hand partitions over and recover tables: start-up, not throughput); stop them; peak memory and
    the CPU each part spent per event over the clock."""
    t0 = time.monotonic()
    names = [f"worker-{i + 1}" for i in range(workers)]

    def meter() -> dict[str, float]:
        return {**cpu_tree({"broker": broker_pid, **{n: pipe.pid(n) for n in [*names, "sink"]}}),
                "jit": jit_cpu(broker_pid)}

    watcher = Watcher(pipe.bootstrap, WORKER_GROUP, every=0.1, members=workers, meter=meter)
    stored = Watcher(pipe.bootstrap, pipe.sink_group, every=0.1)
    watcher.start()
    stored.start()
    try:
        for name in names:
            pipe.start_worker(name)
        pipe.start_sink()
        done = pipe.wait_processed(timeout=timeout)
        cpu_end = meter()   # after the wait's settling too: an idle pipeline's CPU, a little in excess
        peaks = {name: peak_rss_mb(pipe.pid(name)) or 0.0 for name in [*names, "sink"]}
    finally:
        watcher.stop()
        stored.stop()
    # The end: when the sink had committed the last offset of every partition it stored into (the lag polls
    # see it up to the worker's settling later).
    done = max((ts[-1] for ts, _ in stored.seen.values() if ts), default=done)
    total = sum(after[tp] - before[tp] for tp in after)
    start = watcher.first_commit(after=watcher.stable_since or 0.0)
    events = total - sum(watcher.committed_at(start, tp, before[tp]) - before[tp] for tp in after) if start else 0
    cpu_start = watcher.cpu_at_start
    if events <= 0:   # all committed by the clock's first commit (a --quick run): count it all from the first
        start, events, cpu_start = watcher.first_commit() or done, total, {}
    spent = {k: v - cpu_start.get(k, 0.0) for k, v in cpu_end.items()}
    cpu_us = {"worker": sum(v for k, v in spent.items() if k.startswith("worker")),
              "sink (with its decoding processes)": spent.get("sink", 0.0), "broker": spent.get("broker", 0.0)}
    seconds = max(done - start, 1e-3)
    return Drain(workers, events, seconds, events / seconds, time.monotonic() - t0,
                 {k: v / events * 1e6 for k, v in cpu_us.items()} if cpu_start else {},
                 spent.get("jit", 0.0) / events * 1e6 if cpu_start else None), peaks


def _percentiles(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {}
    xs = sorted(xs)
    pick = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": xs[-1], "n": len(xs)}


def latency_run(pipe: Pipeline, dsn: str, rate: float, seconds: float, seed: int, broker_pid: int | None = None
                ) -> tuple[Latency, dict]:
    """Pipeline already running and caught up: paced load, then read back which rows became queryable when."""
    start_ms = int(time.time() * 1000)
    stalled = ""
    watcher = Watcher(pipe.bootstrap, pipe.sink_group)
    watcher.start()
    pager = Pager.start(pipe)
    try:
        # The machine's cores while sending: a busy machine makes every part wait for a core (latency).
        sent, achieved, cores = paced(pipe.bootstrap, rate, seconds, seed, meter=lambda: {
            **cpu_tree({"worker": pipe.pid("worker-1"), "sink": pipe.pid("sink"), "broker": broker_pid}),
            "machine": machine_busy()})
        generator = cores.pop("bench")
        try:
            pipe.wait_processed(timeout=max(120.0, seconds * 4))
        except TimeoutError as e:   # not keeping up is a result: latencies of what was stored, and this note
            stalled = str(e)
        if pager:
            pager.settle()
    finally:
        watcher.stop()
        if pager:
            pager.stop()
    peaks = {name: peak_rss_mb(pipe.pid(name)) or 0.0 for name in ("worker-1", "sink")}
    pipe.stop("sink")   # the warehouse directory is the sink's: read it once the sink is gone
    since = f"fromUnixTimestamp64Milli({start_ms})"
    rows = query(dsn, {
        "raw": " UNION ALL ".join(
            f"SELECT '{t.name}', kafka_partition, kafka_offset, toUnixTimestamp64Milli(occurred_at) "
            f"FROM {table} WHERE occurred_at >= {since}"
            for t, table in zip(SOURCE_TOPICS, ("raw_tickets", "sensor_events", "raw_app_reports"))),
        # Only the update an event caused: later versions (escalation by the overdue timer, a co-reporter
        # merged in) keep the case's event time and would count hours of case life as latency.
        "cases": "SELECT kafka_partition, kafka_offset, toUnixTimestamp64Milli(occurred_at), "
                 "toUnixTimestamp64Milli(processed_at) FROM case_history FINAL "
                 f"WHERE occurred_at >= {since} AND (case_id, event_id, version) IN "
                 f"(SELECT case_id, event_id, min(version) FROM case_history WHERE occurred_at >= {since} "
                 "GROUP BY case_id, event_id)",
        "alerts": f"SELECT alert_id, toUnixTimestamp64Milli(occurred_at), rule = '{AlertRule.volume_anomaly}' "
                  f"FROM alerts FINAL WHERE raised_at >= {since}",
    })

    def lat(topic, p, o, occurred_ms):
        t = watcher.when(topic, int(p), int(o))
        return None if t is None else t * 1000 - int(occurred_ms)

    raw = [x for r in rows["raw"] if (x := lat(r[0], r[1], r[2], r[3])) is not None]
    cases = [x for r in rows["cases"] if (x := lat(CASES.name, r[0], r[1], r[2])) is not None]
    worker = [int(r[3]) - int(r[2]) for r in rows["cases"]]
    # A volume anomaly's occurred_at is the start of the minute it counts: the count crosses the line somewhere
    # in that minute, so its latency is measured apart from alerts an event raised.
    alerts: list[float] = []
    anomalies: list[float] = []
    if pager:
        occurred = {a: (int(ms), bool(int(anomaly))) for a, ms, anomaly in rows["alerts"]}
        for a, times in pager.receiver.delivered(list(occurred)).items():
            ms, anomaly = occurred[a]
            (anomalies if anomaly else alerts).extend(t * 1000 - ms for t in times[:1])
    return Latency(rate, achieved, sent, _percentiles(raw), _percentiles(cases), _percentiles(worker),
                   _percentiles(alerts) if pager else None, len(alerts) + len(anomalies),
                   samples={"raw": raw, "cases": cases, "alerts": alerts}, stalled=stalled,
                   anomaly_ms=_percentiles(anomalies) if pager else None, generator_cores=generator,
                   cores=cores), peaks


class Pager:
    """`cityops pager` against a local webhook receiver; None when the command does not exist (yet)."""

    def __init__(self, pipe: Pipeline, receiver):
        self.pipe, self.receiver = pipe, receiver

    @classmethod
    def start(cls, pipe: Pipeline):
        from bench.webhook import Receiver, pager_argv, pager_env

        argv = pager_argv()
        if argv is None:
            return None
        receiver = Receiver()
        pipe._start("pager", [*argv, "--group", "bench-pager"], {**pipe.env, **pager_env(receiver, pipe.home / "pager")})
        return cls(pipe, receiver)

    def settle(self, quiet_s: float = 3.0) -> None:
        self.receiver.wait_quiet(quiet_s)

    def stop(self) -> None:
        self.pipe.stop("pager")
        self.receiver.close()



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(quick: bool = False, events: int | None = None, latency_s: float | None = None, seed: int = 7,
        two_workers: bool = True, progress=print) -> Result:
    from bench.baseline import run as baseline
    from cityops.settings import get_settings
    from cityops.stack.kafka import Broker

    n = events or (6_000 if quick else 100_000)
    latency_s = latency_s or (8.0 if quick else 60.0)
    home = Path(tempfile.mkdtemp(prefix="cityops-bench-e2e-"))
    env = {"CITYOPS_DATA_DIR": str(home / "broker"), "CITYOPS_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
           "CITYOPS_KAFKA_CONTROLLER_PORT": str(free_port()), "CITYOPS_WORKER_PORT": str(free_port())}
    os.environ.update(env)
    get_settings.cache_clear()
    dsn = f"chdb://{home / 'clickhouse'}"
    penv = {**os.environ, "PYTHONUNBUFFERED": "1", "CITYOPS_CLICKHOUSE_URL": dsn,
            "PYTHONPATH": str(Path(__file__).parents[1])}
    load = os.getloadavg()[0]
    broker = Broker(get_settings())
    pipe = Pipeline(penv, home, sink_group="bench-sink")
    notes: list[str] = []
    try:
        progress("starting Kafka…")
        broker_pid = broker.up()
        bootstrap = env["CITYOPS_BOOTSTRAP_SERVERS"]
        # Event times of the loads follow each other (a window closed by one is not reopened by the next).
        span, end = timedelta(seconds=n / TARGET_RATE + 120), datetime.now(timezone.utc)
        progress(f"warm-up: the pipeline at {LATENCY_RATE:,} events/s until the broker's JIT compiler settles…")
        max_s, chunk_s = (1.0, 1.0) if quick else (WARM_MAX_S, WARM_CHUNK_S)
        warm = warm_up(pipe, broker_pid, seed + 100, end - 2 * span, max_s, chunk_s)
        progress(f"  {warm['events']:,} events in {warm['seconds']:.0f} s; JIT compiler, cores per chunk: "
                 f"{warm['jit_cores']}")
        progress(f"pre-loading {n:,} simulator events…")
        before = end_offsets(bootstrap, SOURCES)
        mix = preload(bootstrap, n, seed, end - span)
        after = end_offsets(bootstrap, SOURCES)
        progress("draining with 1 worker…")
        one, peaks = drain(pipe, 1, before, after, timeout=600 + n / 100, broker_pid=broker_pid)
        rate = min(LATENCY_RATE, one.rate / 2) if quick else LATENCY_RATE   # a quick run's drain is no measure
        progress(f"  {one.rate:,.0f} events/s; latency run at {rate:,.0f}/s for {latency_s:.0f} s…")
        lat, peaks_lat = latency_run(pipe, dsn, rate, latency_s, seed + 1, broker_pid)
        peaks = {k: max(v, peaks_lat.get(k, 0.0)) for k, v in peaks.items()}
        pipe.stop()
        two = None
        if two_workers:
            progress(f"pre-loading {n:,} more; draining with 2 workers…")
            before2 = end_offsets(bootstrap, SOURCES)
            preload(bootstrap, n, seed + 2, datetime.now(timezone.utc))
            two, peaks2 = drain(pipe, 2, before2, end_offsets(bootstrap, SOURCES), timeout=600 + n / 100,
                                broker_pid=broker_pid)
            peaks.update({f"{k} (2-worker run)": v for k, v in peaks2.items()})
            pipe.stop()
        progress("baseline: plain consumer → ClickHouse on the first pre-load…")
        broker_cpu = cpu_tree({"broker": broker_pid})["broker"]
        base = baseline(bootstrap, f"chdb://{home / 'baseline'}", before, after)
        # The broker's share includes the baseline process's start-up (the broker idles through it).
        base["cpu_us"] = {"consumer + insert": base.pop("cpu_s") / base["events"] * 1e6,
                          "broker": (cpu_tree({"broker": broker_pid})["broker"] - broker_cpu) / base["events"] * 1e6}
    finally:
        pipe.stop()
        broker.down()
    if lat.stalled:
        notes.append(f"the latency run did not catch up: {lat.stalled}; latencies are of the rows stored")
    if lat.alert_ms is None:
        notes.append("alert latency not measured: no `cityops pager` command in this checkout")
    result = Result(datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                    f"{platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}",
                    load, quick, dict(mix), one, two, base, lat, peaks, notes, warm)
    shutil.rmtree(home, ignore_errors=True)
    return result


def from_json(text: str) -> Result:
    """A Result back from `--json` output (to re-render the Markdown and the plot)."""
    d = json.loads(text)
    d.pop("checks", None)
    d["one_worker"] = Drain(**d["one_worker"])
    d["two_workers"] = Drain(**d["two_workers"]) if d["two_workers"] else None
    d["latency"] = Latency(**d["latency"])
    return Result(**d)


def to_json(r: Result) -> str:
    d = asdict(r)
    d["latency"].pop("samples", None)
    d["checks"] = r.checks()
    return json.dumps(d, ensure_ascii=False, indent=2)


def _cpu(us: dict[str, float]) -> str:
    """The parts, their sum, and the rate that sum allows if the whole machine did nothing else."""
    if not us:
        return "not measured"
    total = sum(us.values())
    cores = os.cpu_count() or 1
    return (", ".join(f"{k} {v:,.0f}" for k, v in us.items()) +
            f"; **{total:,.0f} µs** in all, so at most {cores * 1e6 / total:,.0f} events/s on {cores} cores")


def _cores(c: float | None) -> str:
    return "an unmeasured share" if c is None else f"{c:.2f} of a core"


def _busy(c: dict[str, float]) -> str:
    """The cores each part used while the latency run sent, and whether the machine had any to spare."""
    if not c:
        return ""
    cores = os.cpu_count() or 1
    parts = ", ".join(f"{k} {v:.2f}" for k, v in c.items() if k != "machine")
    line = f"; {parts}; the whole machine (other tenants too) {c.get('machine', 0):.2f} of {cores} cores busy"
    if c.get("machine", 0) >= 0.9 * cores:
        line += " (saturated: these latencies include each part's wait for a core)"
    return line


def _jit(d: Drain) -> str:
    return f" (the broker's JIT compiler: {d.jit_us:,.0f} of its µs)" if d.jit_us is not None else ""


def _warm(w: dict) -> str:
    if not w:
        return "not recorded"
    cores = ", ".join(f"{c:.2f}" for c in w["jit_cores"])
    return (f"{w['events']:,} events in {w['seconds']:.0f} s; the broker's JIT compiler used {cores} of a core "
            f"over the successive {w['chunk_s']:.0f} s chunks")


def _ratio2(r: Result) -> str:
    return f", **{r.two_workers.rate / r.baseline['rate']:.2f}** with 2" if r.two_workers else ""


def _pct(p: dict | None) -> str:
    if not p:
        return "—"
    return f"{p['p50'] / 1000:.2f} / {p['p95'] / 1000:.2f} / {p['p99'] / 1000:.2f} s (n = {p['n']:,})"


def markdown(r: Result, command: str) -> str:
    lat = r.latency
    mix = ", ".join(f"{k} {v:,}" for k, v in sorted(r.mix.items(), key=lambda kv: -kv[1]))
    rows = [("pipeline, 1 worker", r.one_worker.events, r.one_worker.seconds, r.one_worker.rate)]
    if r.two_workers:
        rows.append(("pipeline, 2 workers", r.two_workers.events, r.two_workers.seconds, r.two_workers.rate))
    rows.append(("baseline: plain consumer → ClickHouse", r.baseline["events"], r.baseline["seconds"],
                 r.baseline["rate"]))
    table = "\n".join(f"| {n} | {e:,} | {s:.1f} | **{v:,.0f}** |" for n, e, s, v in rows)
    scaling = (f"{r.two_workers.rate / r.one_worker.rate:.2f}× with 2 workers" if r.two_workers else "not run")
    checks = "\n".join(f"- {'met' if ok else '**not met**'}: {name}" for name, ok in r.checks().items())
    peaks = ", ".join(f"{k} {v:,.0f} MiB" for k, v in r.peak_mb.items())
    notes = "".join(f"- {n}\n" for n in r.notes)
    return f"""# Benchmarks: the pipeline end to end

Produced by `{command}` on {r.when}; machine: {r.machine}; 1-min load average before the run
{r.load_before:.1f} (other work shares these 2 cores, so figures move with it). Plot: `docs/benchmarks.png`.
{"**Quick mode** (small N): a smoke run, not a measurement." if r.quick else ""}

## Results

Input: the simulator's realistic mix ({mix}), 4 partitions per topic, one-node Kafka 3.9.1 (KRaft),
embedded ClickHouse (chdb), worker(s) and sink as separate processes, all on this machine.

| run | events | seconds | events/s |
|---|---:|---:|---:|
{table}

- Pipeline / baseline: **{r.one_worker.rate / r.baseline['rate']:.2f}** of the baseline's throughput with 1 worker{_ratio2(r)}.
- Scaling: {scaling} (both processes share the same 2 cores with the broker and the sink).
- Latency at {lat.rate_sent:,.0f} events/s sent for {lat.events / max(lat.rate_sent, 1):.0f} s (half the
  {TARGET_RATE:,} events/s target), p50 / p95 / p99:
  - event → raw row queryable (sink only): {_pct(lat.raw_ms)}
  - event → case update queryable (worker + sink): {_pct(lat.case_ms)}
  - of which event → worker's `processed_at`: {_pct(lat.case_worker_ms)}
  - event → alert delivered to the webhook: {_pct(lat.alert_ms)}
  - volume anomaly: start of the minute counted → delivered: {_pct(lat.anomaly_ms)}
  - the bench's own process (load generator and watchers) used {_cores(lat.generator_cores)} of the same 2 cores meanwhile{_busy(lat.cores)}
- Warm-up before the drains: {_warm(r.warm_up)}.
- Peak memory (VmHWM): {peaks}.
- CPU per event over the clock (user + system µs, all threads and child processes):
  - pipeline, 1 worker: {_cpu(r.one_worker.cpu_us)}{_jit(r.one_worker)}
  - baseline: {_cpu(r.baseline.get("cpu_us") or dict())}

Targets:
{checks}

{notes}
## Method

- Stack: `cityops bench e2e` starts its own broker on free ports in a temp dir, then the worker(s)
  (`cityops worker`) and the sink (`cityops sink`) as subprocesses, exactly as deployed.
- Warm-up: the whole pipeline first runs at 5,000 events/s, untimed, in 10 s chunks until the broker's JIT
  compiler threads used under 5 % of a core over one (at most 3 min). A fresh broker spends its first minute
  of load compiling its hot paths (half the broker's CPU in a drain right after its start), which a broker
  running for weeks has done; the baseline, measured last, always ran on a warm broker. The worker(s) and
  the sink start afresh for each drain.
- Mix: every run drains the simulator's mix of a Beijing evening (19:45), its event times moved to end
  about now (the mix follows the hour of event time: at 01:00 it is ~99 % sensor readings; events hours old
  would also have the overdue timer escalate their cases during the drain).
- Throughput: N simulator events are pre-loaded on the source topics; then the worker(s) and sink start
  and drain them. The clock runs from the worker group's first offset commit after the group is stable
  with every worker (so start-up, group join, partition hand-over and changelog recovery are excluded; the
  events committed before that are not counted) to the sink group's last commit, when it has committed the
  end offset of every source and output topic. The sink commits only after its insert returned, so that
  moment is "everything processed and queryable in ClickHouse".
- CPU per event: user + system time over the clock of the broker, the worker(s) and the sink with its
  decoding processes (from /proc, children included), divided by the events; for the baseline its own
  process time (ClickHouse's threads included) and the broker's over the baseline run. The sum bounds the
  rate: with N cores and nothing else running, N × 10⁶ / (µs per event) events/s. The sink stores the raw
  events several times faster than the worker handles them, so much of that work happens before the clock
  starts: the pipeline's sum is a lower bound of its CPU per event (and the rate it gives an upper bound).
- Latency: with the pipeline running and caught up, events are sent at half the 10,000 events/s target with
  `occurred_at` stamped at the moment of sending (through librdkafka: the load generator shares the 2 cores
  the pipeline is measured on, and kafka-python took 7× its CPU per message). A watcher polls the sink group's committed offsets every
  50 ms; a row is queryable from the first poll that sees its partition committed past the row's offset
  (rows are read back from the warehouse afterwards with their Kafka partition/offset and `occurred_at`).
  For cases only the update an event caused counts (the first version per case and event): later
  versions from the overdue timer or a merged co-reporter keep the case's event time.
  Resolution: the 50 ms poll. Polling the embedded warehouse itself is not possible while the sink runs
  (one process per chdb directory), and the sink's commit-after-insert makes the offset an exact proxy.
  The cores each process used while sending (from /proc) and the whole machine's busy time are reported
  beside it: at this rate the per-batch costs (fetches, commits, one insert per table every linger) weigh
  more than in a drain, and when the machine has no core to spare, each hop also waits for one.
- Alert latency: `cityops pager` runs against a webhook receiver on 127.0.0.1 (bench/webhook.py) that
  records arrival times; latency = arrival − the alert's `occurred_at` (matched by alert id). A volume
  anomaly's `occurred_at` is the start of the minute it counts (the count crosses its line somewhere in that
  minute), so those are reported apart. They fire only once a district's counted minutes span the rule's
  10 minutes of history, which the warm-up's event times and length now give.
- Baseline: bench/baseline.py consumes the same pre-loaded messages with a plain kafka-python consumer and
  inserts the raw value into one MergeTree table in 50,000-row batches, committing after each insert (no
  validation, no processing, no outputs), timed from its first poll with data to its last insert.
- Scaling: a second pre-load drained by 2 workers (same broker; their tables first recover from the
  changelogs, which the clock excludes, as it excludes the hand-over when the second worker joins).
- Memory: VmHWM of each process from /proc before it is stopped.

## Faults and bad input (tests, not benchmarks)

- `tests/test_faults.py`: kill -9 of the worker, kill -9 of the sink mid-batch, broker stop/start, and the
  warehouse directory held by another process for 30 s, each under a steady simulator stream; afterwards
  the warehouse must hold every produced event once (count = distinct event ids) and every case version
  once (FINAL count = distinct (case, version), no event applied twice).
- `tests/test_bad_input.py`: the corpus in `tests/data/bad_input/cases.jsonl` (114 cases over the three
  source topics) through one worker and one sink; each case must end as one dead letter with its reason
  class, or be stored once, verbatim.
"""


def write(r: Result, command: str, md_path: Path, png_path: Path) -> None:
    from bench.plot import plot

    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(markdown(r, command))
    plot(r, png_path)
