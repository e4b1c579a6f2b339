"""Smoke test of `cityops bench e2e --quick`: the benchmark runs the real pipeline on its own stack and
reports every figure (the figures themselves are judged in docs/benchmarks.md, never asserted here)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_bench_e2e_quick_reports_every_figure(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cityops", "bench", "e2e", "--quick", "--one-worker", "--json",
                           "--docs", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    r = json.loads(done.stdout)
    # Events committed before the clock's first commit are not counted.
    assert 0 < r["one_worker"]["events"] <= sum(r["mix"].values()) and r["one_worker"]["rate"] > 0
    assert r["baseline"]["stored_rows"] == r["baseline"]["events"] == sum(r["mix"].values())
    assert r["latency"]["raw_ms"]["n"] > 0 and r["latency"]["raw_ms"]["p50"] > 0
    assert r["latency"]["cores"]["machine"] > 0 and r["latency"]["cores"]["worker"] > 0
    assert {"sink", "broker"} <= set(r["latency"]["cores"])
    assert r["warm_up"]["events"] > 0 and len(r["warm_up"]["jit_cores"]) == 1
    assert "jit_us" in r["one_worker"]   # None in a quick run: its drain is over by the clock's first commit
    assert r["peak_mb"]["worker-1"] > 0 and r["peak_mb"]["sink"] > 0
    assert set(r["checks"]) and all(isinstance(v, bool) for v in r["checks"].values())
    assert (tmp_path / "benchmarks.md").read_text().startswith("# Benchmarks")
    assert (tmp_path / "benchmarks.png").stat().st_size > 0
