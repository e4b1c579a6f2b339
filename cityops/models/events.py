"""Status events for any case, whatever its source, from the city's case-handling systems (the 12345 platform,
the 数字城管 platform, departments' apps, the intake's department endpoint, the devices that verify their own
repair): one lifecycle for every case (cityops.models.tickets.CaseStatus)."""
from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from cityops.models.envelope import EventTime, utcnow
from cityops.models.tickets import CaseStatus, ResolutionMode, Satisfaction
from cityops.taxonomy import Tier

# Which fields each status must carry.
_REQUIRED: dict[str, tuple[str, ...]] = {
    CaseStatus.dispatched: ("department",),
    CaseStatus.resolved: ("resolution_mode",),
    CaseStatus.return_visit: ("satisfaction",),
}


class CaseEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=8, max_length=64)
    case_id: str = Field(pattern=r"^[A-Za-z0-9-]{6,64}$", description="the case: a ticket, report or S-… id")
    status: CaseStatus
    system: str = Field(max_length=32, description="who reports it: 12345, szcg (数字城管), a department's app, "
                                                   "department-api, device")
    occurred_at: EventTime
    received_at: EventTime = Field(default_factory=utcnow)
    department: str | None = Field(None, max_length=64, description="dispatched to")
    tier: Tier | None = Field(None, description="the level it is dispatched to")
    resolution_mode: ResolutionMode | None = None
    satisfaction: Satisfaction | None = None
    false_closure: bool = Field(False, description="reopened because the problem was still there (虚假办结)")
    note: str | None = Field(None, max_length=2000, description="for the citizen and the record; masked before "
                                                               "storage")
    photo_url: HttpUrl | None = Field(None, description="the work done, as the department photographed it")

    @model_validator(mode="after")
    def _status_fields(self):
        missing = [f for f in _REQUIRED.get(self.status, ()) if getattr(self, f) is None]
        if missing:
            raise ValueError(f"status {self.status} needs {', '.join(missing)}")
        if self.status == CaseStatus.created:
            raise ValueError("a case is created by its source event (ticket, report, device alert), not here")
        return self

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()
