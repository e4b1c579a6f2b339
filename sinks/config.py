"""What a sink run can be told (`cityops sink` takes its defaults from here; no heavy imports)."""
from __future__ import annotations

from dataclasses import dataclass

from cityops.topics import OUTPUT_TOPICS, SOURCE_TOPICS, Topic

TOPICS: tuple[Topic, ...] = SOURCE_TOPICS + OUTPUT_TOPICS
# Lanes insert side by side, so what the control room watches (cases, alerts…: a few hundred rows a second)
# does not wait behind the thousands of raw events (docs/warehouse.md).
OPERATIONS: tuple[Topic, ...] = OUTPUT_TOPICS


def lanes_of(topics: tuple[Topic, ...]) -> list[tuple[str, tuple[Topic, ...]]]:
    """("operations", the topics of OPERATIONS), ("raw", the others), a lane with none of `topics` left out."""
    lanes = [("operations", tuple(t for t in topics if t in OPERATIONS)),
             ("raw", tuple(t for t in topics if t not in OPERATIONS))]
    return [(name, held) for name, held in lanes if held]


@dataclass
class SinkConfig:
    batch_rows: int = 50_000      # flush when this many messages are buffered…
    # …or this many bytes of them: the sink's memory is a few batches (one polled, DECODE_AHEAD decoding, one
    # being inserted), so it stays bounded whatever the messages' size (1 MB each on a source topic at worst).
    batch_bytes: int = 32 * 1024 * 1024
    # …or when the oldest has waited this long: the cockpit is this much behind, and merges still keep up
    # (docs/warehouse.md).
    linger_s: float = 0.25
    group_id: str = "cityops-sink"
    topics: tuple[Topic, ...] = TOPICS
    max_backoff_s: float = 30.0
    recent_ids: int = 200_000     # event ids remembered per source topic to drop resent events (sinks/dedup.py)
    process_from_rows: int = 5_000  # batches this large are decoded in child processes (sinks/decode_pool.py)
