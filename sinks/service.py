"""The sink: consume the source and output topics, insert in batches, commit offsets after the insert.

Idempotent across crashes (see batch.py): for each partition it takes, the sink seeks to
max(committed offset, last offset stored in the warehouse + 1), so a batch stored but not committed is
not stored again.

The sink is the warehouse's one writer (an embedded warehouse admits one process): it takes every partition
of its topics itself, see `cityops.topics.wait_for_partitions`.

While ClickHouse is unreachable the sink pauses the partitions, retries with backoff and keeps the batch:
nothing is lost and nothing is committed early.

The topics go in two lanes (sinks/config.py `lanes_of`), each its own loop, consumer and warehouse client: the
cockpit's cases and alerts are stored beside the bulk of raw events, not behind it. In each lane every batch
goes decode → insert → commit (sinks/flow.py): the loop polls the next batches while the flow decodes (large
batches in child processes shared by the lanes) and its writer thread inserts, one batch at a time and in
order; the loop commits a batch's offsets once the flow says its inserts finished.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError
from kafka.structs import OffsetAndMetadata

from cityops.settings import Settings
from cityops.topics import Topic, wait_for_partitions
from cityops.warehouse import connect, migrate
from cityops.warehouse.schema import DEAD_LETTERS, tables_of
from sinks.batch import Batch, Insert
from sinks.config import SinkConfig, lanes_of
from sinks.decode import Decoder
from sinks.decode_pool import DecodePool
from sinks.dedup import Dedup
from sinks.flow import Flow
from sinks.reconcile import top_up
from sinks.store import Store

log = logging.getLogger("cityops.sink")

@dataclass
class Stats:
    messages: int = 0
    rows: int = 0
    dead_letters: int = 0
    batches: int = 0
    retries: int = 0
    duplicates: int = 0           # rows stored already (resent events, re-emitted case versions) not stored again
    unexplained: int = 0          # warehouse errors of no known kind (logged with their traceback)
    per_table: dict[str, int] = field(default_factory=dict)

    @classmethod
    def merged(cls, lanes) -> "Stats":
        out = cls()
        for lane in lanes:
            for name, value in vars(lane).items():
                if name == "per_table":
                    for table, n in value.items():
                        out.per_table[table] = out.per_table.get(table, 0) + n
                else:
                    setattr(out, name, getattr(out, name) + value)
        return out


NEW_PARTITIONS_EVERY_S = 60.0  # how often the sink looks for partitions added to its topics
WRITER_CHECK_MS = 20           # poll timeout while a batch past its linger waits for the writer


def resume_offsets(wh, topic: Topic) -> dict[int, int]:
    """Next offset per partition according to what the warehouse holds (authority table of the topic)."""
    authority = tables_of(topic.name)[-1]
    where = f" WHERE kafka_topic = '{topic.name}'" if authority is DEAD_LETTERS else ""
    rows = wh.query(f"SELECT kafka_partition, max(kafka_offset) FROM {authority.name}{where} "
                    "GROUP BY kafka_partition").result_rows
    return {int(p): int(o) + 1 for p, o in rows}


class Sink:
    """One lane of the sink: its topics' consumer, batches, flow (decode → insert) and commits."""

    def __init__(self, settings: Settings, stop: threading.Event, wh, config: SinkConfig, decoding: DecodePool,
                 lane: str):
        self.settings = settings
        self.stop = stop
        self.config = config
        self.lane = lane
        self.wh = wh
        self.store = Store(self.wh, stop, self.config.max_backoff_s, lane)
        self.dedup = Dedup(self.config.recent_ids)
        self.flow = Flow(Decoder(self.config.topics, settings.pii_key), decoding, self.dedup, self.store,
                         self._on_wait, f"sink-{lane}")
        self.stats = Stats()
        self.batch = Batch()
        self.consumer: KafkaConsumer | None = None
        self.pending: set[TopicPartition] = set()
        self.paused = False                        # fetching stopped while the flow is full

    # -- partitions ---------------------------------------------------------------------------------
    def assign(self) -> None:
        """Take every partition of the topics (`wait_for_partitions`); partitions added to a topic later are
        taken at the next look. New partitions are paused until resume() has sought them."""
        wanted = wait_for_partitions(self.consumer, [t.name for t in self.config.topics], self.stop, log)
        new = (wanted or set()) - self.consumer.assignment()
        if new:
            self.consumer.assign(list(wanted))   # keeps the position of the partitions already held
            self.consumer.pause(*new)
            self.pending |= new

    def resume(self) -> None:
        """Seek each new partition to max(committed, stored in the warehouse + 1), then fetch from it; reload
        the recent event ids of its topic from the warehouse (what was stored, whoever stored it)."""
        self.drain()   # the warehouse offsets must include the batches polled so far
        pending, self.pending = self.pending, set()
        self.store.retrying(self.dedup.prime, self.wh, {tp.topic for tp in pending})
        stored: dict[str, dict[int, int]] = {}
        ahead: dict[TopicPartition, OffsetAndMetadata] = {}
        uncommitted: dict[TopicPartition, int] = {}      # first offset not committed, where stored further
        for tp in pending:
            if tp.topic not in stored:
                stored[tp.topic] = self.store.retrying(resume_offsets, self.wh, self._topic(tp.topic))
            committed = self.consumer.committed(tp)
            position = max(committed or 0, stored[tp.topic].get(tp.partition, 0))
            if position:
                self.consumer.seek(tp, position)
            if position > (committed or 0):
                ahead[tp] = OffsetAndMetadata(position, "", -1)
                uncommitted[tp] = committed or 0
            log.info("assigned %s-%d: resuming at %d (committed %s)", tp.topic, tp.partition, position, committed)
        # A batch stored but not committed (crash, broker outage): its rows may lack their rollup rows, and the
        # group's offset lags until a later message on that partition is stored: top up, then commit.
        if ahead:
            self.store.retrying(self._top_up, uncommitted)
            try:
                self.consumer.commit(ahead)
            except CommitFailedError as e:
                log.warning("could not commit the stored offsets on assignment (%s); the warehouse offsets hold", e)
        self.consumer.resume(*pending)

    def _top_up(self, uncommitted: dict[TopicPartition, int]) -> None:
        """The rollups of rows stored but not committed may be short of them (sinks/reconcile.py)."""
        for topic in {tp.topic for tp in uncommitted}:
            rows = " OR ".join(f"(kafka_partition = {tp.partition} AND kafka_offset >= {offset})"
                               for tp, offset in uncommitted.items() if tp.topic == topic)
            for table in tables_of(topic):
                for target, n in top_up(self.wh, table.name, rows).items():
                    log.warning("%s was short after an unfinished batch of %s: %d rows topped up", target, topic, n)

    def _topic(self, name: str) -> Topic:
        return next(t for t in self.config.topics if t.name == name)

    # -- loop ---------------------------------------------------------------------------------------
    def run(self) -> Stats:
        host = self.settings.bootstrap_servers
        self.consumer = KafkaConsumer(
            bootstrap_servers=host, group_id=self.config.group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=min(64 * 1024 * 1024, self.config.batch_bytes), max_poll_records=self.config.batch_rows,
            client_id="cityops-sink",
            # One fetch per broker at a time, without the partitions that have records buffered: with the
            # default 500 ms the broker holds a fetch for idle topics (alerts, incidents…) while the busy ones wait.
            fetch_max_wait_ms=100)
        self.assign()
        try:
            looked = time.monotonic()
            while not self.stop.is_set():
                if time.monotonic() - looked > NEW_PARTITIONS_EVERY_S:
                    self.assign()
                    looked = time.monotonic()
                self._fetching(not self.flow.full())
                started = self.batch.started   # 0 until the batch holds a message
                wait_ms = int((self.config.linger_s - (time.monotonic() - started)) * 1000) if started else 200
                # Past the linger while the writer is busy: look at it again soon, without spinning.
                self._add(self.consumer.poll(timeout_ms=min(max(wait_ms, WRITER_CHECK_MS), 200),
                                             max_records=self.config.batch_rows))
                if self.pending:
                    self.resume()
                if len(self.batch) and not self.batch.started:
                    self.batch.started = time.monotonic()
                # Past the linger, a batch waits while the flow is busy and takes in what arrives meanwhile: one
                # insert per table for all of it, not a second, small one queued behind the writer.
                if not self.flow.full() and (
                        len(self.batch) >= self.config.batch_rows or self.batch.bytes >= self.config.batch_bytes
                        or self.batch.started and time.monotonic() - self.batch.started >= self.config.linger_s
                        and not self.flow.busy()):
                    self.flow.put(self.batch)
                    self.batch = Batch()
                self.flow.advance()
                for job in self.flow.done():
                    self._commit(job)
            if len(self.batch):
                self.flow.put(self.batch)
            self.drain()
        finally:
            self.flow.close()
            self.consumer.close(autocommit=False)
        return self.stats

    def drain(self) -> None:
        """Every batch polled so far stored and committed."""
        for job in self.flow.drain():
            self._commit(job)

    def _fetching(self, on: bool) -> None:
        """Fetch, or stop fetching while the flow is full (the warehouse slow or down): the loop still polls,
        so the consumer stays in its group, and nothing piles up in memory."""
        if on == self.paused:
            if on:
                self.consumer.resume(*(self.consumer.assignment() - self.pending))
            else:
                self.consumer.pause(*self.consumer.assignment())
            self.paused = not on

    def _on_wait(self, waiting: bool) -> None:
        if waiting:
            self.stats.retries += 1

    def _commit(self, job) -> None:
        """A batch stored: commit its offsets."""
        batch = job.batch
        offsets = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in batch.next_offsets().items()}
        try:
            self.consumer.commit(offsets)
        except CommitFailedError as e:
            # Partitions moved during a long outage; their new owner resumes from the warehouse's offsets.
            log.warning("offset commit refused after storing (%s); the warehouse offsets still hold", e)
        for ins, stored in job.stored:
            self._count(ins, stored)
        self.stats.messages += len(batch)
        self.stats.batches += 1
        self.stats.duplicates = self.dedup.dropped
        self.stats.unexplained = self.store.unexplained
        now = time.monotonic()
        # How far the cockpit is behind: the first message's wait from its poll to this commit.
        log.info("%s: stored %d messages in %d inserts: %.0f ms inserting, committed %.0f ms after the first was "
                 "polled", self.lane, len(batch), len(job.inserts), job.seconds * 1000, (now - batch.started) * 1000)

    def _add(self, polled) -> None:
        for records in polled.values():
            for r in records:
                self.batch.add(r.topic, r.partition, r.offset, r.key, r.value)

    def _count(self, ins: Insert, stored: int) -> None:
        self.stats.rows += stored
        self.stats.per_table[ins.table.name] = self.stats.per_table.get(ins.table.name, 0) + stored
        if ins.table is DEAD_LETTERS:
            self.stats.dead_letters += stored


