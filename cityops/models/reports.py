"""Citizen app reports (随手拍): photo, text, GPS; Open311 GeoReport v2 requests map onto these."""
from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, HttpUrl, model_validator

from cityops.models.envelope import Envelope, Latitude, Longitude, Source


class ReporterRole(StrEnum):
    resident = "resident"                # 居民
    grid_worker = "grid_worker"          # 网格员
    merchant_group = "merchant_group"    # 商户自律小组
    three_heads = "three_heads"          # 楼长/街巷长/区片长


class AppReport(Envelope):
    source: Literal[Source.app.value] = Source.app.value   # the member's value: see Envelope
    report_id: str = Field(pattern=r"^[A-Za-z0-9-]{6,40}$")
    text: str = Field(min_length=1, max_length=4000)
    photo_url: HttpUrl | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    address: str | None = Field(None, max_length=200)
    reporter_role: ReporterRole = ReporterRole.resident
    reporter_phone: str | None = Field(None, max_length=32, description="PII: masked before storage")
    service_code: str | None = Field(None, max_length=16, description="taxonomy code chosen by the reporter")

    @model_validator(mode="after")
    def _located(self):
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon come together")
        if self.lat is None and not self.address:
            raise ValueError("a report needs lat/lon or an address")
        return self
