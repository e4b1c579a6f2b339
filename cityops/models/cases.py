"""A case's state after each event (streams → sink): classified, placed, dispatched, timed."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from cityops.models.envelope import DistrictCode, GridCode, Latitude, Longitude, Source, utcnow
from cityops.models.tickets import ResolutionMode, Satisfaction, TicketStatus
from cityops.taxonomy import Tier


class CaseUpdate(BaseModel):
    """One row of case history; the newest `version` per `case_id` is the case's current state.

    Text is already masked and callers are keyed hashes: nothing personal leaves the streams stage.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    case_id: str = Field(max_length=64)
    version: int = Field(ge=1, description="monotonic per case; ReplacingMergeTree keeps the highest")
    event_id: str = Field(max_length=64, description="the event that produced this state")
    source: Source
    status: TicketStatus
    occurred_at: datetime
    received_at: datetime
    processed_at: datetime = Field(default_factory=utcnow)
    text: str = Field("", description="masked complaint text")
    address: str = ""
    lat: Latitude | None = None
    lon: Longitude | None = None
    placed: bool = False
    grid_code: GridCode | None = None
    district_code: DistrictCode | None = None
    street_code: str | None = Field(None, pattern=r"^\d{9}$")
    label: str
    code: str
    department: str
    tier: Tier
    time_limit_minutes: int
    confidence: float = Field(ge=0, le=1)
    due_at: datetime | None = None
    overdue: bool = False
    reporter_count: int = Field(1, ge=1)
    reopen_count: int = Field(0, ge=0)
    resolution_mode: ResolutionMode | None = None
    satisfaction: Satisfaction | None = None
    caller_hash: str = Field("", description="keyed hash of the caller's phone: repeat callers stay countable")
