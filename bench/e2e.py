"""`cityops bench e2e`: the whole pipeline (broker → Faust worker(s) → sink → embedded ClickHouse) on a
stack of its own (free ports, temp dir), fed with the simulator's realistic mix.

Method (docs/benchmarks.md says the same for readers):
- Mix: the simulator's of a Beijing evening (19:45), its event times moved to end about now, whatever the
  hour (the mix follows the hour of event time: at night it is almost all sensor readings).
- Warm-up: the whole pipeline runs at the latency run's rate, untimed, in 10 s chunks until the broker's
  JIT compiler threads used under 5 % of a core over one (at most 3 min). A fresh broker spends its first
  minute of load compiling its hot paths (docs/benchmarks.md): a broker running for weeks has done that,
  and the baseline, measured last, always gets a warm broker.
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
- Latency: a paced run at half the 10,000 events/s target (the target: p99 under 2 s at half that rate;
  half the measured throughput would move the test with the machine's load) with occurred_at = the moment
  of sending. A watcher polls the sink group's committed offsets every 50 ms; a row is queryable from the first poll
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
"""
from __future__ import annotations

import os
import platform
import shutil
import socket
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.e2e_result import Result
from bench.latency import latency_run
from bench.load import preload
from bench.pipeline import Pipeline, cpu_tree, end_offsets
from bench.targets import LATENCY_RATE, TARGET_RATE
from bench.throughput import WARM_CHUNK_S, WARM_MAX_S, drain, warm_up
from cityops.topics import SOURCE_TOPICS

SOURCES = [t.name for t in SOURCE_TOPICS]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(quick: bool = False, events: int | None = None, latency_s: float | None = None, seed: int = 7,
        two_workers: bool = True, brokers: int = 1, progress=print) -> Result:
    from bench.baseline import run as baseline
    from cityops.settings import get_settings
    from cityops.stack.cluster import Cluster
    from cityops.stack.kafka import min_insync

    n = events or (6_000 if quick else 100_000)
    latency_s = latency_s or (8.0 if quick else 60.0)
    home = Path(tempfile.mkdtemp(prefix="cityops-bench-e2e-"))
    # Node i's controller listens on the controller port + 2(i − 1) (cityops/stack/cluster.py).
    env = {"CITYOPS_DATA_DIR": str(home / "broker"),
           "CITYOPS_BOOTSTRAP_SERVERS": ",".join(f"127.0.0.1:{free_port()}" for _ in range(brokers)),
           "CITYOPS_KAFKA_CONTROLLER_PORT": str(free_port()), "CITYOPS_WORKER_PORT": str(free_port()),
           "CITYOPS_KAFKA_BROKERS": str(brokers)}
    os.environ.update(env)
    get_settings.cache_clear()
    dsn = f"chdb://{home / 'clickhouse'}"
    penv = {**os.environ, "PYTHONUNBUFFERED": "1", "CITYOPS_CLICKHOUSE_URL": dsn,
            "PYTHONPATH": str(Path(__file__).parents[1])}
    load = os.getloadavg()[0]
    s = get_settings()
    broker = Cluster(s)
    pipe = Pipeline(penv, home, sink_group="bench-sink")
    notes: list[str] = []
    if brokers > 1:
        notes.append(f"{brokers} brokers, every topic replicated {s.replication_factor}× with min.insync.replicas "
                     f"{min_insync(s.replication_factor)} (acks=all); the broker CPU is the first broker's alone")
    try:
        progress(f"starting Kafka ({brokers} broker{'s' * (brokers > 1)})…")
        broker_pid = broker.up()[0]
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
