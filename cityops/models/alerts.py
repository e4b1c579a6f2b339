"""Alerts that page departments, and the record of each delivery attempt."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from cityops.models.envelope import utcnow


class Severity(StrEnum):
    critical = "critical"   # page at once (emergencies, incidents)
    warning = "warning"     # overdue, anomalies
    info = "info"


class AlertRule(StrEnum):
    incident_opened = "incident_opened"
    emergency_case = "emergency_case"
    overdue_case = "overdue_case"
    accept_overdue = "accept_overdue"
    false_closure = "false_closure"
    volume_anomaly = "volume_anomaly"
    grafana = "grafana"                 # a Grafana alert rule, forwarded by the pager


class Alert(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    alert_id: str = Field(max_length=96, description="dedup key + cooldown slot: one alert is delivered once")
    rule: AlertRule
    severity: Severity
    department: str
    level: str = Field("", description="whose duty officer must act besides the department's: a level (street, "
                                       "district, city) or supervisor; the pager routes on it")
    dedup_key: str = Field(max_length=160)
    title: str = Field(max_length=200, description="Chinese, for the duty officer")
    detail: str = Field("", max_length=2000)
    district_code: str = ""
    grid_code: str = ""
    subject_id: str = Field("", description="case or incident id")
    occurred_at: datetime
    raised_at: datetime = Field(default_factory=utcnow)


class DeliveryStatus(StrEnum):
    delivered = "delivered"
    failed = "failed"          # attempt failed, will retry
    gave_up = "gave_up"        # retries exhausted


class Delivery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    alert_id: str
    department: str
    channel: str = Field(description="wecom | dingtalk | webhook")
    target: str = Field(description="webhook URL with secrets/tokens redacted")
    attempt: int = Field(ge=1)
    status: DeliveryStatus
    http_status: int = 0
    error: str = ""
    attempted_at: datetime = Field(default_factory=utcnow)
