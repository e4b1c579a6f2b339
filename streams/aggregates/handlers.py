"""Emit the source partitions' minute counts as partials (timer), and combine the partials into MinuteCounts
per cell with volume-anomaly alerts."""
from __future__ import annotations

import time

import orjson

from cityops.taxonomy import load_taxonomy
from cityops.topics import AGGREGATES, MINUTE_PARTIALS
from streams.aggregates import combine as combine_logic
from streams.app import app
from streams.sources import alert_out
from streams.runtime import combined_table, consume, counts, owned, owns, send_all
from streams.state import TableKV
from streams.timers import guarded

EMIT_S = 2.0
combined_kv = TableKV(combined_table)


@app.timer(EMIT_S)
@guarded
async def emit_partials():
    """Send changed and closed windows; a closed one is forgotten only after its final count is sent."""
    partials = counts.partials(owned())
    await send_all([(MINUTE_PARTIALS.name, partial["district_code"].encode(), orjson.dumps(partial))
                    for partial, _ in partials])
    for _, closed in partials:
        if closed:
            counts.kv.delete(*closed)


combiner = combine_logic.Combiner(combined_kv)


def combine(kv, value: bytes, partition: int, tax) -> list:
    return [alert_out(a) for a in combiner.apply(orjson.loads(value), partition, tax)]


@app.timer(EMIT_S)
@guarded
async def emit_counts():
    """MinuteCounts of the cells changed since the last tick (one per cell, however many partials came)."""
    await send_all([(AGGREGATES.name, m.district_code.encode(), m.model_dump_json().encode())
                    for m in combiner.changed()])


consume(MINUTE_PARTIALS.name, lambda m: combine(combined_kv, m.value, m.partition, load_taxonomy()))


@app.timer(60.0)
@guarded
async def expire_minutes():
    kv = combined_kv
    now = time.time()
    for key, value in list(kv.items()):
        if (combine_logic.minute_entry(key, value) and int(key.split("|", 1)[0]) < now - combine_logic.KEEP_S
                and owns(MINUTE_PARTIALS.name, value["p"])):
            kv.delete(value["p"], key)
            combiner.forget(key)
