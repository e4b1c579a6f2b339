"""The Faust and aiokafka classes the worker overrides, each with what it replaces and why.

- `ConsumerThread._create_worker_consumer`: aiokafka's fetch wait (Faust's 1.5 s) down to 100 ms.
- `BatchConsumer`: Faust's consumer with the topics we consume handed to batch handlers in offset order
  (`_drain_messages`, `perform_seek`, `_seek`, `_new_offset`), and offset commits made by the checkpoint
  (`_commit_offsets`, streams/checkpoint.py). Only the tables' changelogs (recovery) keep Faust's path.
- `DrainingBuffer`: Faust's producer buffer, whose flush returns only once every table write is in the producer.
- `Producer`: Faust's aiokafka producer, keeping every topic it sends to in its client's metadata.
- `App`: a Faust app with those, its batch handlers and its checkpoint.
Figures behind these choices are in docs/benchmarks-streams.md and docs/streams.md.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from contextlib import suppress
from functools import partial
from typing import Awaitable, Callable

import faust
from faust.transport.drivers import aiokafka as kafka_driver
from faust.transport.producer import ProducerBuffer
from faust.types import TP, Message
from faust.utils.functional import consecutive_numbers

from streams.checkpoint import Checkpoint
from streams.inorder import HandledOffsets

BatchHandler = Callable[[list[Message]], Awaitable[None]]


class ConsumerThread(kafka_driver.AIOKafkaConsumerThread):
    # aiokafka sends one fetch per broker at a time; held 1.5 s for idle internal topics, it delayed every hop.
    FETCH_MAX_WAIT_MS = 100

    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.FETCH_MAX_WAIT_MS   # read when the consumer starts its fetcher
        return consumer


class BatchConsumer(kafka_driver.Consumer):
    """Faust's consumer, except that the topics we consume skip its per-message path.

    Faust hands every message to the conductor inside `wait_first` (two tasks and a wait per message),
    then through a channel queue, an Event and the stream iterator: more than validating and routing the
    event costs, and messages queued while a restarted worker seeks its commits can be lost (docs/streams.md).
    Here the messages of a topic from one fetch go to its batch handler as a list, in order, and are acked
    after it returns, so offsets are committed exactly as Faust would. Only the tables' changelogs (state
    recovery) keep Faust's path. A batch cut short by a rebalance is not acked: it is read again, and the
    handlers are idempotent on replay (see docs/streams.md).
    """

    # A partition whose commit has not moved for this long while the broker holds messages past it is read again
    # from its commit.
    STUCK_COMMIT_S = 15.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._commit_seen: dict[TP, tuple[int, float]] = {}   # tp → (committed offset, seen there since)
        self._handled = HandledOffsets()

    async def perform_seek(self) -> None:
        """Faust's seek of every assigned partition to its commit (after each assignment); the batch topics'
        partitions are handled from there on, in order (streams/inorder.py). Nothing is handled meanwhile."""
        self._handled.clear()
        await super().perform_seek()
        tps = [tp for tp in self.assignment() if tp.topic in self.app.batch_handlers]
        if not tps:
            return
        committed = {tp: self._read_offset[tp] or 0 for tp in tps}   # what Faust's seek just set
        starts = await self._on_broker(committed)
        self._handled.start(starts)
        for tp, offset in starts.items():   # what was fetched and refused while this ran is fetched again
            await self.seek(tp, offset)

    async def _seek(self, partition: TP, offset: int) -> None:
        # On the consumer's thread, like Faust's seek_wait: aiokafka's seek deletes the fetched records that
        # thread may be iterating (KeyError, robinhood/aiokafka#19).
        await self._thread.call_thread(self._thread.seek, partition, offset)

    async def _on_broker(self, offsets: dict[TP, int]) -> dict[TP, int]:
        """The offsets, except that one deleted by the retention becomes its partition's first offset (with a
        warning: the messages before it were never handled)."""
        earliest = await self.earliest_offsets(*offsets)
        out = {}
        for tp, offset in offsets.items():
            out[tp] = max(offset, earliest.get(tp) or 0)
            if out[tp] > offset:
                self.log.warning("%s: offsets %d to %d were deleted by the retention before they were handled",
                                 tp, offset, out[tp] - 1)
        return out

    async def _read_from_next_to_handle(self, ahead: dict[TP, int]) -> None:
        """Partitions fetched from past their next offset to handle (`ahead`: tp → the offset fetched) are read
        again from that offset."""
        before = {tp: self._handled.next(tp) for tp in ahead}
        needs = await self._on_broker(before)
        for tp, need in needs.items():
            if self._handled.next(tp) != before[tp] or tp not in self.assignment():
                continue   # sought again meanwhile (a rebalance)
            self.log.info("%s: fetched %d while %d is the next to handle: reading from %d", tp, ahead[tp], need, need)
            self._handled.start({tp: need})
            await self.seek(tp, need)

    async def _reread_past_stuck_commits(self, handlers) -> None:
        """A partition's commit can stay where it is for good while messages past it are on the broker: an
        offset handled but never acked (lost to a rebalance's reset of the acks), the messages after it handled.
        Seeking back to the commit, with the partition marked fetchable again, reads them again; the handlers are
        idempotent on replay, so that is always safe. An idle partition (nothing past its commit) is left alone."""
        now = time.monotonic()
        seen, candidates = self._commit_seen, []
        for tp in list(self.assignment()):
            committed = self._committed_offset[tp]
            if tp.topic not in handlers or committed is None:
                seen.pop(tp, None)
            elif seen.get(tp, (None,))[0] != committed:
                seen[tp] = (committed, now)
            elif now - seen[tp][1] >= self.STUCK_COMMIT_S and self.flow_active and not self.app.in_recovery:
                candidates.append(tp)
        if not candidates:
            return
        ends = await self.highwaters(*candidates)
        for tp in candidates:
            committed, end = self._committed_offset[tp], ends.get(tp)
            if committed is None or end is None or end <= committed:
                seen[tp] = (committed, now)   # idle: look again in STUCK_COMMIT_S
                continue
            fetching = "paused" if tp in self._paused_partitions else (
                "fetched" if tp in self._get_active_partitions() else "not fetched")
            self.log.warning("commit of %s stuck at %d for %.0f s with %s read, %d on the broker, %s: reading again "
                             "from the commit", tp, committed, now - seen.pop(tp)[1], self._read_offset[tp], end,
                             fetching)
            self.resume_partitions({tp})
            await self.seek(tp, committed)

    def _new_offset(self, tp: TP) -> int | None:
        """Faust's, with acked offsets and gaps merged as a set. Faust extends the acked list with its gaps'
        offsets, and an offset both acked and in a gap (a re-read after a seek, or the message whose arrival
        revealed the gap) comes out twice. A duplicate ends a run of consecutive offsets, so the commit would
        move one offset per commit (docs/streams.md)."""
        acked, gap = self._acked[tp], self._gap[tp]
        if not acked:
            return None
        if gap:
            top = max(acked)
            filled = [o for iv in gap.overlap(0, top) for o in range(iv.begin, iv.end)]
            if filled:
                acked.extend(filled)
                gap.chop(0, max(max(filled), top) + 1)
        acked[:] = offsets = sorted(set(acked))
        committed = self._committed_offset[tp]
        # A hole at the head holds the commit, as Faust's `> 1` does: it steps over the one hole a seek leaves
        # when retention deleted the messages at the commit (the gap starts one past the read offset).
        if committed and offsets[0] - committed > 1:
            return None
        run = next(consecutive_numbers(offsets))
        del acked[:len(run)]
        self._acked_index[tp].difference_update(run)
        return run[-1] + 1

    async def _commit_offsets(self, offsets, start_new_transaction: bool = True) -> bool:
        # Faust flushes the producer, then commits; the checkpoint also writes the tables' state first.
        return await self.app.checkpoint.commit(self, offsets)

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher) -> None:  # pragma: no cover  (mirrors Consumer._drain_messages)
        handlers: dict[str, BatchHandler] = self.app.batch_handlers
        callback, getmany = self.callback, self.getmany
        consumer_stopped, fetcher_stopped = self._stopped.is_set, fetcher._stopped.is_set
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        handled = self._handled
        admit = handled.admit
        next_look = time.monotonic() + self.STUCK_COMMIT_S
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                if time.monotonic() >= next_look:
                    next_look = time.monotonic() + self.STUCK_COMMIT_S / 3
                    await self._reread_past_stuck_commits(handlers)
                self.diag.set_flag("FETCHING")
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if self.should_stop:
                    continue
                batches: dict[str, list[Message]] = defaultdict(list)
                ahead: dict[TP, int] = {}
                n = 0
                async for tp, message in ait:
                    offset = message.offset
                    if tp.topic in handlers and not admit(tp, offset):
                        if tp not in ahead and handled.next(tp) is not None:
                            ahead[tp] = offset
                        continue
                    r_offset = read_offset[tp]
                    if r_offset is not None and offset < r_offset:
                        # A re-fetch after a seek back: acked, since a rebalance forgets acks and the commit would
                        # stay behind it; a batch topic's message is handled again too (idempotent on replay).
                        if tp.topic not in handlers:
                            self.ack(message)
                            continue
                    else:
                        if r_offset and offset - r_offset > 1 and acks_enabled_for(message.topic):
                            # Offsets never delivered (Faust's own call puts `offset` itself in the gap too).
                            await self._add_gap(tp, r_offset + 1, offset - 1)
                        read_offset[tp] = offset
                    if tp.topic in handlers:
                        batches[tp.topic].append(message)
                        continue
                    n += 1
                    if n % 100 == 0:
                        await asyncio.sleep(0)
                    if self._commit_every is not None and self._n_acked >= self._commit_every:
                        self._n_acked = 0
                        await self.commit()
                    await self.wait_first(callback(message), self.suspend_flow.wait())
                for topic, messages in batches.items():
                    if not self.flow_active:  # rebalancing: forget the rest, it is fetched again
                        for m in messages:
                            read_offset.pop(TP(m.topic, m.partition), None)
                            handled.unhandle(TP(m.topic, m.partition), m.offset)
                        continue
                    await handlers[topic](messages)
                    for m in messages:
                        self.ack(m)
                if ahead:
                    await self._read_from_next_to_handle(ahead)
                if self._commit_every is not None and self._n_acked >= self._commit_every:
                    self._n_acked = 0
                    await self.commit()
                self.diag.unset_flag("FETCHING")
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag("FETCHING")


class DrainingBuffer(ProducerBuffer):
    """Faust's buffer of messages sent from synchronous code (every table's changelog writes), with a flush
    that returns only once each of them is in the Kafka producer.

    Faust flushes the producer before it commits offsets, but its buffer flush gives up after 0.1 s without
    a send and does not count the message being handed over (a full partition batch makes that wait), so a
    worker killed right after such a commit could have offsets past a state write the changelog never got.
    Our tables' writes come as plain (topic, partition, key, value) through `put_changelog`: Faust's
    `send_soon` builds two message objects and a callback per write that an in-memory store has no use for.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self.handing_over = 0

    def put_changelog(self, topic: str, partition: int, key: bytes, value: bytes | None) -> None:
        self.pending.put_nowait((topic, partition, key, value))

    async def _send_pending(self, fut) -> None:
        self.handing_over += 1
        try:
            if type(fut) is tuple:
                topic, partition, key, value = fut
                sent = await self.app.producer.send(topic, key, value, partition, None, None)
                sent.add_done_callback(partial(warn_if_unsent, topic))
            else:
                await super()._send_pending(fut)
        finally:
            self.handing_over -= 1

    async def flush(self) -> None:
        while self.size or self.handing_over:
            if self.state != "running":
                raise RuntimeError("cannot flush the producer buffer: it is not running")
            self.message_sent.clear()
            with suppress(asyncio.TimeoutError):  # wake now and then to see whether the service stopped
                await asyncio.wait_for(self.message_sent.wait(), timeout=1.0)


