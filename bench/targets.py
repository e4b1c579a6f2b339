"""What the end-to-end benchmark judges the pipeline against (docs/benchmarks.md states the same)."""
from __future__ import annotations

TARGET_RATE = 10_000          # events/s the pipeline should sustain end to end
TARGET_P99_S = 2.0            # event → queryable at half that rate…
LATENCY_RATE = TARGET_RATE // 2
