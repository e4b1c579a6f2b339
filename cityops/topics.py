"""The topic catalogue: every Kafka topic declared once, with its partitions, key and value model.

Producers, streams, sinks, the stack (topic creation) and the tests all read this list.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from pydantic import BaseModel

from cityops.models import AppReport, CaseEvent, CaseUpdate, SensorEvent, TicketEvent
from cityops.models.cases import CaseCandidate, CaseCommand, DeviceCheck
from cityops.models.aggregates import MinuteCount, MinutePartial
from cityops.models.alerts import Alert, Delivery
from cityops.models.deadletters import DeadLetter
from cityops.models.incidents import Incident
from cityops.settings import get_settings

DAY_MS = 86_400_000
# Size limits, from the outside in. Every topic is created with Kafka's default `max.message.bytes`, set
# explicitly so a broker default cannot move it; no producer of ours sends a record over MAX_RECORD_BYTES (room
# left for the batch header); a source message over MAX_MESSAGE_BYTES is bad input: our producers refuse it, the
# streams dead-letter it as `oversize` with a bounded excerpt, the sink skips it.
TOPIC_MAX_BYTES = 1_048_588
MAX_RECORD_BYTES = 1_000_000
MAX_MESSAGE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Topic:
    name: str
    value: type[BaseModel]
    key_field: str | None
    description: str
    partitions: int = 0          # 0: the stream-wide count from settings (Faust co-partitioning)
    keep_ms: int = 7 * DAY_MS
    # Raw input as citizens and devices sent it, personal data in clear: kept only for the source retention.
    source: bool = False

    @property
    def partition_count(self) -> int:
        return self.partitions or get_settings().partitions

    @property
    def retention_ms(self) -> int:
        return get_settings().source_retention_hours * 3_600_000 if self.source else self.keep_ms

    @property
    def max_message_bytes(self) -> int:
        """The largest value a producer of ours may send to this topic."""
        return MAX_MESSAGE_BYTES if self.source else MAX_RECORD_BYTES

    def key_of(self, value: BaseModel) -> bytes | None:
        return str(getattr(value, self.key_field)).encode() if self.key_field else None


HOTLINE_TICKETS = Topic("hotline.tickets", TicketEvent, "ticket_id", "12345 hotline work-order lifecycle events",
                        source=True)
SENSOR_EVENTS = Topic("sensor.events", SensorEvent, "device_id", "IoT sensor readings and device alerts", source=True)
APP_REPORTS = Topic("app.reports", AppReport, "report_id", "citizen app reports (随手拍) and Open311 requests",
                    source=True)
CASE_EVENTS = Topic("case.events", CaseEvent, "case_id", "status events of any case from the case-handling "
                    "systems: dispatch, accept, resolve, verify, return visit, close, reopen", source=True)
CASES = Topic("cases", CaseUpdate, "case_id", "case state after each event: classified, placed, dispatched")
INCIDENTS = Topic("incidents", Incident, "incident_id", "sensor incidents opened and closed")
AGGREGATES = Topic("aggregates", MinuteCount, None, "per-minute event-time counts by district/street/source/label")
ALERTS = Topic("alerts", Alert, "department", "alerts for departments, deduplicated, with cooldown")
DELIVERIES = Topic("deliveries", Delivery, "alert_id", "every pager delivery attempt", partitions=1)
DEADLETTERS = Topic("deadletters", DeadLetter, None, "rejected input: reason, offset and a masked excerpt",
                    partitions=1, keep_ms=30 * DAY_MS)
# Internal re-keying topics of the streams (stream-wide partitions: each feeds a co-partitioned table).
CASE_CANDIDATES = Topic("streams.case-candidates", CaseCandidate, "dedup_key",
                        "new cases by district + label, for duplicate and hot-spot checks", keep_ms=DAY_MS)
CASE_COMMANDS = Topic("streams.case-commands", CaseCommand, "case_id",
                      "open / add reporter / lifecycle event, by case id, for the case-state table",
                      keep_ms=DAY_MS)
DEVICE_CHECKS = Topic("streams.device-checks", DeviceCheck, "device_id",
                      "resolved device cases, by device id, for the device's readings to verify", keep_ms=7 * DAY_MS)
MINUTE_PARTIALS = Topic("streams.minute-partials", MinutePartial, None,
                        "per-source-partition minute counts by minute + district, for the combiner",
                        keep_ms=DAY_MS)

CATALOGUE: tuple[Topic, ...] = (HOTLINE_TICKETS, SENSOR_EVENTS, APP_REPORTS, CASE_EVENTS, CASES, INCIDENTS, AGGREGATES,
                                 ALERTS, DELIVERIES, DEADLETTERS, CASE_CANDIDATES, CASE_COMMANDS, DEVICE_CHECKS,
                                 MINUTE_PARTIALS)
# What the sink stores: everything the streams emit.
OUTPUT_TOPICS = (CASES, INCIDENTS, AGGREGATES, ALERTS, DELIVERIES, DEADLETTERS)
SOURCE_TOPICS = (HOTLINE_TICKETS, SENSOR_EVENTS, APP_REPORTS, CASE_EVENTS)
INTERNAL_TOPICS = (CASE_CANDIDATES, CASE_COMMANDS, DEVICE_CHECKS, MINUTE_PARTIALS)


def by_name(name: str) -> Topic:
    for t in CATALOGUE:
        if t.name == name:
            return t
    raise KeyError(f"no topic {name!r} in the catalogue: {', '.join(t.name for t in CATALOGUE)}")


def wait_for_partitions(consumer, names: list[str], stop, log) -> set | None:
    """Every partition of `names` once the broker's metadata has them all (None if `stop` is set first).

    The sink and the pager take their partitions with `consumer.assign()` rather than a group subscription:
    each is one process, and kafka-python 3.0's group join can stall a fresh member in `poll` or hand it no
    partitions, with no rebalance to come. Their group id still keeps the committed offsets (the lag)."""
    from kafka import TopicPartition
    from kafka.errors import KafkaConnectionError

    waited = 0.0
    while not stop.is_set():
        try:
            known, why = {n: consumer.partitions_for_topic(n) for n in names}, "create them: `cityops stack topics`"
        except KafkaConnectionError:   # the metadata went to a broker of the cluster that is down: ask again
            known, why = dict.fromkeys(names), "a broker did not answer: asking again"
        missing = [n for n, parts in known.items() if not parts]
        if not missing:
            return {TopicPartition(n, p) for n, parts in known.items() for p in parts}
        if waited % 10 == 0:
            log.warning("waiting for topics %s (%s)", ", ".join(missing), why)
        time.sleep(0.5)
        waited += 0.5
    return None
