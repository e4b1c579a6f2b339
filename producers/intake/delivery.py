"""Accepted reports onto `app.reports` exactly once, under the id their client was given.

A POST waits a bounded time for Kafka's acknowledgement and answers 503 with the report's id when it does
not come. The send goes on: kafka-python keeps retrying after a caller stopped waiting, and the intake's
producer never expires a send while the process runs (its idempotence makes those retries land once). So:

- at most one send of a report is in flight here: a retry while it is in flight waits on that send;
- a report is sent again only when no send of it can still be under way in this process (the last one
  failed for good, or an earlier process left the report unsent), and only after reading the topic from the
  report's time on shows that no earlier send landed;
- unsent reports are retried by the intake itself every minute, so a report answered 503 reaches the topic
  once Kafka is back even if its client never retries.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta

import orjson

from cityops.models import AppReport
from cityops.topics import APP_REPORTS
from producers.errors import SendFailed
from producers.intake.store import TZ, RequestStore
from producers.serde import encode

log = logging.getLogger("cityops.intake")
# How far before a report's time its first send may be stamped: clocks of hosts differ, and step.
CLOCK_SLACK_MS = 5 * 60_000
CHECK_TIMEOUT_S = 30.0


class Courier:
    def __init__(self, sink, store: RequestStore, bootstrap: str):
        self.sink, self.store, self.bootstrap = sink, store, bootstrap
        self._in_flight: dict[str, Future] = {}
        self._lock = threading.Lock()
        # Sends and topic checks may block (metadata, a broker that does not answer): never on a request thread.
        # Checks have their own thread, so hundreds of them after an outage do not hold up new requests' sends.
        self._sending = ThreadPoolExecutor(max_workers=2, thread_name_prefix="intake-send")
        self._checking = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake-check")

    def deliver(self, event: AppReport, first: bool) -> Future:
        """The send of `event` under way, or a new one; `first`: no send of it was ever started."""
        with self._lock:
            fut = self._in_flight.get(event.report_id)
            if fut is not None:
                return fut
            fut = self._in_flight[event.report_id] = Future()
        (self._sending if first else self._checking).submit(self._attempt, event, first, fut)
        return fut

    def in_flight(self, report_id: str) -> bool:
        with self._lock:
            return report_id in self._in_flight

    def redeliver(self, min_age: timedelta) -> int:
        """Send again the unsent reports older than `min_age` that have no send under way; returns how many."""
        started = 0
        for row in self.store.pending(before=datetime.now(TZ) - min_age):
            if self.in_flight(row["service_request_id"]):
                continue
            try:
                event = AppReport.model_validate_json(row["event"])
            except ValueError as e:
                log.error("unsent request %s cannot be read back, left as it is: %s", row["service_request_id"], e)
                continue
            self.deliver(event, first=False)
            started += 1
        return started

    def close(self) -> None:
        for pool in (self._sending, self._checking):
            pool.shutdown(wait=False, cancel_futures=True)

    def _attempt(self, event: AppReport, first: bool, fut: Future) -> None:
        rid = event.report_id
        try:
            if not first and self._on_topic(event):
                log.info("request %s was already on %s: not sent again", rid, APP_REPORTS.name)
                self._settle(rid, fut, None)
                return
            sent = self.sink.submit(APP_REPORTS, event)
        except Exception as e:  # noqa: BLE001 — nothing of this attempt is in flight: a later one may send
            self._settle(rid, fut, e)
            return
        sent.add_callback(lambda _md: self._settle(rid, fut, None))
        sent.add_errback(lambda e: self._settle(rid, fut, e))

    def _settle(self, rid: str, fut: Future, error: BaseException | None) -> None:
        if error is None:
            try:
                self.store.mark_sent(rid)
            except Exception:  # noqa: BLE001 — it is on the topic; the next check finds it there
                log.exception("request %s is on %s but could not be marked sent", rid, APP_REPORTS.name)
        with self._lock:
            self._in_flight.pop(rid, None)
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(SendFailed(f"{APP_REPORTS.name}: {type(error).__name__}: {error}"))

    def _on_topic(self, event: AppReport) -> bool:
        """Whether `event` is on its partition of app.reports: read from its time on, to the end."""
        from kafka import KafkaConsumer, TopicPartition

        key, _ = encode(APP_REPORTS, event)
        tp = TopicPartition(APP_REPORTS.name, self.sink.partition(APP_REPORTS.name, key))
        since = int(event.received_at.timestamp() * 1000) - CLOCK_SLACK_MS
        deadline = time.monotonic() + CHECK_TIMEOUT_S
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, client_id="cityops-intake-check",
                                 enable_auto_commit=False, bootstrap_timeout_ms=10_000, request_timeout_ms=10_000)
        try:
            consumer.assign([tp])
            start = consumer.offsets_for_times({tp: since}, timeout_ms=10_000)[tp]
            if start is None:       # nothing was written to the partition since
                return False
            end = consumer.end_offsets([tp], timeout_ms=10_000)[tp]
            consumer.seek(tp, start.offset)
            needle = event.event_id.encode()
            while consumer.position(tp) < end:
                if time.monotonic() > deadline:
                    raise SendFailed(f"{APP_REPORTS.name} could not be read within {CHECK_TIMEOUT_S:.0f} s")
                for msg in consumer.poll(timeout_ms=1000).get(tp, ()):
                    if needle in msg.value and orjson.loads(msg.value).get("event_id") == event.event_id:
                        return True
            return False
        finally:
            consumer.close()
