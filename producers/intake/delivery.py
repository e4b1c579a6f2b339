"""Accepted reports onto `app.reports`, and departments' events onto `case.events`, exactly once, under the id
their client was given (one Courier per topic).

A POST waits a bounded time for Kafka's acknowledgement and answers 503 with the event's id when it does
not come. The send goes on: kafka-python keeps retrying after a caller stopped waiting, and the intake's
producer never expires a send while the process runs (its idempotence makes those retries land once). So:

- at most one send of an event is in flight here: a retry while it is in flight waits on that send;
- an event is sent again only when no send of it can still be under way in this process (the last one
  failed for good, or an earlier process left the event unsent), and only after reading the topic from the
  event's time on shows that no earlier send landed;
- unsent events are retried by the intake itself every minute, so an event answered 503 reaches the topic
  once Kafka is back even if its client never retries.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import orjson
from pydantic import BaseModel

from cityops.topics import Topic
from producers.errors import SendFailed
from producers.serde import encode

log = logging.getLogger("cityops.intake")
# How far before a report's time its first send may be stamped: clocks of hosts differ, and step.
CLOCK_SLACK_MS = 5 * 60_000
CHECK_TIMEOUT_S = 30.0


class Courier:
    """Sends events of `topic`, each known by its `ident` field (the id its client was given); `mark_sent(id)`
    records an acknowledged one."""

    def __init__(self, sink, topic: Topic, ident: str, mark_sent: Callable[[str], None], bootstrap: str):
        self.sink, self.topic, self.ident, self.mark_sent, self.bootstrap = sink, topic, ident, mark_sent, bootstrap
        self._in_flight: dict[str, Future] = {}
        self._lock = threading.Lock()
        # Sends and topic checks may block (metadata, a broker that does not answer): never on a request thread.
        # Checks have their own thread, so hundreds of them after an outage do not hold up new requests' sends.
        self._sending = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"intake-send-{topic.name}")
        self._checking = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"intake-check-{topic.name}")

    def deliver(self, event: BaseModel, first: bool) -> Future:
        """The send of `event` under way, or a new one; `first`: no send of it was ever started."""
        eid = getattr(event, self.ident)
        with self._lock:
            fut = self._in_flight.get(eid)
            if fut is not None:
                return fut
            fut = self._in_flight[eid] = Future()
        (self._sending if first else self._checking).submit(self._attempt, event, eid, first, fut)
        return fut

    def in_flight(self, eid: str) -> bool:
        with self._lock:
            return eid in self._in_flight

    def redeliver(self, unsent: list[tuple[str, str]]) -> int:
        """Send again the unsent events, (id, JSON as kept), that have no send under way; returns how many."""
        started = 0
        for eid, raw in unsent:
            if self.in_flight(eid):
                continue
            try:
                event = self.topic.value.model_validate_json(raw)
            except ValueError as e:
                log.error("unsent %s event %s cannot be read back, left as it is: %s", self.topic.name, eid, e)
                continue
            self.deliver(event, first=False)
            started += 1
        return started

    def close(self) -> None:
        for pool in (self._sending, self._checking):
            pool.shutdown(wait=False, cancel_futures=True)

    def _attempt(self, event: BaseModel, rid: str, first: bool, fut: Future) -> None:
        try:
            if not first and self._on_topic(event):
                log.info("%s was already on %s: not sent again", rid, self.topic.name)
                self._settle(rid, fut, None)
                return
            sent = self.sink.submit(self.topic, event)
        except Exception as e:  # noqa: BLE001 — nothing of this attempt is in flight: a later one may send
            self._settle(rid, fut, e)
            return
        sent.add_callback(lambda _md: self._settle(rid, fut, None))
        sent.add_errback(lambda e: self._settle(rid, fut, e))

    def _settle(self, rid: str, fut: Future, error: BaseException | None) -> None:
        if error is None:
            try:
                self.mark_sent(rid)
            except Exception:  # noqa: BLE001 — it is on the topic; the next check finds it there
                log.exception("%s is on %s but could not be marked sent", rid, self.topic.name)
        with self._lock:
            self._in_flight.pop(rid, None)
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(SendFailed(f"{self.topic.name}: {type(error).__name__}: {error}"))

    def _on_topic(self, event: BaseModel) -> bool:
        """Whether `event` is on its partition of the topic: read from its time on, to the end."""
        from kafka import KafkaConsumer, TopicPartition

        key, _ = encode(self.topic, event)
        tp = TopicPartition(self.topic.name, self.sink.partition(self.topic.name, key))
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
                    raise SendFailed(f"{self.topic.name} could not be read within {CHECK_TIMEOUT_S:.0f} s")
                for msg in consumer.poll(timeout_ms=1000).get(tp, ()):
                    if needle in msg.value and orjson.loads(msg.value).get("event_id") == event.event_id:
                        return True
            return False
        finally:
            consumer.close()


async def acknowledged(courier: Courier, event: BaseModel, first: bool, timeout: float) -> str | None:
    """None once Kafka acknowledged `event` (within `timeout` s); otherwise why not, for the client's 503."""
    sent = asyncio.wrap_future(courier.deliver(event, first))
    done, _ = await asyncio.wait({sent}, timeout=timeout)
    if done and sent.exception() is None:
        return None
    if not done:   # it may still fail later: retrieve that, or asyncio logs it as never retrieved
        sent.add_done_callback(lambda f: f.cancelled() or f.exception())
    return f"Kafka refused it ({sent.exception()})" if done else f"Kafka did not acknowledge it within {timeout:g} s"
