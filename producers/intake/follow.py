"""The intake follows the `cases` topic: every partition, each version into the case book (newer versions only),
so that a request's GET tells its reporter where the case is and a department may report only on its own cases.

The partitions are taken with `assign` (cityops.topics.wait_for_partitions) and the offsets live in the case
book, written with the states they produced: no consumer group, so several intakes each follow the whole topic.
A first start reads the topic from its beginning (its retention: 7 days of cases)."""
from __future__ import annotations

import logging
import threading
import time

from pydantic import ValidationError

from cityops.admit import describe
from cityops.models import CaseUpdate
from cityops.topics import CASES, wait_for_partitions
from producers.intake.casebook import CaseBook

log = logging.getLogger("cityops.intake")
LOOK_FOR_PARTITIONS_S = 60.0
MAX_BACKOFF_S = 30.0


class CaseFollower:
    def __init__(self, bootstrap: str, book: CaseBook, stop: threading.Event):
        self.bootstrap, self.book, self.stop = bootstrap, book, stop
        self._backoff = 1.0

    def run(self) -> None:
        """Follow until stopped; a failure (Kafka away, the book's disk) is retried, 1 s doubling to 30 s."""
        while not self.stop.is_set():
            try:
                self._follow()
            except Exception as e:  # noqa: BLE001 — the next round starts again from the book's offsets
                log.warning("following %s failed (%s: %s); again in %.0f s", CASES.name, type(e).__name__, e,
                            self._backoff)
                if self.stop.wait(self._backoff):
                    return
                self._backoff = min(self._backoff * 2, MAX_BACKOFF_S)

    def _follow(self) -> None:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, client_id="cityops-intake-cases", group_id=None,
                                 enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=1000)
        try:
            held: set = set()
            look_at = 0.0
            while not self.stop.is_set():
                if time.monotonic() >= look_at:   # partitions added to `cases` later are taken at the next look
                    held = self._assign(consumer, held)
                    look_at = time.monotonic() + LOOK_FOR_PARTITIONS_S
                polled = consumer.poll(timeout_ms=500)
                if polled:
                    self._apply(polled)
                self._backoff = 1.0
        finally:
            consumer.close(autocommit=False)

    def _assign(self, consumer, held: set) -> set:
        wanted = wait_for_partitions(consumer, [CASES.name], self.stop, log) or set()
        new = wanted - held
        if new:
            consumer.assign(list(wanted))   # keeps the position of the partitions already held
            stored = self.book.offsets()
            for tp in new:
                if tp.partition in stored:
                    consumer.seek(tp, stored[tp.partition])
                else:
                    consumer.seek_to_beginning(tp)
        return wanted

    def _apply(self, polled: dict) -> None:
        versions, offsets = [], {}
        for tp, records in polled.items():
            for rec in records:
                if (v := _version(rec)) is not None:
                    versions.append(v)
            offsets[tp.partition] = records[-1].offset + 1
        self.book.apply(versions, offsets)


def _version(rec) -> CaseUpdate | None:
    try:
        return CaseUpdate.model_validate_json(rec.value)
    except ValidationError as e:
        log.warning("%s %d/%d: not a CaseUpdate, skipped: %s", CASES.name, rec.partition, rec.offset,
                    describe(e)[:300])
        return None
