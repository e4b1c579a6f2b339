"""12345 hotline work-order lifecycle (热线工单闭环): each status change is one event for the ticket id."""
from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from cityops.models.envelope import Envelope, Latitude, Longitude, Source
from cityops.taxonomy import Tier


class TicketStatus(StrEnum):
    """The closed loop of every case, whatever its source (GB/T 30428.8): 受理 → 派单 → 签收 → 办结 → 核查 /
    回访 → 结案, or 重办; a department may 退回 a case for re-dispatch."""

    created = "created"          # 受理
    dispatched = "dispatched"    # 派单 (department and level)
    accepted = "accepted"        # 签收
    returned = "returned"        # 退回: not this department's, to be dispatched again
    resolved = "resolved"        # 办结 (with the 721 mode)
    verified = "verified"        # 核查通过 (a 数字城管 inspector, or the device itself)
    return_visit = "return_visit"  # 回访 (with the citizen's satisfaction)
    reopened = "reopened"        # 重办
    closed = "closed"            # 结案


CaseStatus = TicketStatus


class ResolutionMode(StrEnum):
    """The 721 method: 70 % service, 20 % management, 10 % enforcement."""

    service = "服务"
    management = "管理"
    enforcement = "执法"


class Satisfaction(StrEnum):
    satisfied = "满意"
    basically = "基本满意"
    unsatisfied = "不满意"


class Channel(StrEnum):
    phone = "phone"
    web = "web"
    wechat = "wechat"
    app = "app"


# Which optional fields each status must carry.
_REQUIRED: dict[str, tuple[str, ...]] = {
    TicketStatus.created: ("text",),
    TicketStatus.dispatched: ("department",),
    TicketStatus.resolved: ("resolution_mode",),
    TicketStatus.return_visit: ("satisfaction",),
}


class TicketEvent(Envelope):
    source: Literal[Source.hotline.value] = Source.hotline.value   # the member's value: see Envelope
    ticket_id: str = Field(pattern=r"^[A-Za-z0-9-]{6,40}$")
    status: TicketStatus
    # created
    caller_phone: str | None = Field(None, max_length=32, description="PII: masked before storage")
    caller_name: str | None = Field(None, max_length=64, description="PII: masked before storage")
    text: str | None = Field(None, min_length=1, max_length=4000, description="complaint in Chinese")
    address: str | None = Field(None, max_length=200)
    lat: Latitude | None = None
    lon: Longitude | None = None
    channel: Channel | None = None
    # dispatched / escalation
    department: str | None = Field(None, max_length=64)
    tier: Tier | None = None
    # resolved / return visit
    resolution_mode: ResolutionMode | None = None
    satisfaction: Satisfaction | None = None
    note: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _status_fields(self):
        missing = [f for f in _REQUIRED.get(self.status, ()) if getattr(self, f) is None]
        if missing:
            raise ValueError(f"status {self.status} needs {', '.join(missing)}")
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon come together")
        return self
