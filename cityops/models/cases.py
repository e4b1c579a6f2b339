"""A case's state after each event (streams → sink): classified, placed, dispatched, timed."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, RootModel

from cityops.models.envelope import DistrictCode, GridCode, Latitude, Longitude, Source, utcnow
from cityops.models.tickets import ResolutionMode, Satisfaction, TicketStatus
from cityops.taxonomy import Tier


class Discovery(StrEnum):
    """How the city learnt of the problem: a citizen reported it, or it was found without one (主动发现)."""

    citizen = "citizen"    # 12345, 随手拍
    patrol = "patrol"      # 网格员巡查
    sensor = "sensor"      # 感知设备


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
    discovered_by: Discovery = Field(Discovery.citizen, description="citizen, patrol (网格员) or sensor")
    device_id: str | None = Field(None, max_length=64, description="the device whose alarm opened it")
    dispatched_at: datetime | None = None
    accept_due_at: datetime | None = Field(None, description="签收 is due by then once dispatched")
    accepted_at: datetime | None = None
    accept_overdue: bool = Field(False, description="not accepted (签收) in time")
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    escalations: int = Field(0, ge=0, description="levels it went up, overdue (超期升级)")
    false_closures: int = Field(0, ge=0, description="times it was found unresolved after 办结 (虚假办结)")
    note: str = Field("", description="the latest status note, masked: what the reporter is told")
    duplicate_of: str | None = Field(None, max_length=64, description="the case this report was merged into")
    hot_spot: bool = Field(False, description="same label in the same grid at least 3 times in 7 days")


class DeviceCheck(BaseModel):
    """Internal (streams.device-checks), keyed by device_id: a device's case was resolved; the device's own
    readings verify it (核查) or find it still wrong (虚假办结)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_id: str
    case_id: str
    resolved_at: datetime
    version: int = Field(description="the case's resolved version: a later resolution supersedes this check")


class CaseCandidate(BaseModel):
    """Internal (streams.case-candidates): a new case, classified and placed, on its way to duplicate and
    recurrence checks. Keyed by `dedup_key` (district + label) so one partition sees every near neighbour."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dedup_key: str
    case: dict = Field(description="CaseUpdate fields of the first version (without version)")


class OpenCase(BaseModel):
    """Open a case from its first version (a candidate that is no one's duplicate, or the duplicate itself)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: Literal["open"] = "open"
    case_id: str
    case: dict = Field(description="CaseUpdate fields of the first version (without version)")


class AddReporter(BaseModel):
    """Another report merged into this case: one more reporter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: Literal["reporter"] = "reporter"
    case_id: str
    reporter: str = Field(description="the merged report's case id")


class ApplyTicket(BaseModel):
    """A lifecycle event (dispatched, resolved, return visit …) for a case, from a hotline ticket or a case event,
    with its source topic and offset so a replay applies once. Personal fields are left out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: Literal["ticket"] = "ticket"
    case_id: str
    event: dict
    source_offset: int
    source_topic: str = "hotline.tickets"


class CaseCommand(RootModel[Annotated[Union[OpenCase, AddReporter, ApplyTicket], Field(discriminator="op")]]):
    """Internal (streams.case-commands), keyed by case_id: what happens to a case, in the order it happens."""
