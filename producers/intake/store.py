"""Accepted requests, kept queryable for GET and for idempotency (sqlite in the data dir).

What it keeps of a citizen: the description masked (`mask_text`), the address and exact place for read-key
holders, and the AppReport until Kafka acknowledged it (without the reporter's phone: a resend from here
carries none). Open311's first_name, last_name, email and phone are never stored. After the retention
`forget` turns a row into its public form (masked address, ~100 m) and masks an unsent event's text;
freed space is zeroed (secure_delete) and the write-ahead log truncated, so old text does not linger on disk.
"""
from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cityops.pii import mask_text
from producers.intake.privacy import forgotten_event, public_address, rounded

TZ = timezone(timedelta(hours=8))   # China Standard Time: request times are stored in it, compared as text

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    service_request_id TEXT PRIMARY KEY,
    idempotency_key    TEXT NOT NULL UNIQUE,
    service_code       TEXT NOT NULL,
    description        TEXT NOT NULL,
    lat                REAL,
    lon                REAL,
    address            TEXT,
    media_url          TEXT,
    requested_at       TEXT NOT NULL,
    event              BLOB NOT NULL,   -- the AppReport as sent, so a retry resends the same event; '' once sent
    sent               INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS requests_time ON requests (requested_at);
"""
# Columns added since the first release, for stores created before them.
_ADDED = {"body_sig": "TEXT",   # keyed hash of the request's fields: a reused Idempotency-Key must carry them
          "forgotten": "INTEGER NOT NULL DEFAULT 0"}


class RequestStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA secure_delete=ON")
        self.db.executescript(_SCHEMA)
        have = {r[1] for r in self.db.execute("PRAGMA table_info(requests)")}
        for name, decl in _ADDED.items():
            if name not in have:
                self.db.execute(f"ALTER TABLE requests ADD COLUMN {name} {decl}")
        self.db.execute("CREATE INDEX IF NOT EXISTS requests_unsent ON requests (sent, requested_at)")
        self.db.execute("CREATE INDEX IF NOT EXISTS requests_unforgotten ON requests (forgotten, requested_at)")
        self.db.row_factory = sqlite3.Row
        # Request threads and Kafka's callback thread share one connection; each call holds it briefly.
        self.lock = threading.RLock()

    def by_key(self, key: str) -> sqlite3.Row | None:
        with self.lock:
            return self.db.execute("SELECT * FROM requests WHERE idempotency_key = ?", (key,)).fetchone()

    def add_pending(self, row: dict) -> None:
        with self.lock:
            self.db.execute(f"INSERT INTO requests ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                            tuple(row.values()))

    def register(self, row: dict) -> tuple[sqlite3.Row, bool]:
        """The stored row under `row`'s idempotency key, and whether this call added it."""
        with self.lock:
            found = self.by_key(row["idempotency_key"])
            if found is not None:
                return found, False
            self.add_pending(row)
            return self.by_key(row["idempotency_key"]), True

    def mark_sent(self, request_id: str) -> None:
        with self.lock:
            self.db.execute("UPDATE requests SET sent = 1, event = '' WHERE service_request_id = ?", (request_id,))

    def pending(self, before: datetime | None = None) -> list[sqlite3.Row]:
        """Requests not yet acknowledged by Kafka (requested before `before`)."""
        with self.lock:
            return self.db.execute("SELECT * FROM requests WHERE sent = 0 AND requested_at < ? ORDER BY requested_at",
                                   ((before or datetime.now(TZ)).astimezone(TZ).isoformat(),)).fetchall()

    def forget(self, before: datetime) -> int:
        """Personal data of requests made before `before` in their public form; returns how many changed."""
        with self.lock:
            rows = self.db.execute("SELECT service_request_id, description, lat, lon, address, event FROM requests "
                                   "WHERE forgotten = 0 AND requested_at < ?",
                                   (before.astimezone(TZ).isoformat(),)).fetchall()
            for r in rows:
                self.db.execute("UPDATE requests SET description = ?, lat = ?, lon = ?, address = ?, event = ?, "
                                "forgotten = 1 WHERE service_request_id = ?",
                                (mask_text(r["description"]), rounded(r["lat"]), rounded(r["lon"]),
                                 public_address(r["address"]), forgotten_event(r["event"]) if r["event"] else "",
                                 r["service_request_id"]))
            # Old row images stay in the write-ahead log until a checkpoint; TRUNCATE removes them from disk.
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return len(rows)

    def query(self, ids: list[str] | None = None, codes: list[str] | None = None, start: str | None = None,
              end: str | None = None, limit: int = 1000) -> list[sqlite3.Row]:
        sql, args = "SELECT * FROM requests WHERE sent = 1", []
        if ids:
            sql += f" AND service_request_id IN ({', '.join('?' * len(ids))})"
            args += ids
        else:
            if codes:
                sql += f" AND service_code IN ({', '.join('?' * len(codes))})"
                args += codes
            if start:
                sql += " AND requested_at >= ?"
                args.append(start)
            if end:
                sql += " AND requested_at <= ?"
                args.append(end)
        with self.lock:
            return self.db.execute(sql + " ORDER BY requested_at DESC LIMIT ?", (*args, limit)).fetchall()

    def close(self) -> None:
        with self.lock:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.db.close()
