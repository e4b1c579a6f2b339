"""IoT sensor readings and device alerts (感知设备)."""
from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from cityops.models.envelope import Envelope, Latitude, Longitude, Source


class SensorKind(StrEnum):
    manhole = "manhole"            # 井盖: tilt in degrees; alert on missing/open
    water_depth = "water_depth"    # 积水: cm
    cooking_fume = "cooking_fume"  # 油烟: mg/m³ (GB 18483 limit 2.0)
    noise = "noise"                # 噪声: dB(A) (GB 3096 class 1: 55 day / 45 night)
    bin_fill = "bin_fill"          # 垃圾满溢: %
    street_light = "street_light"  # 路灯: 1 on / 0 off; alert on fault


UNITS: dict[SensorKind, str] = {
    SensorKind.manhole: "°",
    SensorKind.water_depth: "cm",
    SensorKind.cooking_fume: "mg/m³",
    SensorKind.noise: "dB(A)",
    SensorKind.bin_fill: "%",
    SensorKind.street_light: "",
}


class SensorEvent(Envelope):
    source: Literal[Source.sensor.value] = Source.sensor.value   # the member's value: see Envelope
    device_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{3,64}$")
    kind: SensorKind
    event: Literal["reading", "alert"] = "reading"
    value: float = Field(allow_inf_nan=False)
    alert_code: str | None = Field(None, max_length=32, description="device's own alert, e.g. missing, fault")
    lat: Latitude
    lon: Longitude
