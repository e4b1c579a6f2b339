"""docs/benchmarks.md (and its plot) from the end-to-end benchmark's result."""
from __future__ import annotations

import os
from pathlib import Path

from bench.e2e_result import Drain, Result
from bench.plot import plot
from bench.targets import TARGET_RATE


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
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(markdown(r, command))
    plot(r, png_path)
