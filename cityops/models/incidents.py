"""Sensor incidents: a reading over its limit for a sustained period opens one; falling back closes it."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from cityops.models.envelope import DistrictCode, GridCode, Latitude, Longitude, utcnow
from cityops.models.sensors import SensorKind


class IncidentState(StrEnum):
    open = "open"
    closed = "closed"


class Incident(BaseModel):
    """One row per state change; the newest `version` per `incident_id` is current."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    incident_id: str = Field(max_length=96, description="device id + opening time: stable across replays")
    version: int = Field(ge=1)
    device_id: str
    kind: SensorKind
    state: IncidentState
    opened_at: datetime
    closed_at: datetime | None = None
    peak_value: float
    limit: float
    unit: str
    lat: Latitude
    lon: Longitude
    grid_code: GridCode | None = None
    district_code: DistrictCode | None = None
    street_code: str | None = Field(None, pattern=r"^\d{9}$")
    label: str = Field(description="taxonomy label the incident counts as, e.g. 油烟污染")
    department: str
    updated_at: datetime = Field(default_factory=utcnow)
