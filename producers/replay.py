"""Replay a recorded file (JSONL or CSV) as events: every line validated, bad lines reported, never sent.

Pace: the original gaps between occurred_at times, divided by `speed`; or as fast as possible.
"""
from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pydantic import BaseModel

from cityops.topics import Topic
from producers.errors import InvalidEvent
from producers.serde import decode_json, topic_for, validate


@dataclass(frozen=True)
class BadLine:
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"


def _rows(path: Path) -> Iterator[tuple[int, dict | InvalidEvent]]:
    with open(path, "rb") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield i, decode_json(line)
            except InvalidEvent as e:
                yield i, e


def read(path: Path, topic: str | None = None, bad: list[BadLine] | None = None) -> Iterator[tuple[Topic, BaseModel]]:
    """Validated events in file order; invalid lines go to `bad` (line number, field, reason)."""
    bad = bad if bad is not None else []
    rows = _csv_rows(path) if path.suffix.lower() == ".csv" else _rows(path)
    for line, raw in rows:
        try:
            if isinstance(raw, InvalidEvent):
                raise raw
            t = topic_for(raw, topic)
            yield t, validate(t, raw)
        except InvalidEvent as e:
            bad.append(BadLine(line, e.field, e.reason))
        except KeyError as e:
            bad.append(BadLine(line, "topic", str(e)))


def _csv_rows(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        for row in reader:
            yield reader.line_num, {k: v for k, v in row.items() if k and v not in ("", None)}


def paced(events: Iterator[tuple[Topic, BaseModel]], speed: float) -> Iterator[tuple[Topic, BaseModel]]:
    """Keep the recorded gaps between occurred_at times, `speed` times faster."""
    first_event = first_wall = None
    for topic, ev in events:
        at = ev.occurred_at.timestamp() if hasattr(ev, "occurred_at") else None
        if at is not None:
            if first_event is None:
                first_event, first_wall = at, time.monotonic()
            wait = (at - first_event) / speed - (time.monotonic() - first_wall)
            if wait > 0:
                time.sleep(wait)
        yield topic, ev
