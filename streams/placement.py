"""Placement: coordinates → grid (point in polygon behind the registry's spatial index), else address text →
standard address → grid. Agents depend on the small `Placer` interface, not on the registry's internals."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Place:
    grid_code: str
    district_code: str
    street_code: str
    lat: float | None
    lon: float | None
    how: str  # gps | address


class Placer(Protocol):
    def in_city(self, lat: float, lon: float) -> bool: ...

    def place(self, lat: float | None, lon: float | None, address: str | None) -> Place | None: ...


class _Memo(dict):
    """Answers by point, computed on a miss (a dict hit stays C-level); emptied when it grows past `size`."""

    def __init__(self, compute, size: int):
        super().__init__()
        self.compute, self.size = compute, size

    def __missing__(self, key):
        if len(self) > self.size:
            self.clear()
        value = self[key] = self.compute(*key)
        return value


class RegistryPlacer:
    """The city registry as a Placer. Answers for coordinates are cached: sensors do not move, so a device's
    readings ask the same point again and again, and a dict hit costs far less than a point in polygon."""

    CACHE = 200_000

    def __init__(self, registry):
        self.registry = registry
        self._in_city = _Memo(registry.in_city, self.CACHE)
        self._gps = _Memo(self._locate, self.CACHE)

    def in_city(self, lat: float, lon: float) -> bool:
        return self._in_city[lat, lon]

    def _locate(self, lat: float, lon: float) -> Place | None:
        g = self.registry.locate(lat, lon)
        return Place(g.code, g.code[:6], g.code[:9], lat, lon, "gps") if g is not None else None

    def place(self, lat: float | None, lon: float | None, address: str | None) -> Place | None:
        if lat is not None and lon is not None:
            p = self._gps[lat, lon]
            if p is not None:
                return p
        if address:
            a = self.registry.geocode(address)
            if a is not None:
                # The standard address's point stands in for missing coordinates (duplicate checks need one).
                return Place(a.grid_code, a.grid_code[:6], a.grid_code[:9],
                             lat if lat is not None else a.lat, lon if lon is not None else a.lon, "address")
        return None


@lru_cache(maxsize=1)
def default_placer() -> Placer:
    from cityops.registry import CityRegistry

    return RegistryPlacer(CityRegistry.default())
