"""The simulated sensor fleet and how each kind of device reads over a day.

Devices sit at fixed points (so the same coordinates come back, as in a real deployment), more of them
in the centre, fume and noise sensors round the food markets, water gauges at the low-lying roads.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from cityops.models import SensorKind
from cityops.registry import CityRegistry, PoiKind

# Readings per device per simulated minute: continuous monitors report more often than bins and lights.
FREQUENCY = {SensorKind.noise: 1.0, SensorKind.cooking_fume: 1.0, SensorKind.water_depth: 1.0,
             SensorKind.bin_fill: 0.2, SensorKind.manhole: 0.1, SensorKind.street_light: 0.1}
FUME_LIMIT = 2.0            # mg/m³, GB 18483
NOISE_LIMIT = (55.0, 45.0)  # dB(A) day / night, GB 3096 class 1
WATER_ALERT_CM = 15.0
BIN_ALERT = 90.0


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    kind: SensorKind
    lat: float
    lon: float
    grid_code: str
    site: str            # market, school, construction, low_lying, street
    phase: float         # a per-device offset (fill speed, base level) so devices differ


def fleet(registry: CityRegistry, rng: random.Random) -> list[Device]:
    out: list[Device] = []

    def add(kind: SensorKind, grid_code: str, lat: float, lon: float, site: str = "street") -> None:
        out.append(Device(f"{kind.value[:2].upper()}-{grid_code}-{len(out):05d}", kind, round(lat, 6), round(lon, 6),
                          grid_code, site, rng.random()))

    def near(lat: float, lon: float, m: float = 60.0) -> tuple[float, float]:
        d = m / 111_000
        return lat + rng.uniform(-d, d), lon + rng.uniform(-d, d) / math.cos(math.radians(lat))

    for g in registry.grids.values():
        x1, y1, x2, y2 = g.polygon.bounds
        urban = g.district_code == "370303"
        spot = lambda: (rng.uniform(y1 + (y2 - y1) * 0.1, y2 - (y2 - y1) * 0.1),
                        rng.uniform(x1 + (x2 - x1) * 0.1, x2 - (x2 - x1) * 0.1))
        for kind in (SensorKind.manhole, SensorKind.bin_fill, SensorKind.street_light):
            for _ in range(2 if urban else 1):
                add(kind, g.code, *spot())
    for a in registry.pois():
        if a.kind == PoiKind.market:
            for _ in range(4):
                add(SensorKind.cooking_fume, a.grid_code, *near(a.lat, a.lon), site="market")
            for _ in range(2):
                add(SensorKind.noise, a.grid_code, *near(a.lat, a.lon), site="market")
        elif a.kind == PoiKind.construction:
            add(SensorKind.noise, a.grid_code, *near(a.lat, a.lon), site="construction")
        elif a.kind == PoiKind.school:
            add(SensorKind.noise, a.grid_code, *near(a.lat, a.lon, 30), site="school")
        elif a.kind == PoiKind.low_lying:
            for _ in range(2):
                add(SensorKind.water_depth, a.grid_code, *near(a.lat, a.lon, 25), site="low_lying")
    # A device placed near a place on a grid border may sit in the neighbour grid: record where it is.
    return [Device(d.device_id, d.kind, d.lat, d.lon, g.code, d.site, d.phase)
            for d in out if (g := registry.locate(d.lat, d.lon)) is not None]


def barbecue_hours(hour: float) -> bool:
    return hour >= 17.5 or hour < 1.5


def night(hour: float) -> bool:
    return hour >= 22 or hour < 6


def reading(d: Device, hour: float, rain_depth: float, rng: random.Random) -> float:
    """The device's value at this local hour; rain_depth is the water over low-lying roads now (cm)."""
    k = d.kind
    if k is SensorKind.noise:
        base = 42.0 if night(hour) else 51.0 + 3 * math.sin((hour - 8) / 14 * math.pi)
        if d.site == "market" and barbecue_hours(hour):
            base += 10 + 6 * d.phase
        elif d.site == "construction" and (7 <= hour < 19 or d.phase > 0.85):   # some sites work at night
            base += 14
        elif d.site == "school" and 7 <= hour < 17:
            base += 6
        return round(base + rng.gauss(0, 2.5), 1)
    if k is SensorKind.cooking_fume:
        if barbecue_hours(hour):
            return round(max(0.05, rng.lognormvariate(math.log(1.4 + 1.4 * d.phase), 0.35)), 2)
        return round(max(0.02, rng.gauss(0.4 + 0.3 * d.phase, 0.15)), 2)
    if k is SensorKind.water_depth:
        return round(max(0.0, rain_depth * (0.6 + 0.8 * d.phase) + rng.gauss(0, 0.4)), 1) if rain_depth > 0 else 0.0
    if k is SensorKind.bin_fill:
        # Collections at 06:00 and 16:00; bins round markets fill faster and overflow at night.
        since = (hour - 6) % 24 if (hour - 6) % 24 < 10 else (hour - 16) % 24
        rate = 6 + 8 * d.phase + (6 if d.site == "market" else 0)
        return round(min(100.0, since * rate + rng.uniform(0, 5)), 1)
    if k is SensorKind.manhole:
        return round(abs(rng.gauss(0, 0.8)), 2)
    return 1.0 if (hour >= 18.5 or hour < 6) else 0.0   # street light: on at night


def over_limit(d: Device, value: float, hour: float) -> str | None:
    """The alert code when a reading crosses the device's threshold."""
    k = d.kind
    if k is SensorKind.noise and value > NOISE_LIMIT[1 if night(hour) else 0] + 10:
        return "over_limit"
    if k is SensorKind.cooking_fume and value > FUME_LIMIT:
        return "over_limit"
    if k is SensorKind.water_depth and value > WATER_ALERT_CM:
        return "waterlogging"
    if k is SensorKind.bin_fill and value >= BIN_ALERT:
        return "overflow"
    return None