def warn_if_unsent(topic: str, fut) -> None:
    """Done-callback of a send that bypasses Faust: as Faust does, say so and go on."""
    if not fut.cancelled() and fut.exception() is not None:
        logging.getLogger("cityops.streams").warning("could not send to %s: %r", topic, fut.exception())


class Producer(kafka_driver.Producer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.buffer = DrainingBuffer(loop=self.loop, beacon=self.beacon)  # replaces Faust's, not yet started
        self.buffer.app = self.app
        self._tracked: set[str] = set()   # topics the current aiokafka client was told of

    async def on_start(self) -> None:
        self._tracked.clear()   # a new client
        await super().on_start()

    def send(self, topic, key, value, partition, timestamp, headers, *, transactional_id=None):
        # Not a coroutine itself: a topic already tracked costs no extra coroutine per message.
        send = super().send(topic, key, value, partition, timestamp, headers, transactional_id=transactional_id)
        return send if topic in self._tracked else self._track(topic, send)

    async def _track(self, topic: str, send: Awaitable):
        """Keep every topic sent to in the client's metadata, then send. aiokafka's client fetches every
        topic's metadata until the first send to a topic missing from it (a changelog created a moment before,
        on a fresh broker), then only the topics it was told of. A batch queued for a topic it was not told of
        then waits for a leader the client no longer learns: its sender asks for metadata in a busy loop until
        the request timeout (20 min), and the commit waits behind it (tests/test_worker_producer.py)."""
        self._tracked.add(topic)
        await self._ensure_producer().client.add_topic(topic)
        return await send


class BatchTransport(kafka_driver.Transport):
    Consumer = BatchConsumer
    Producer = Producer


class App(faust.App):
    """A Faust app whose topics are consumed in batches (`batch_handlers`, see BatchConsumer) and whose offset
    commits follow its checkpoint (streams/checkpoint.py)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batch_handlers: dict[str, BatchHandler] = {}
        self.checkpoint = Checkpoint(self)

    def _new_transport(self):
        return BatchTransport(self.conf.broker_consumer, self)
