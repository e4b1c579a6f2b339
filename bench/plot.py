"""docs/benchmarks.png for `cityops bench e2e`: throughput against the baseline and target, and
event → queryable latency percentiles against the 2 s target."""
from __future__ import annotations

from pathlib import Path

from bench.e2e_result import Result
from bench.targets import TARGET_P99_S, TARGET_RATE


def plot(r: Result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    bars = {"pipeline, 1 worker": r.one_worker.rate}
    if r.two_workers:
        bars["pipeline, 2 workers"] = r.two_workers.rate
    bars["baseline (no processing)"] = r.baseline["rate"]
    a.bar(list(bars), list(bars.values()), color=["#3b7dd8", "#6aa3ea", "#999999"][: len(bars)])
    a.axhline(TARGET_RATE, color="red", ls="--", lw=1, label=f"target {TARGET_RATE:,}/s")
    for i, v in enumerate(bars.values()):
        a.text(i, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=9)
    a.set_ylabel("events/s (sustained)")
    a.set_title("Throughput, end to end")
    a.legend(fontsize=8)
    a.tick_params(axis="x", labelsize=8)

    lat = r.latency
    series = {"event → raw row": lat.raw_ms, "event → case row": lat.case_ms}
    if lat.alert_ms:
        series["event → alert delivered"] = lat.alert_ms
    qs = ["p50", "p95", "p99"]
    width = 0.8 / max(len(series), 1)
    for i, (name, pct) in enumerate(series.items()):
        xs = [j + i * width for j in range(len(qs))]
        a_vals = [pct.get(q, 0) / 1000 for q in qs]
        b.bar(xs, a_vals, width=width, label=name)
    b.axhline(TARGET_P99_S, color="red", ls="--", lw=1, label=f"p99 target {TARGET_P99_S:.0f} s")
    b.set_xticks([j + width * (len(series) - 1) / 2 for j in range(len(qs))], qs)
    b.set_ylabel("seconds")
    b.set_title(f"Latency at {lat.rate_sent:,.0f} events/s (half the measured throughput)")
    b.legend(fontsize=8)
    fig.suptitle(f"cityops end to end — {r.when}, {r.machine}, load {r.load_before:.1f}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
