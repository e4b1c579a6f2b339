"""What the handlers share in one worker: the state tables, the source handlers' state, and consuming a topic in
batches whose outputs are sent together."""
from __future__ import annotations

import asyncio
import logging
from functools import lru_cache, partial
from typing import Callable

import faust
from aiokafka.errors import InvalidTopicError, MessageSizeTooLargeError, UnknownTopicOrPartitionError
from faust.types import Message

from cityops.models.deadletters import DeadLetter
from cityops.taxonomy import load_taxonomy
from cityops.topics import CATALOGUE, SOURCE_TOPICS
from streams.aggregates.windows import MinuteCounts
from streams.app import app, raw_topic, settings
from streams.overrides import warn_if_unsent
from streams.sources import Sources, Out, dead_out
from streams.state import TableKV

log = logging.getLogger("cityops.streams")
# What the producer refuses for the message itself: sending it again cannot help.
REFUSED = (MessageSizeTooLargeError, InvalidTopicError, UnknownTopicOrPartitionError, TypeError, ValueError)
Handle = Callable[..., list[Out]]  # (sources, value, key, topic, partition, offset, arrived)


def table(name: str) -> faust.Table:
    return app.Table(name, key_type=bytes, value_type=bytes, partitions=settings.partitions)  # raw bytes


# Every table key belongs to exactly one partition of its source (see streams/state.py).
devices_table = table("sensor-state")
counts_table = table("minute-partials")
case_table = table("case-state")
dedup_table = table("case-dedup")
combined_table = table("minute-counts")

topics: dict[str, faust.TopicT] = {t.name: raw_topic(t.name, t.partition_count) for t in CATALOGUE}
devices_kv, counts_kv = TableKV(devices_table), TableKV(counts_table)
counts = MinuteCounts(counts_kv)


@lru_cache(maxsize=1)
def sources() -> Sources:
    from streams.classify import Classifier
    from streams.placement import default_placer
    from streams.sensors.limits import load_limits

    return Sources(placer=default_placer(), classifier=Classifier.default(), taxonomy=load_taxonomy(),
                  counts=counts, devices=devices_kv, limits=load_limits(), pii_key=settings.pii_key)


def processing_error(m: Message, e: Exception) -> Out:
    """A bug on one message must not stop the worker or lose the message: it becomes a dead letter."""
    return dead_out(DeadLetter.of(m.topic, m.partition, m.offset, "processing", repr(e), m.value, m.key))


def consume(topic: str, handle: Callable[[Message], list[Out]], finish: Callable[[], None] = lambda: None) -> None:
    """Consume a topic in fetched batches (streams/overrides.py BatchConsumer): every message through `handle`, a
    bug on one becoming its dead letter, then `finish()` and the batch's outputs sent together. The batch is
    acked after; its state writes are on the broker before an offset commit passes them (DrainingBuffer)."""
    app.topics.add(topics[topic])  # subscribed through the conductor: assignment, acks, co-partitioned tables

    async def on_batch(messages: list[Message]) -> None:
        handled: list[tuple[Message, list[Out]]] = []
        for m in messages:
            try:
                outs = handle(m)
            except Exception as e:  # noqa: BLE001
                outs = [processing_error(m, e)]
            if outs:   # most sensor readings change nothing: no send, no coroutine
                handled.append((m, outs))
        finish()
        send = app.producer.send
        for m, outs in handled:
            refused = []
            for name, key, value in outs:
                try:
                    sent = await send(name, key, value, None, None, None)
                except Exception as e:  # noqa: BLE001 — Faust wraps the client's error in ProducerSendError
                    if why := await _send_again(name, key, value, e):
                        refused.append(f"{name}: {why}")
                    continue
                sent.add_done_callback(partial(warn_if_unsent, name))
            if refused:   # the message is a dead letter with the reason, and the batch goes on
                log.error("%s/%d/%d: outputs refused: %s", m.topic, m.partition, m.offset, "; ".join(refused))
                await send_all([dead_out(DeadLetter.of(m.topic, m.partition, m.offset, "output_refused",
                                                       "; ".join(refused), m.value, m.key))])

    app.batch_handlers[topic] = on_batch


def source(topic: str, handle: Handle) -> None:
    """A source topic: each message through its handler (a `Sources` method); the batch's minute counts are
    written once."""
    # The source topics' timestamps are the broker's (LogAppendTime): when the event reached the city.
    consume(topic, lambda m: handle(sources(), m.value, m.key, m.topic, m.partition, m.offset, m.timestamp),
            finish=lambda: sources().counts.flush())


async def send_all(outs: list[Out]) -> list[str]:
    """Straight to the Kafka producer (partition by key, as Faust's `Topic.send` does): Faust's own path
    wraps each message in three objects and two callbacks (docs/streams.md). An offset commit still
    waits for these sends (the producer is flushed first). Returns what the producer refused and why (a batch
    makes that message a dead letter); an unavailable broker is waited for: neither stops the worker."""
    refused = []
    send = app.producer.send
    for name, key, value in outs:
        try:
            sent = await send(name, key, value, None, None, None)
        except Exception as e:  # noqa: BLE001 — Faust wraps the client's error in ProducerSendError
            if why := await _send_again(name, key, value, e):
                log.error("a message for %s was refused: %s", name, why)
                refused.append(f"{name}: {why}")
            continue
        sent.add_done_callback(partial(warn_if_unsent, name))
    return refused


async def _send_again(name: str, key: bytes | None, value: bytes, error: Exception) -> str | None:
    """After the producer raised `error`: why it refuses the message itself, or None once it took it. While the
    broker is unavailable it is tried again with backoff (the commit waits behind it: nothing is acked)."""
    delay = 0.5
    while True:
        cause = error.__cause__ or error
        if isinstance(cause, REFUSED) or app.should_stop:
            return f"{type(cause).__name__}: {str(cause)[:300]}"
        log.warning("could not hand a message for %s to the producer (%r); retrying in %.1f s", name, cause, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)
        try:
            sent = await app.producer.send(name, key, value, None, None, None)
        except Exception as e:  # noqa: BLE001
            error = e
            continue
        sent.add_done_callback(partial(warn_if_unsent, name))
        return None


def owned(source_names=tuple(t.name for t in SOURCE_TOPICS)) -> set[str]:
    """`topic/partition` of the source partitions this worker is assigned now."""
    return {f"{tp.topic}/{tp.partition}" for tp in app.consumer.assignment() if tp.topic in source_names}


def owns(topic: str, partition: int) -> bool:
    return any(tp.topic == topic and tp.partition == partition for tp in app.consumer.assignment())
