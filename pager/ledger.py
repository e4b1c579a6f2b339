"""The pager's durable memory (sqlite in the data dir): the deliveries still to make, which (alert, target)
pairs are finished, and the delivery records not yet acknowledged by Kafka.

An alert read from Kafka is queued here for each of its targets before its offset is committed; a target's
lane takes it from the queue and, once the webhook answered for good, marks the pair finished in the same
transaction that queues the attempt's record and drops it from the queue. A failed attempt's record is
queued in the same transaction as the delivery's progress: attempts made, the first one's time and when the
next is due (wall-clock seconds, to outlive the process). A pager killed at any point
resumes the queue on its next start and skips finished pairs when an alert is read again; its records still
reach the `deliveries` topic (at least once: killed between the broker's ack and `sent`, the next start
resends the identical record; readers dedupe on the whole record). Targets are keyed by a hash of the full
URL (two robots of one department differ only in their token; the tokens stay out of this file).

Every lane thread and the consumer loop share one connection under a lock: each write is one short
transaction, fsynced (`synchronous=FULL`, docs/streams.md) so that a finished mark survives a power cut.

A finished mark is kept as long as its alert can be read again, then forgotten (`forget_finished`): kept for
good, the table would grow by a row per alert and target for as long as the pager runs."""
from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from pathlib import Path

from cityops.models.alerts import Delivery
from cityops.topics import ALERTS

# An alert can be read again for its topic's retention, plus up to one segment roll: Kafka deletes a segment
# only once its newest record is past the retention, and rolls one at the latest after as long (segment.ms,
# 7 days by default).
FINISHED_KEEP_S = 2 * ALERTS.retention_ms / 1000 + 86400


def target_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32]


class Ledger:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS finished (alert_id TEXT, target TEXT, status TEXT, "
                        "at REAL, PRIMARY KEY (alert_id, target))")
        if "at" not in {row[1] for row in self.db.execute("PRAGMA table_info(finished)")}:
            # A ledger from before `at`: its marks count as finished now (kept for the whole period).
            with self.db:
                self.db.execute("ALTER TABLE finished ADD COLUMN at REAL")
                self.db.execute("UPDATE finished SET at = ?", (time.time(),))
        self.db.execute("CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, record BLOB)")
        self.db.execute("CREATE TABLE IF NOT EXISTS queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id TEXT, "
                        "target TEXT, alert BLOB, UNIQUE (alert_id, target))")
        have = {row[1] for row in self.db.execute("PRAGMA table_info(queue)")}
        for column in ("attempt INTEGER NOT NULL DEFAULT 0", "first_at REAL", "next_at REAL NOT NULL DEFAULT 0"):
            if column.split()[0] not in have:   # a ledger from before: its deliveries are due now, at attempt 1
                self.db.execute(f"ALTER TABLE queue ADD COLUMN {column}")

    def finished(self, alert_id: str, url: str) -> bool:
        with self._lock:
            return self._finished(alert_id, target_key(url))

    def _finished(self, alert_id: str, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM finished WHERE alert_id = ? AND target = ?",
                               (alert_id, key)).fetchone() is not None

    def enqueue(self, items: list[tuple[str, str, bytes]]) -> list[bool]:
        """Queue (alert id, url, alert JSON) deliveries in one transaction; for each, whether it is new (neither
        finished nor queued already: an alert read twice is delivered once)."""
        new = []
        with self._lock, self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for alert_id, url, alert in items:
                key = target_key(url)
                new.append(not self._finished(alert_id, key) and self.db.execute(
                    "INSERT OR IGNORE INTO queue (alert_id, target, alert) VALUES (?, ?, ?)",
                    (alert_id, key, alert)).rowcount == 1)
        return new

    def queued(self) -> list[tuple[str, bytes]]:
        """(target key, alert JSON) of every delivery not finished yet, oldest first."""
        with self._lock:
            return self.db.execute("SELECT target, alert FROM queue ORDER BY seq").fetchall()

    def progress(self, alert_id: str, url: str) -> tuple[int, float | None, float] | None:
        """(attempts made, first attempt's time, next one's) of a queued delivery; None if not queued."""
        with self._lock:
            return self.db.execute("SELECT attempt, first_at, next_at FROM queue WHERE alert_id = ? AND target = ?",
                                   (alert_id, target_key(url))).fetchone()

    def retry(self, d: Delivery, url: str, first_at: float, next_at: float) -> None:
        """Queue a failed attempt's record and when the delivery's next attempt is due, in one transaction."""
        with self._lock, self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO outbox (record) VALUES (?)", (d.model_dump_json().encode(),))
            self.db.execute("UPDATE queue SET attempt = ?, first_at = ?, next_at = ? "
                            "WHERE alert_id = ? AND target = ?", (d.attempt, first_at, next_at, d.alert_id,
                                                                  target_key(url)))

    def record(self, d: Delivery, url: str | None = None, *, target: str | None = None) -> None:
        """Queue an attempt's record; a final one (delivered / gave up) also finishes the pair and drops it from
        the delivery queue. The pair's target is the url, or its key when the url is no longer known."""
        key = target or (target_key(url) if url is not None else None)
        with self._lock, self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO outbox (record) VALUES (?)", (d.model_dump_json().encode(),))
            if key is not None and d.status != "failed":
                self.db.execute("INSERT OR IGNORE INTO finished VALUES (?, ?, ?, ?)",
                                (d.alert_id, key, d.status, time.time()))
                self.db.execute("DELETE FROM queue WHERE alert_id = ? AND target = ?", (d.alert_id, key))

    def forget_finished(self, keep_s: float = FINISHED_KEEP_S) -> int:
        """Drop the finished marks older than `keep_s` (their alerts cannot be read again); how many."""
        with self._lock, self.db:
            return self.db.execute("DELETE FROM finished WHERE at < ?", (time.time() - keep_s,)).rowcount

    def pending(self) -> list[tuple[int, bytes]]:
        with self._lock:
            return self.db.execute("SELECT seq, record FROM outbox ORDER BY seq").fetchall()

    def sent(self, upto: int) -> None:
        with self._lock:
            self.db.execute("DELETE FROM outbox WHERE seq <= ?", (upto,))

    def close(self) -> None:
        with self._lock:
            self.db.close()
