"""What the intake knows of cases (followed from `cases`) and of the departments' events it accepted (for
`case.events`), in the request store's database.

Of each case it keeps the newest version's state: status, department, level, resolution mode, the status note
(masked again here) and when. Never the complaint text. A case is kept while it can still change. A closed case
is forgotten after the retention, unless it is a request's: then it is that request's public answer, kept as
long as the request. The offsets of `cases` read so far are written in the same transaction as the states they
produced, so a restart resumes exactly where the states stop.

A department's event is kept as sent until Kafka acknowledged it, so that a retry resends the same event; its
identity (keyed hashes) is kept for the retention, so that a repeat is answered with the first event's id. After
the retention an unsent event's note is masked.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone

from cityops.models import CaseUpdate
from cityops.models.tickets import CaseStatus
from cityops.pii import mask_text
from producers.intake.store import TZ, RequestStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    case_id         TEXT PRIMARY KEY,
    version         INTEGER NOT NULL,
    event_id        TEXT NOT NULL,      -- the event that produced this version
    source          TEXT NOT NULL,
    status          TEXT NOT NULL,
    department      TEXT NOT NULL,
    tier            TEXT NOT NULL,
    resolution_mode TEXT,
    note            TEXT NOT NULL,      -- masked
    occurred_at     TEXT NOT NULL       -- China Standard Time, compared as text
);
CREATE INDEX IF NOT EXISTS cases_by_status ON cases (status, occurred_at);
CREATE TABLE IF NOT EXISTS case_offsets (
    topic       TEXT NOT NULL,
    partition   INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS department_events (
    event_id        TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,   -- keyed hash: the Idempotency-Key, or the case version + body
    body_sig        TEXT NOT NULL,          -- keyed hash of the department, the case and the body
    case_id         TEXT NOT NULL,
    department      TEXT NOT NULL,
    status          TEXT NOT NULL,
    requested_at    TEXT NOT NULL,
    event           BLOB NOT NULL,          -- the CaseEvent as sent, so a retry resends it; '' once sent
    sent            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS department_events_unsent ON department_events (sent, requested_at);
"""
_COLUMNS = ("case_id", "version", "event_id", "source", "status", "department", "tier", "resolution_mode", "note",
            "occurred_at")
_UPSERT = (f"INSERT INTO cases ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
           "ON CONFLICT (case_id) DO UPDATE SET "
           + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
           + " WHERE excluded.version > cases.version")


class CaseBook:
    def __init__(self, store: RequestStore, topic: str):
        # One database, one connection and one lock with the requests: a closed case is kept while its request is.
        self.db, self.lock, self.topic = store.db, store.lock, topic
        with self.lock:
            self.db.executescript(_SCHEMA)

    # -- cases --------------------------------------------------------------------------------------
    def apply(self, versions: list[CaseUpdate], offsets: dict[int, int]) -> None:
        """Each case's newer versions over its older ones, and the next offset of each partition they came from."""
        rows = [(v.case_id, v.version, v.event_id, v.source, v.status, v.department, v.tier, v.resolution_mode,
                 mask_text(v.note), _local(v.occurred_at)) for v in versions]
        with self.lock:
            self.db.execute("BEGIN")
            try:
                self.db.executemany(_UPSERT, rows)
                self.db.executemany("INSERT INTO case_offsets (topic, partition, next_offset) VALUES (?, ?, ?) "
                                    "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                                    [(self.topic, p, o) for p, o in offsets.items()])
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def offsets(self) -> dict[int, int]:
        with self.lock:
            return dict(self.db.execute("SELECT partition, next_offset FROM case_offsets WHERE topic = ?",
                                        (self.topic,)).fetchall())

    def case(self, case_id: str) -> sqlite3.Row | None:
        with self.lock:
            return self.db.execute("SELECT * FROM cases WHERE case_id = ?", (case_id,)).fetchone()

    def cases(self, ids: list[str]) -> dict[str, sqlite3.Row]:
        if not ids:
            return {}
        with self.lock:
            rows = self.db.execute(f"SELECT * FROM cases WHERE case_id IN ({', '.join('?' * len(ids))})",
                                   ids).fetchall()
        return {r["case_id"]: r for r in rows}

    # -- department events --------------------------------------------------------------------------
    def register(self, row: dict) -> tuple[sqlite3.Row, bool]:
        """The stored event under `row`'s idempotency key, and whether this call added it."""
        with self.lock:
            found = self.by_key(row["idempotency_key"])
            if found is not None:
                return found, False
            self.db.execute(f"INSERT INTO department_events ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                            tuple(row.values()))
            return self.by_key(row["idempotency_key"]), True

    def by_key(self, key: str) -> sqlite3.Row | None:
        with self.lock:
            return self.db.execute("SELECT * FROM department_events WHERE idempotency_key = ?", (key,)).fetchone()

    def produced(self, event_id: str, body_sig: str) -> sqlite3.Row | None:
        """The department event `event_id` if it carried `body_sig`: a repeat of the event a case version came from."""
        with self.lock:
            return self.db.execute("SELECT * FROM department_events WHERE event_id = ? AND body_sig = ?",
                                   (event_id, body_sig)).fetchone()

    def mark_sent(self, event_id: str) -> None:
        with self.lock:
            self.db.execute("UPDATE department_events SET sent = 1, event = '' WHERE event_id = ?", (event_id,))

    def unsent(self, before: datetime) -> list[tuple[str, str]]:
        """(event id, event) of the events not yet acknowledged by Kafka, accepted before `before`."""
        with self.lock:
            return [tuple(r) for r in self.db.execute(
                "SELECT event_id, event FROM department_events WHERE sent = 0 AND requested_at < ? "
                "ORDER BY requested_at", (before.astimezone(TZ).isoformat(),)).fetchall()]

    # -- retention ----------------------------------------------------------------------------------
    def forget(self, before: datetime) -> int:
        """Closed cases (not requests') and sent events from before `before`; unsent events' notes masked.
        Returns how many rows changed."""
        cut = before.astimezone(TZ).isoformat()
        with self.lock:
            closed = self.db.execute(
                "DELETE FROM cases WHERE status = ? AND occurred_at < ? "
                "AND case_id NOT IN (SELECT service_request_id FROM requests)", (CaseStatus.closed.value, cut))
            sent = self.db.execute("DELETE FROM department_events WHERE sent = 1 AND requested_at < ?", (cut,))
            changed = closed.rowcount + sent.rowcount
            for event_id, event in self.db.execute("SELECT event_id, event FROM department_events "
                                                   "WHERE sent = 0 AND requested_at < ?", (cut,)).fetchall():
                doc = json.loads(event)
                if doc.get("note") and (masked := mask_text(doc["note"])) != doc["note"]:
                    self.db.execute("UPDATE department_events SET event = ? WHERE event_id = ?",
                                    (json.dumps({**doc, "note": masked}, ensure_ascii=False), event_id))
                    changed += 1
            return changed


def _local(t: datetime) -> str:
    """ISO time in China Standard Time; a time without a zone is UTC, as the streams write it."""
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).astimezone(TZ).isoformat()