def run(settings: Settings, stop: threading.Event, client=None, config: SinkConfig | None = None) -> Stats:
    """Run the sink until `stop` is set (in-process: the demo runs it in a thread sharing `client`).

    Each lane (`lanes_of`) runs in its own thread with its own warehouse client, so its inserts do not wait
    behind another lane's; the decoding children are shared. A lane that fails stops the others."""
    config = config or SinkConfig()
    wh = client or connect(settings)
    Store(wh, stop, config.max_backoff_s).retrying(migrate, wh)
    decoding = DecodePool(tuple(t.name for t in config.topics), settings.pii_key, config.process_from_rows)
    lanes = lanes_of(config.topics)
    results: dict[str, Stats | BaseException] = {}

    def run_lane(name: str, topics, lane_wh) -> None:
        try:
            results[name] = Sink(settings, stop, lane_wh, replace(config, topics=topics), decoding, name).run()
        except BaseException as e:  # noqa: BLE001 — re-raised below, after the other lanes stopped
            results[name] = e
            stop.set()
        finally:
            if lane_wh is not wh:
                lane_wh.close()

    threads = [threading.Thread(target=run_lane, args=(name, topics, wh if i == 0 else wh.another()),
                                name=f"sink-{name}") for i, (name, topics) in enumerate(lanes)]
    decoding.start()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        decoding.close()
    for name, _ in lanes:
        if isinstance(results.get(name), BaseException):
            raise results[name]
    return Stats.merged(results.values())
