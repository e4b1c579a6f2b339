"""Check a registry's files: bad codes, broken polygons, overlaps, gaps, addresses outside their grid.

Unlike the loader this reads everything and reports every problem it finds.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import shapely
from shapely.strtree import STRtree

from cityops.registry.files import RegistryError, address_of, grid_of, read_address_rows, read_features

# GB/T 2260 province-level prefixes (11 Beijing … 65 Xinjiang, 71 Taiwan, 81/82 HK/Macau).
_PROVINCES = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
              50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82}
# Overlaps and gaps smaller than this share of a grid are drawing noise (shared borders, rounding).
_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Issue:
    severity: str      # error | warning
    kind: str          # bad_code, bad_geometry, overlap, gap, duplicate, address, order
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.kind}: {self.where}: {self.message}"


def validate(geojson: Path, addresses: Path) -> list[Issue]:
    issues: list[Issue] = []
    try:
        features = read_features(geojson)
    except RegistryError as e:
        return [Issue("error", "file", str(geojson), str(e))]
    grids = []
    seen: dict[str, int] = {}
    names: dict[str, set[str]] = defaultdict(set)
    for i, f in enumerate(features):
        where = f"{geojson.name} feature {i}"
        try:
            g = grid_of(f)
        except ValueError as e:
            issues.append(Issue("error", "bad_code" if "grid_code" in str(e) else "bad_geometry", where, str(e)))
            continue
        where = f"{geojson.name} feature {i} ({g.code})"
        if int(g.code[:2]) not in _PROVINCES or g.code[2:4] == "00" or g.code[4:6] == "00":
            issues.append(Issue("error", "bad_code", where, f"{g.code[:6]} is not a GB/T 2260 county-level code"))
        if "000" in (g.code[6:9], g.code[9:12], g.code[12:15]):
            issues.append(Issue("error", "bad_code", where, "street, community and grid parts start at 001"))
        if g.code in seen:
            issues.append(Issue("error", "duplicate", where, f"grid_code also used by feature {seen[g.code]}"))
            continue
        seen[g.code] = i
        if not g.polygon.is_valid:
            issues.append(Issue("error", "bad_geometry", where, shapely.is_valid_reason(g.polygon)))
            continue
        if g.polygon.area == 0:
            issues.append(Issue("error", "bad_geometry", where, "polygon has no area"))
            continue
        for level, code, name in (("district", g.district_code, g.district_name),
                                  ("street", g.street_code, g.street_name),
                                  ("community", g.community_code, g.community_name)):
            names[f"{level} {code}"].add(name)
        grids.append(g)
    for unit, ns in names.items():
        if len(ns) > 1:
            issues.append(Issue("error", "bad_code", unit, f"one code, several names: {', '.join(sorted(ns))}"))
    issues += _overlaps(grids) + _gaps(grids) + _order(grids)
    issues += _addresses(addresses, {g.code: g for g in grids})
    return issues


def _overlaps(grids) -> list[Issue]:
    polys = [g.polygon for g in grids]
    tree = STRtree(polys)
    left, right = tree.query(polys, predicate="intersects")
    out = []
    for a, b in zip(left, right):
        if a >= b:
            continue
        area = polys[a].intersection(polys[b]).area
        if area > _TOLERANCE * min(polys[a].area, polys[b].area):
            out.append(Issue("error", "overlap", f"{grids[a].code} × {grids[b].code}",
                             f"grids overlap by {area / polys[a].area:.1%} of {grids[a].code}"))
    return out


def _gaps(grids) -> list[Issue]:
    """Holes inside a street's area that no grid covers (every place must belong to a grid)."""
    by_street = defaultdict(list)
    for g in grids:
        by_street[g.street_code].append(g)
    typical = sorted(g.polygon.area for g in grids)[len(grids) // 2] if grids else 0
    out = []
    for street, gs in sorted(by_street.items()):
        union = shapely.union_all([g.polygon for g in gs])
        for part in getattr(union, "geoms", [union]):
            for ring in part.interiors:
                hole = shapely.Polygon(ring)
                if hole.area > _TOLERANCE * typical:
                    c = hole.centroid
                    out.append(Issue("error", "gap", f"street {street}",
                                     f"uncovered hole of {hole.area / typical:.2f} grids near {c.y:.5f} N {c.x:.5f} E"))
    return out


def _order(grids) -> list[Issue]:
    """Grids of a community are numbered west→east, north→south: a warning, since real data may not be."""
    by_comm = defaultdict(list)
    for g in grids:
        by_comm[g.community_code].append(g)
    out = []
    for comm, gs in sorted(by_comm.items()):
        gs.sort(key=lambda g: g.code)
        # Round to a fraction of a grid height so grids in one row compare by longitude.
        h = (gs[0].polygon.bounds[3] - gs[0].polygon.bounds[1]) / 2 or 1e-9
        keys = [(-round(g.centroid[0] / h), g.centroid[1]) for g in gs]
        if keys != sorted(keys):
            out.append(Issue("warning", "order", f"community {comm}", "grids not numbered west→east, north→south"))
    return out


def _addresses(path: Path, grids: dict) -> list[Issue]:
    try:
        rows = read_address_rows(path)
    except RegistryError as e:
        return [Issue("error", "file", str(path), str(e))]
    out = []
    for line, row in rows:
        where = f"{path.name} line {line}"
        try:
            a = address_of(row)
        except ValueError as e:
            out.append(Issue("error", "address", where, str(e)))
            continue
        g = grids.get(a.grid_code)
        if g is None:
            out.append(Issue("error", "address", where, f"grid_code {a.grid_code} is not in the grid file"))
        elif not shapely.intersects_xy(g.polygon, a.lon, a.lat):
            out.append(Issue("error", "address", where, f"({a.lat}, {a.lon}) lies outside its grid {a.grid_code}"))
    return out
