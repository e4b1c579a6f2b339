"""The simulated sensor fleet, how each kind of device reads over a day, and what it goes through besides.

Devices sit at fixed points (so the same coordinates come back, as in a real deployment), more of them
in the centre, fume and noise sensors round the food markets, water gauges at the low-lying roads. Covers
get knocked loose and lamps fail until someone repairs them; a device raises one alarm for a problem and
raises it again only once its case is resolved; a repaired device reads normal while the worker verifies it,
and one "repaired" in name only (虚假办结) goes on alarming.
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
COLLECTIONS = (6.0, 16.0)   # local hours the bins are emptied
# The category of each kind's alarms (the worker maps kinds the same way: streams/classify/rules.yaml).
LABEL_OF_KIND = {SensorKind.manhole: "井盖缺损", SensorKind.water_depth: "道路积水", SensorKind.cooking_fume: "油烟污染",
                 SensorKind.noise: "噪声扰民", SensorKind.bin_fill: "垃圾满溢", SensorKind.street_light: "路灯故障"}
# Faults a day per device that last until repaired: covers knocked loose or stolen, lamps burnt out.
FAULTS_PER_DAY = {SensorKind.manhole: 1 / 40, SensorKind.street_light: 1 / 60}


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
        # Collections at 06:00 and 16:00: most bins never fill between them; a few busy ones overflow by noon or
        # in the evening, and the fullest others just before the morning round.
        since = (hour - 6) % 24 if (hour - 6) % 24 < 10 else (hour - 16) % 24
        rate = 2 + 4.5 * d.phase + (8 if d.phase > 0.97 else 0) + (6 if d.site == "market" else 0)
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


def normal(d: Device, hour: float, rng: random.Random) -> float:
    """A reading well inside the limits: a device repaired, a nuisance stopped, a bin emptied."""
    k = d.kind
    if k is SensorKind.noise:
        return round(NOISE_LIMIT[1 if night(hour) else 0] - rng.uniform(5, 12), 1)
    if k is SensorKind.cooking_fume:
        return round(rng.uniform(0.2, 0.9), 2)
    if k is SensorKind.water_depth:
        return round(rng.uniform(0, 3), 1)
    if k is SensorKind.bin_fill:
        return round(rng.uniform(5, 40), 1)
    return reading(d, hour, 0.0, rng)   # a cover sits flat, a lamp switches by the hour


def settles(d: Device, hour: float) -> float:
    """Hours from `hour` until the device's daily cycle no longer brings the problem straight back after a repair:
    an emptied bin until the next round, a market stall stopped for the night until the stalls close."""
    if d.kind is SensorKind.bin_fill:
        return min((c - hour) % 24 for c in COLLECTIONS)
    if d.site == "market" and barbecue_hours(hour):
        return (1.5 - hour) % 24
    return 0.0


class Conditions:
    """Per device: a fault that lasts until repaired, an alarm raised and not yet resolved, the time a repaired
    device reads normal through, a false repair whose next alarm reopens its case instead of opening one."""

    def __init__(self, devices: list[Device], rng: random.Random, faults_per_reading: dict[SensorKind, float]):
        self.rng = rng
        self.per_reading = faults_per_reading
        self.faults: dict[str, tuple[float, str]] = {d.device_id: fault(d) for d in devices
                                                     if d.kind is SensorKind.street_light and d.phase < 0.03}
        self.alarmed: dict[str, bool] = {}
        self.normal_until: dict[str, float] = {}
        self.recheck: dict[str, str] = {}

    def observe(self, d: Device, t: float, hour: float, value: float, alert: str | None
                ) -> tuple[float, str | None, str | None]:
        """(value, the code of an alarm it raises now or None, the falsely closed case that alarm reopens)."""
        dev = d.device_id
        until = self.normal_until.get(dev)
        if until is not None:
            if t <= until:
                return normal(d, hour, self.rng), None, None
            del self.normal_until[dev]
        held = self.faults.get(dev)
        if held is None and d.kind in FAULTS_PER_DAY and self.rng.random() < self.per_reading[d.kind]:
            held = self.faults[dev] = fault(d)
        if held is not None:
            value, alert = still(d, held[0], self.rng), held[1]
        if alert is None or dev in self.alarmed:
            return value, None, None
        self.alarmed[dev] = True
        return value, alert, self.recheck.pop(dev, None)

    def repaired(self, d: Device, until: float) -> None:
        """Resolved and fixed: normal readings through `until` (the worker's hold time and then some)."""
        for kept in (self.faults, self.alarmed, self.recheck):
            kept.pop(d.device_id, None)
        self.normal_until[d.device_id] = until

    def not_repaired(self, d: Device, case_id: str, alarm: tuple[float, str]) -> None:
        """Resolved in name only: the device goes on alarming; its next alarm is the case's, not a new one."""
        self.alarmed.pop(d.device_id, None)
        self.faults.setdefault(d.device_id, alarm)
        self.recheck[d.device_id] = case_id


def fault(d: Device) -> tuple[float, str]:
    """What a broken device reads: a cover gone or tilted, a lamp dark."""
    if d.kind is SensorKind.manhole:
        return (90.0, "missing") if d.phase > 0.5 else (round(20 + 20 * d.phase, 1), "tilted")
    return 0.0, "fault"


def still(d: Device, value: float, rng: random.Random) -> float:
    """A problem going on at the level it alarmed at, never below it (it stays over every limit)."""
    if d.kind in (SensorKind.noise, SensorKind.water_depth):
        return round(value + rng.uniform(0, 2), 1)
    if d.kind is SensorKind.cooking_fume:
        return round(value * rng.uniform(1.0, 1.15), 2)
    if d.kind is SensorKind.bin_fill:
        return round(min(100.0, value + rng.uniform(0, 5)), 1)
    return value
