"""What the agents share in one worker: the state tables, the intake, and sending outputs in batches."""
from __future__ import annotations

from functools import lru_cache

import faust

from cityops.models.deadletters import DeadLetter
from cityops.taxonomy import load_taxonomy
from cityops.topics import CATALOGUE, SOURCE_TOPICS
from streams.aggregates.windows import MinuteCounts
from streams.app import app, raw_topic, settings
from streams.intake import Intake, Out, dead_out
from streams.state import TableKV

# Batches amortise Faust's per-event cost and turn per-event state writes into per-batch ones.
BATCH = 2000
WITHIN = 0.1


def table(name: str) -> faust.Table:
    return app.Table(name, key_type=bytes, value_type=bytes, partitions=settings.partitions)  # raw bytes


# Every table key belongs to exactly one partition of its source (see streams/state.py).
devices_table = table("sensor-state")
counts_table = table("minute-partials")
case_table = table("case-state")
dedup_table = table("case-dedup")
combined_table = table("minute-counts")

topics: dict[str, faust.TopicT] = {t.name: raw_topic(t.name, t.partition_count) for t in CATALOGUE}
counts = MinuteCounts(TableKV(counts_table))


@lru_cache(maxsize=1)
def intake() -> Intake:
    from streams.classify import Classifier
    from streams.placement import default_placer
    from streams.sensors.limits import load_limits

    return Intake(placer=default_placer(), classifier=Classifier.default(), taxonomy=load_taxonomy(),
                  counts=counts, devices=TableKV(devices_table), limits=load_limits(), pii_key=settings.pii_key)


def processing_error(event, e: Exception) -> Out:
    """A bug on one event must not stop the worker or lose the event: it becomes a dead letter."""
    m = event.message
    return dead_out(DeadLetter.of(m.topic, m.partition, m.offset, "processing", repr(e), event.value, event.key))


async def send_all(outs: list[Out]) -> None:
    for name, key, value in outs:
        await topics[name].send(key=key, value=value)


def owned(source_names=tuple(t.name for t in SOURCE_TOPICS)) -> set[str]:
    """`topic/partition` of the source partitions this worker is assigned now."""
    return {f"{tp.topic}/{tp.partition}" for tp in app.consumer.assignment() if tp.topic in source_names}


def owns(topic: str, partition: int) -> bool:
    return any(tp.topic == topic and tp.partition == partition for tp in app.consumer.assignment())
