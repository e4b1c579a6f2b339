"""The pager: consume `alerts` (every partition, offsets committed under its group id), queue each alert for each
of its department's webhooks in the ledger, commit; one lane per webhook delivers its queue, retrying a failing
delivery with exponential backoff for an hour (`delivery.py`, progress kept in the ledger), and records every
attempt.

Once per (alert, target): the ledger (sqlite) marks a pair finished right after the webhook answered; an alert
read again (a replay, a repeat) is not queued again, and a pager killed with deliveries queued resumes them
on its next start. The remaining window (killed after the webhook took the message, before the ledger write)
is milliseconds wide."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import httpx
from pydantic import ValidationError

from cityops.admit import describe
from cityops.models.alerts import Alert, Delivery
from cityops.topics import ALERTS, DELIVERIES, wait_for_partitions
from pager.delivery import Deliverer, Retry
from pager.lanes import Lanes
from pager.ledger import Ledger
from pager.targets import Target

log = logging.getLogger(__name__)
GROUP = "cityops-pager"
FORGET_EVERY_S = 3600.0


class Pager:
    def __init__(self, bootstrap_servers: str, webhooks: dict[str, list[Target]], ledger_path: Path,
                 retry: Retry = Retry(), max_age_s: float = 3600.0, group_id: str = GROUP):
        from kafka import KafkaProducer

        self.bootstrap, self.webhooks, self.retry, self.group_id = bootstrap_servers, webhooks, retry, group_id
        self.ledger = Ledger(ledger_path)
        self.http = httpx.Client(timeout=retry.timeout_s, follow_redirects=False)
        self.producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True,
                                      linger_ms=5, client_id="cityops-pager")
        self.stop = threading.Event()
        self.deliverer = Deliverer(self.ledger, self.http, retry, max_age_s)
        self.lanes = Lanes(self.deliverer.attempt, self.stop)

    # -- records ------------------------------------------------------------------------------------
    def flush_records(self) -> None:
        """Send queued delivery records to `deliveries`; forget them once the broker has them."""
        rows = self.ledger.pending()
        if not rows:
            return
        for _, record in rows:
            d = Delivery.model_validate_json(record)
            self.producer.send(DELIVERIES.name, key=d.alert_id.encode(), value=record)
        self.producer.flush(timeout=30)
        self.ledger.sent(rows[-1][0])

    def publish(self, alerts: list[Alert]) -> None:
        """Put alerts on the `alerts` topic (Grafana's notifications); returns once the broker has them."""
        futures = [self.producer.send(ALERTS.name, key=ALERTS.key_of(a), value=a.model_dump_json().encode())
                   for a in alerts]
        for f in futures:
            f.get(timeout=30)

    # -- delivery -----------------------------------------------------------------------------------
    def targets(self, alert: Alert) -> list[Target]:
        """The department's robots; for an alert that names a level (an escalated case, a false closure), also
        that level's duty officers: "<department>@<level>" and "@<level>" (cityops/data/alerting.yaml); "*"."""
        keys = [alert.department]
        if alert.level:
            keys += [f"{alert.department}@{alert.level}", f"@{alert.level}"]
        seen, out = set(), []
        for key in [*keys, "*"]:
            for hook in self.webhooks.get(key, []):
                if hook.key not in seen:
                    seen.add(hook.key)
                    out.append(hook)
        return out

    def accept(self, alerts: list[Alert]) -> None:
        """Queue each alert for its targets in one ledger transaction (before the offsets are committed) and
        hand the new deliveries to their lanes; an alert for a department without webhooks is given up."""
        items, lanes = [], []
        for alert in alerts:
            hooks = self.targets(alert)
            if not hooks:
                marker = f"none:{alert.department}"
                if not self.ledger.finished(alert.alert_id, marker):
                    self.deliverer.give_up(alert, None, f"no webhook configured for {alert.department}", marker)
                continue
            raw = alert.model_dump_json().encode()
            for hook in hooks:
                items.append((alert.alert_id, hook.name, raw))
                lanes.append((hook, alert))
        for (hook, alert), new in zip(lanes, self.ledger.enqueue(items)):
            if new:
                self.lanes.put(hook.key, hook, alert)

    def resume(self) -> None:
        """Deliveries queued by an earlier run that did not finish, back to their lanes, each due when the
        ledger says (a delivery in backoff goes on at its next attempt's time, not at once)."""
        by_key = {h.key: h for hooks in self.webhooks.values() for h in hooks}
        for key, raw in self.ledger.queued():
            alert = Alert.model_validate_json(raw)
            hook = by_key.get(key)
            if hook is None:
                self.deliverer.give_up(alert, None, "webhook no longer configured (CITYOPS_PAGER_WEBHOOKS changed)",
                                       key=key)
            elif progress := self.ledger.progress(alert.alert_id, hook.name):
                self.lanes.put(key, hook, alert, progress[2])

    # -- loop ---------------------------------------------------------------------------------------
    def run(self) -> None:
        from kafka import KafkaConsumer

        self.flush_records()   # records of a previous run that the broker may not have
        self.resume()
        forget_at = 0.0
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_records=50, client_id="cityops-pager")
        try:
            partitions = wait_for_partitions(consumer, [ALERTS.name], self.stop, log)
            if partitions:
                consumer.assign(list(partitions))   # starts from the group's committed offsets
            while not self.stop.is_set():
                polled = consumer.poll(timeout_ms=500)
                if polled:
                    self.accept([a for records in polled.values() for rec in records if (a := _alert(rec))])
                    consumer.commit()   # every alert polled is queued in the ledger or given up
                self.flush_records()
                if time.monotonic() >= forget_at:
                    forget_at = time.monotonic() + FORGET_EVERY_S
                    if n := self.ledger.forget_finished():
                        log.info("forgot %d finished deliveries whose alerts can no longer be read again", n)
        finally:
            consumer.close(autocommit=False)
            self.lanes.join(self.retry.timeout_s + 1)
            self.flush_records()
            self.producer.close(timeout=10)
            self.http.close()
            self.ledger.close()


def _alert(rec) -> Alert | None:
    try:
        return Alert.model_validate_json(rec.value)
    except ValidationError as e:
        # The streams validate what they send; the sink keeps the topic's bad messages as dead letters.
        log.warning("alerts %d/%d: not an Alert, skipped: %s", rec.partition, rec.offset, describe(e)[:300])
        return None
