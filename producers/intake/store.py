"""Accepted requests, kept queryable for GET and for idempotency (sqlite in the data dir)."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

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
    event              BLOB NOT NULL,   -- the AppReport as sent, so a retry resends the same event
    sent               INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS requests_time ON requests (requested_at);
"""
COLUMNS = ("service_request_id", "idempotency_key", "service_code", "description", "lat", "lon", "address",
           "media_url", "requested_at", "event", "sent")


class RequestStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)
        self.db.row_factory = sqlite3.Row
        self.lock = threading.Lock()

    def by_key(self, key: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM requests WHERE idempotency_key = ?", (key,)).fetchone()

    def add_pending(self, row: dict) -> None:
        self.db.execute(f"INSERT INTO requests ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                        tuple(row.values()))

    def mark_sent(self, request_id: str) -> None:
        self.db.execute("UPDATE requests SET sent = 1 WHERE service_request_id = ?", (request_id,))

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
        return self.db.execute(sql + " ORDER BY requested_at DESC LIMIT ?", (*args, limit)).fetchall()
