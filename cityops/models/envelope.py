"""The envelope every event on Kafka carries."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
# Nothing in the city happened before the system's epoch; a source's clock may run minutes fast (the streams
# count such an event when it arrived), and what claims to be further ahead than CLOCK_SKEW_S is refused.
EARLIEST = datetime(2015, 1, 1, tzinfo=timezone.utc)
CLOCK_SKEW_S = 900

GridCode = Annotated[str, Field(pattern=r"^\d{15}$", description="GB/T 2260 district + street + community + grid")]
DistrictCode = Annotated[str, Field(pattern=r"^\d{6}$", description="GB/T 2260 county-level code")]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


def _plausible(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("timestamp needs a time zone (e.g. +08:00 or Z)")
    if t < EARLIEST:
        raise ValueError(f"timestamp {t.isoformat()} is before {EARLIEST.year}")
    if t.timestamp() - time.time() > CLOCK_SKEW_S:   # twice per event: no datetime arithmetic
        raise ValueError(f"timestamp {t.isoformat()} is in the future")
    return t


EventTime = Annotated[datetime, AfterValidator(_plausible)]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Source(StrEnum):
    hotline = "hotline"
    sensor = "sensor"
    app = "app"


class Envelope(BaseModel):
    """Fields common to all events. Unknown fields are refused so typos surface at the producer.

    Each event type narrows `source` to a Literal of its member's value, not of the member: pydantic checks a
    Literal of enum members with a Python call per message (docs/streams.md, throughput)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=8, max_length=64)
    source: Source
    schema_version: int = SCHEMA_VERSION
    occurred_at: EventTime
    received_at: EventTime = Field(default_factory=utcnow)
    grid_code: GridCode | None = None
    district_code: DistrictCode | None = None

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))

    @classmethod
    def from_bytes(cls, raw: bytes):
        return cls.model_validate_json(raw)
