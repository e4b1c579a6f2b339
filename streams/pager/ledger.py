"""The pager's durable memory (sqlite in the data dir): which (alert, target) pairs are finished, and the
delivery records not yet acknowledged by Kafka.

A delivery is marked finished in the same transaction that queues its record, right after the webhook
answered, so a pager killed before committing its Kafka offsets skips it when the alert comes again, and
its record still reaches the `deliveries` topic on the next start (at least once: killed between the broker's
ack and `sent`, the next start resends the identical record; readers dedupe on the whole record). Targets are
keyed by a hash of the full URL (two robots of one department differ only in their token)."""
from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from cityops.models.alerts import Delivery


def target_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32]


class Ledger:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS finished (alert_id TEXT, target TEXT, status TEXT, "
                        "PRIMARY KEY (alert_id, target))")
        self.db.execute("CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, record BLOB)")

    def finished(self, alert_id: str, url: str) -> bool:
        return self.db.execute("SELECT 1 FROM finished WHERE alert_id = ? AND target = ?",
                               (alert_id, target_key(url))).fetchone() is not None

    def record(self, d: Delivery, url: str | None = None) -> None:
        """Queue an attempt's record; a final one (delivered / gave up) also finishes the pair."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO outbox (record) VALUES (?)", (d.model_dump_json().encode(),))
            if url is not None and d.status != "failed":
                self.db.execute("INSERT OR IGNORE INTO finished VALUES (?, ?, ?)",
                                (d.alert_id, target_key(url), d.status))

    def pending(self) -> list[tuple[int, bytes]]:
        return self.db.execute("SELECT seq, record FROM outbox ORDER BY seq").fetchall()

    def sent(self, upto: int) -> None:
        self.db.execute("DELETE FROM outbox WHERE seq <= ?", (upto,))

    def close(self) -> None:
        self.db.close()
