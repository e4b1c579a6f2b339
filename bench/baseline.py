"""The baseline for `cityops bench e2e`: a plain Kafka consumer inserting the same messages straight into
ClickHouse — no validation, no processing, no outputs — batched and committed like the sink.

Runs in a child process of its own (an embedded ClickHouse directory per process), timed from its first
poll that returns data to its last insert."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from kafka import TopicPartition

BATCH = 50_000
TABLE = """CREATE TABLE IF NOT EXISTS baseline_events
(`topic` LowCardinality(String), `partition` UInt16, `offset` UInt64, `value` String)
ENGINE = MergeTree ORDER BY (topic, `partition`, `offset`)"""


def consume(bootstrap: str, dsn: str, start: dict[tuple[str, int], int], end: dict[tuple[str, int], int]) -> dict:
    import clickhouse_connect
    from kafka import KafkaConsumer
    from kafka.structs import OffsetAndMetadata

    ch = clickhouse_connect.get_client(dsn=dsn)
    ch.command(TABLE)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id="bench-baseline", enable_auto_commit=False,
                             max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
    parts = [TopicPartition(t, p) for (t, p), e in end.items() if e > start.get((t, p), 0)]
    consumer.assign(parts)
    for tp in parts:
        consumer.seek(tp, start.get((tp.topic, tp.partition), 0))
    left = {tp: end[(tp.topic, tp.partition)] for tp in parts}
    rows: list[list] = []
    nxt: dict[TopicPartition, int] = {}
    first = cpu = None
    stored = 0

    def flush():
        nonlocal rows, stored
        if rows:
            ch.insert("baseline_events", rows, column_names=["topic", "partition", "offset", "value"])
            consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in nxt.items()})
            stored += len(rows)
            rows = []

    while left:
        polled = consumer.poll(timeout_ms=200, max_records=BATCH)
        if polled and first is None:
            first, cpu = time.time(), time.process_time()   # process time: ClickHouse's threads too
        for tp, records in polled.items():
            for r in records:
                if tp in left and r.offset < left[tp]:
                    rows.append([r.topic, r.partition, r.offset, (r.value or b"").decode("utf-8", "replace")])
                    nxt[tp] = r.offset + 1
            if tp in left and nxt.get(tp, 0) >= left[tp]:
                del left[tp]
        if len(rows) >= BATCH or not left:
            flush()
    done, cpu = time.time(), time.process_time() - cpu if cpu is not None else 0.0
    count = ch.query("SELECT count() FROM baseline_events").result_rows[0][0]
    consumer.close()
    ch.close()
    seconds = max(done - (first or done), 1e-3)
    return {"events": stored, "stored_rows": count, "seconds": seconds, "rate": stored / seconds, "cpu_s": cpu}


def run(bootstrap: str, dsn: str, before: dict[TopicPartition, int], after: dict[TopicPartition, int]) -> dict:
    """The messages between the `before` and `after` end offsets, in a child process."""
    args = {"bootstrap": bootstrap, "dsn": dsn,
            "start": [[tp.topic, tp.partition, o] for tp, o in before.items()],
            "end": [[tp.topic, tp.partition, o] for tp, o in after.items()]}
    done = subprocess.run([sys.executable, "-m", "bench.baseline"], input=json.dumps(args), capture_output=True,
                          text=True, timeout=1800)
    if done.returncode:
        raise RuntimeError(f"baseline failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    a = json.load(sys.stdin)
    print(json.dumps(consume(a["bootstrap"], a["dsn"], {(t, p): o for t, p, o in a["start"]},
                             {(t, p): o for t, p, o in a["end"]})))
