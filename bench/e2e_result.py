"""The end-to-end benchmark's figures (drains, latency run) and their JSON form."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from bench.targets import TARGET_P99_S, TARGET_RATE


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


def to_json(r: Result) -> str:
    d = asdict(r)
    d["latency"].pop("samples", None)
    d["checks"] = r.checks()
    return json.dumps(d, ensure_ascii=False, indent=2)
