"""CityRegistry: the city's grids and standard addresses, and the lookups every event needs.

`locate` runs once per event (10k events/s), so it avoids shapely's per-call query cost where it can:
a uniform bucket index over the city maps most points straight to a grid (buckets lying wholly inside
one grid); only buckets on grid borders test the few candidate polygons. Repeated coordinates (fixed
sensors) hit a small dict first.
"""
from __future__ import annotations

import math
import statistics
from functools import lru_cache
from pathlib import Path

import shapely
from shapely.geometry import box
from shapely.strtree import STRtree

from cityops.registry.files import ADDRESSES, GRIDS, read, write
from cityops.registry.geocode import AddressIndex
from cityops.registry.model import Grid, PoiKind, StandardAddress, Unit
from cityops.registry.zibo import CITY, PROVINCE, generate

_CACHE_MAX = 200_000
# "Inside the city" allows this margin (degrees, ~5 km) round the grids: devices and callers sit on
# roads between districts; (0, 0) or another province is impossible.
CITY_MARGIN = 0.05


class CityRegistry:
    def __init__(self, name: str, districts: list[Unit], streets: list[Unit], communities: list[Unit],
                 grids: list[Grid], addresses: list[StandardAddress], prefixes: tuple[str, ...] = ()):
        self.name = name
        self.districts: dict[str, Unit] = {u.code: u for u in districts}
        self.streets: dict[str, Unit] = {u.code: u for u in streets}
        self.communities: dict[str, Unit] = {u.code: u for u in communities}
        self.grids: dict[str, Grid] = {g.code: g for g in sorted(grids, key=lambda g: g.code)}
        self.addresses: list[StandardAddress] = addresses
        self._grid_list = list(self.grids.values())
        self.tree = STRtree([g.polygon for g in self._grid_list])
        self._build_buckets()
        hull = shapely.convex_hull(shapely.union_all([shapely.envelope(g.polygon) for g in self._grid_list]))
        self.extent = hull.buffer(CITY_MARGIN)
        shapely.prepare(self.extent)
        self._bounds = self.extent.bounds
        self._index = AddressIndex(addresses, {c: u.name for c, u in self.districts.items()},
                                   {c: u.name for c, u in self.communities.items()}, prefixes)
        self._located: dict[tuple[float, float], Grid | None] = {}

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def generated(cls) -> CityRegistry:
        return cls("淄博市 (generated)", *generate(), prefixes=(PROVINCE, CITY))

    @classmethod
    def load(cls, geojson: Path | str, csv: Path | str) -> CityRegistry:
        return cls(*read(Path(geojson), Path(csv)))

    @classmethod
    def from_dir(cls, path: Path | str) -> CityRegistry:
        return cls.load(Path(path) / GRIDS, Path(path) / ADDRESSES)

    @staticmethod
    @lru_cache(maxsize=1)
    def default() -> CityRegistry:
        """The registry named by CITYOPS_REGISTRY (a directory with grids.geojson + addresses.csv),
        else the generated Zibo city. Built once per process."""
        from cityops.settings import get_settings

        path = get_settings().registry
        return CityRegistry.from_dir(path) if path else CityRegistry.generated()

    def _build_buckets(self) -> None:
        widths = [g.polygon.bounds[2] - g.polygon.bounds[0] for g in self._grid_list]
        heights = [g.polygon.bounds[3] - g.polygon.bounds[1] for g in self._grid_list]
        self._w = statistics.median(widths) / 2 if widths else 1.0
        self._h = statistics.median(heights) / 2 if heights else 1.0
        minx, miny = (min(g.polygon.bounds[0] for g in self._grid_list), min(g.polygon.bounds[1] for g in self._grid_list)) if widths else (0.0, 0.0)
        self._x0, self._y0 = minx, miny
        cands: dict[tuple[int, int], list[Grid]] = {}
        for g in self._grid_list:
            x1, y1, x2, y2 = g.polygon.bounds
            for i in range(self._ix(x1), self._ix(x2) + 1):
                for j in range(self._iy(y1), self._iy(y2) + 1):
                    cands.setdefault((i, j), []).append(g)
        self._buckets: dict[tuple[int, int], Grid | tuple[Grid, ...]] = {}
        for (i, j), gs in cands.items():
            cell = box(self._x0 + i * self._w, self._y0 + j * self._h,
                       self._x0 + (i + 1) * self._w, self._y0 + (j + 1) * self._h)
            covering = [g for g in gs if g.polygon.covers(cell)]
            self._buckets[(i, j)] = covering[0] if len(gs) == 1 and covering else tuple(gs)
        for g in self._grid_list:
            shapely.prepare(g.polygon)

    def _ix(self, x: float) -> int:
        return math.floor((x - self._x0) / self._w)

    def _iy(self, y: float) -> int:
        return math.floor((y - self._y0) / self._h)

    # -- lookups ------------------------------------------------------------------------------
    def locate(self, lat: float, lon: float) -> Grid | None:
        """The grid containing the point (on a shared border: the lower code), or None."""
        key = (lat, lon)
        hit = self._located.get(key, False)
        if hit is not False:
            return hit
        entry = self._buckets.get((self._ix(lon), self._iy(lat)))
        if entry is None or isinstance(entry, Grid):
            found = entry
        else:
            found = next((g for g in entry if shapely.intersects_xy(g.polygon, lon, lat)), None)
        if len(self._located) >= _CACHE_MAX:
            self._located.clear()
        self._located[key] = found
        return found

    def locate_slow(self, lat: float, lon: float) -> Grid | None:
        """The same answer through the STRtree alone (reference for tests and for odd geometries)."""
        idx = self.tree.query(shapely.Point(lon, lat), predicate="intersects")
        return self._grid_list[min(idx)] if len(idx) else None

    def in_city(self, lat: float, lon: float) -> bool:
        """Whether a point can belong to this city at all (within a few km of its grids)."""
        x1, y1, x2, y2 = self._bounds
        if not (x1 <= lon <= x2 and y1 <= lat <= y2):
            return False
        return bool(shapely.contains_xy(self.extent, lon, lat))

    def in_city_many(self, lats: list[float], lons: list[float]) -> list[bool]:
        """`in_city` for many points in one vectorised call (the sink checks whole batches)."""
        return shapely.contains_xy(self.extent, lons, lats).tolist() if lats else []

    def geocode(self, address_text: str) -> StandardAddress | None:
        return self._index.lookup(address_text)

    def place(self, lat: float | None, lon: float | None, address: str | None) -> tuple[Grid | None, str]:
        """Coordinates first, then the address text. Returns (grid, how): how is gps, address or ''."""
        if lat is not None and lon is not None:
            g = self.locate(lat, lon)
            if g:
                return g, "gps"
        if address:
            a = self.geocode(address)
            if a:
                return self.grids.get(a.grid_code), "address"
        return None, ""

    def grid(self, code: str) -> Grid | None:
        return self.grids.get(code)

    def grids_of(self, unit_code: str) -> list[Grid]:
        """Grids of a district (6 digits), street (9) or community (12)."""
        return [g for g in self._grid_list if g.code.startswith(unit_code)]

    def pois(self, kind: PoiKind | str | None = None) -> list[StandardAddress]:
        return [a for a in self.addresses if a.poi and (kind is None or a.kind == kind)]

    def __repr__(self) -> str:
        return (f"CityRegistry({self.name!r}: {len(self.districts)} districts, {len(self.streets)} streets, "
                f"{len(self.communities)} communities, {len(self.grids)} grids, {len(self.addresses)} addresses)")

    def export(self, directory: Path | str) -> tuple[Path, Path]:
        """Write grids.geojson + addresses.csv (the format `load` reads)."""
        return write(self, Path(directory))
