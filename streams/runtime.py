"""What the agents share in one worker: the state tables, the intake, and sending outputs in batches."""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import faust
from faust.types import Message

from cityops.models.deadletters import DeadLetter
from cityops.taxonomy import load_taxonomy
from cityops.topics import CATALOGUE, SOURCE_TOPICS
from streams.aggregates.windows import MinuteCounts
from streams.app import app, raw_topic, settings
from streams.intake import Intake, Out, dead_out
from streams.state import TableKV

Handle = Callable[[bytes, bytes | None, str, int, int], list[Out]]  # (value, key, topic, partition, offset)


def table(name: str) -> faust.Table:
    return app.Table(name, key_type=bytes, value_type=bytes, partitions=settings.partitions)  # raw bytes


# Every table key belongs to exactly one partition of its source (see streams/state.py).
devices_table = table("sensor-state")
counts_table = table("minute-partials")
case_table = table("case-state")
dedup_table = table("case-dedup")
combined_table = table("minute-counts")

topics: dict[str, faust.TopicT] = {t.name: raw_topic(t.name, t.partition_count) for t in CATALOGUE}
source_kvs = devices_kv, counts_kv = TableKV(devices_table, track=True), TableKV(counts_table, track=True)
counts = MinuteCounts(counts_kv)


@lru_cache(maxsize=1)
def intake() -> Intake:
    from streams.classify import Classifier
    from streams.placement import default_placer
    from streams.sensors.limits import load_limits

    return Intake(placer=default_placer(), classifier=Classifier.default(), taxonomy=load_taxonomy(),
                  counts=counts, devices=devices_kv, limits=load_limits(), pii_key=settings.pii_key)


def processing_error(event, e: Exception) -> Out:
    """A bug on one event (a Faust event or a raw message) must not stop the worker or lose the event: it
    becomes a dead letter."""
    m = getattr(event, "message", event)
    return dead_out(DeadLetter.of(m.topic, m.partition, m.offset, "processing", repr(e), m.value, m.key))


def source(topic: str, handle: Callable[[Intake], Handle]) -> None:
    """Consume a source topic in fetched batches (streams/app.py BatchConsumer): every message goes through
    `handle(intake())`, then the batch's minute counts are written once, its outputs sent, and the batch is
    acked only once its state writes are on the broker (streams/state.py)."""
    app.topics.add(topics[topic])  # subscribed through the conductor: assignment, acks, co-partitioned tables

    async def on_batch(messages: list[Message]) -> None:
        run = intake()
        fn = handle(run)
        outs: list[Out] = []
        for m in messages:
            try:
                outs += fn(m.value, m.key, m.topic, m.partition, m.offset)
            except Exception as e:  # noqa: BLE001
                outs.append(processing_error(m, e))
        run.counts.flush()
        await send_all(outs)
        for kv in source_kvs:
            await kv.delivered()

    app.batch_handlers[topic] = on_batch


async def in_batches(stream, handle: Callable[[object], list[Out]]):
    """An agent's loop over an internal topic: each event through `handle`, a bug on one becoming its dead
    letter, the batch's outputs sent together. Yields the batch sizes (agents are async generators)."""
    async for batch in stream.take_events(500, within=0.05):
        outs: list[Out] = []
        for event in batch:
            try:
                outs += handle(event)
            except Exception as e:  # noqa: BLE001
                outs.append(processing_error(event, e))
        await send_all(outs)
        yield len(batch)


async def send_all(outs: list[Out]) -> None:
    for name, key, value in outs:
        await topics[name].send(key=key, value=value)


def owned(source_names=tuple(t.name for t in SOURCE_TOPICS)) -> set[str]:
    """`topic/partition` of the source partitions this worker is assigned now."""
    return {f"{tp.topic}/{tp.partition}" for tp in app.consumer.assignment() if tp.topic in source_names}


def owns(topic: str, partition: int) -> bool:
    return any(tp.topic == topic and tp.partition == partition for tp in app.consumer.assignment())
