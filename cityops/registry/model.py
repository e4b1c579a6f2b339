"""The city's units: district → street → community → grid, and standard addresses placed in grids."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from shapely.geometry import Polygon


class PoiKind(StrEnum):
    """Named places the simulator and the analysts care about."""

    market = "market"              # food markets and barbecue streets (烧烤街, 便民市场)
    school = "school"
    construction = "construction"  # building sites (施工扰民, 渣土)
    low_lying = "low_lying"        # roads and underpasses that flood in rain (易涝点)
    residential = "residential"    # compounds with property management (小区)


@dataclass(frozen=True, slots=True)
class Grid:
    code: str               # 15 digits: district 6 + street 3 + community 3 + grid 3
    name: str
    district_name: str
    street_name: str
    community_name: str
    centroid: tuple[float, float]   # (lat, lon)
    polygon: Polygon = field(repr=False, compare=False)   # x = lon, y = lat

    @property
    def district_code(self) -> str:
        return self.code[:6]

    @property
    def street_code(self) -> str:
        return self.code[:9]

    @property
    def community_code(self) -> str:
        return self.code[:12]


@dataclass(frozen=True, slots=True)
class StandardAddress:
    address_id: str
    text: str               # the standard form, e.g. 山东省淄博市张店区柳泉路128号
    grid_code: str
    lat: float
    lon: float
    road: str = ""
    number: int | None = None
    poi: str = ""           # named place at this address, if any
    kind: PoiKind | None = None

    @property
    def district_code(self) -> str:
        return self.grid_code[:6]


@dataclass(frozen=True, slots=True)
class Unit:
    """A district, street or community: code, name and the codes of the units below it."""

    code: str
    name: str
    parent: str = ""
