"""Per-minute event-time counts by district, street, source and label."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from cityops.models.envelope import Source, utcnow


class MinuteCount(BaseModel):
    """Count of one (minute, district, street, source, label) cell. Re-emitting a window replaces it."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    minute: datetime = Field(description="window start, event time")
    district_code: str = Field("", description="'' when unplaced")
    street_code: str = ""
    source: Source
    label: str
    count: int = Field(ge=0)
    emitted_at: datetime = Field(default_factory=utcnow)


class MinutePartial(BaseModel):
    """Internal (streams.minute-partials), keyed by minute + district: one source partition's full counts
    of a minute's cells (`street|source|label` → count). The combiner sums the partitions' latest partials."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    origin: str = Field(description="source topic and partition, e.g. sensor.events/3")
    minute: int = Field(description="window start, epoch seconds")
    district_code: str
    cells: dict[str, int]
    final: bool = False
