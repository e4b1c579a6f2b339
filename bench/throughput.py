"""The end-to-end benchmark's warm-up (untimed) and its timed drains of a pre-loaded backlog by the worker(s)
and the sink."""
from __future__ import annotations

import time
from datetime import datetime, timedelta

from bench.commit_watcher import Watcher
from bench.e2e_result import Drain
from bench.load import paced
from bench.pipeline import WORKER_GROUP, Pipeline, cpu_tree, jit_cpu, peak_rss_mb
from bench.targets import LATENCY_RATE

WARM_CHUNK_S = 10.0           # warm-up: paced chunks of this many seconds…
WARM_MAX_S = 180.0            # …until the broker's JIT compiler used under JIT_SETTLED of a core over one
JIT_SETTLED = 0.05


def warm_up(pipe: Pipeline, broker_pid: int, seed: int, end: datetime, max_s: float,
            chunk_s: float = WARM_CHUNK_S) -> dict:
    """The whole pipeline at the latency run's rate, untimed, in chunks of event time ending at `end`, until
    the broker's JIT compiler used under JIT_SETTLED of a core over a chunk's sending (or `max_s` of it).
    Sustained throughput is a warm broker's; a fresh one compiles through its first minute of load
    (docs/benchmarks.md). The worker and the sink restart for the drains
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
