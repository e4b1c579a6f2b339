"""A registry on disk: grids as GeoJSON polygons (with codes and names), standard addresses as CSV.

The generated city is exported in this same format, so the loader is exercised on it.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from shapely.geometry import mapping, shape

from cityops.registry.model import Grid, PoiKind, StandardAddress, Unit

GRIDS = "grids.geojson"
ADDRESSES = "addresses.csv"
GRID_PROPS = ("grid_code", "grid_name", "district_name", "street_name", "community_name")
ADDRESS_COLUMNS = ("address_id", "address", "grid_code", "lat", "lon", "road", "number", "poi", "kind")


class RegistryError(ValueError):
    """The registry files cannot be read; the message names the file, the feature/line and the field."""


def write(registry, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    features = [{"type": "Feature",
                 "properties": {"grid_code": g.code, "grid_name": g.name, "district_name": g.district_name,
                                "street_name": g.street_name, "community_name": g.community_name},
                 "geometry": mapping(g.polygon)} for g in registry.grids.values()]
    gj = directory / GRIDS
    gj.write_text(json.dumps({"type": "FeatureCollection", "name": registry.name, "features": features},
                             ensure_ascii=False), encoding="utf-8")
    path = directory / ADDRESSES
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(ADDRESS_COLUMNS)
        for a in registry.addresses:
            w.writerow([a.address_id, a.text, a.grid_code, a.lat, a.lon, a.road,
                        "" if a.number is None else a.number, a.poi, a.kind or ""])
    return gj, path


def read_features(path: Path) -> list[dict]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RegistryError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise RegistryError(f"{path}: expected a GeoJSON FeatureCollection")
    return doc["features"]


def read_address_rows(path: Path) -> list[tuple[int, dict]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("address", "grid_code", "lat", "lon") if c not in (reader.fieldnames or [])]
            if missing:
                raise RegistryError(f"{path}: missing column(s) {', '.join(missing)}")
            return [(i, row) for i, row in enumerate(reader, start=2)]
    except FileNotFoundError:
        raise RegistryError(f"{path}: no such file") from None


def grid_of(feature: dict) -> Grid:
    """One feature as a Grid; raises ValueError naming the field."""
    props = feature.get("properties") or {}
    code = str(props.get("grid_code", ""))
    if not (len(code) == 15 and code.isdigit()):
        raise ValueError(f"grid_code {code!r} is not 15 digits")
    try:
        poly = shape(feature["geometry"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"geometry: {e}") from None
    if poly.geom_type != "Polygon":
        raise ValueError(f"geometry is a {poly.geom_type}, expected a Polygon")
    c = poly.centroid
    return Grid(code=code, name=str(props.get("grid_name") or code), district_name=str(props.get("district_name", "")),
                street_name=str(props.get("street_name", "")), community_name=str(props.get("community_name", "")),
                centroid=(round(c.y, 6), round(c.x, 6)), polygon=poly)


def address_of(row: dict) -> StandardAddress:
    number = (row.get("number") or "").strip()
    kind = (row.get("kind") or "").strip()
    try:
        lat, lon = float(row["lat"]), float(row["lon"])
    except (TypeError, ValueError):
        raise ValueError(f"lat/lon {row.get('lat')!r}, {row.get('lon')!r} are not numbers") from None
    code = (row.get("grid_code") or "").strip()
    if not (len(code) == 15 and code.isdigit()):
        raise ValueError(f"grid_code {code!r} is not 15 digits")
    if not (row.get("address") or "").strip():
        raise ValueError("address is empty")
    try:
        kind_v = PoiKind(kind) if kind else None
    except ValueError:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(PoiKind)}") from None
    return StandardAddress(address_id=(row.get("address_id") or "").strip() or code, text=row["address"].strip(),
                           grid_code=code, lat=lat, lon=lon, road=(row.get("road") or "").strip(),
                           number=int(number) if number.isdigit() else None, poi=(row.get("poi") or "").strip(),
                           kind=kind_v)


def units_of(grids: list[Grid]) -> tuple[list[Unit], list[Unit], list[Unit]]:
    d: dict[str, Unit] = {}
    s: dict[str, Unit] = {}
    c: dict[str, Unit] = {}
    for g in grids:
        d.setdefault(g.district_code, Unit(g.district_code, g.district_name))
        s.setdefault(g.street_code, Unit(g.street_code, g.street_name, g.district_code))
        c.setdefault(g.community_code, Unit(g.community_code, g.community_name, g.street_code))
    return [d[k] for k in sorted(d)], [s[k] for k in sorted(s)], [c[k] for k in sorted(c)]


def read(geojson: Path, addresses: Path) -> tuple:
    """Load strictly: the first bad feature or row stops the load with its position and field. Returns the
    registry's parts in CityRegistry's argument order (the class builds itself from them)."""
    grids = []
    for i, f in enumerate(read_features(geojson)):
        try:
            grids.append(grid_of(f))
        except ValueError as e:
            raise RegistryError(f"{geojson}: feature {i}: {e}") from None
    addrs = []
    for line, row in read_address_rows(addresses):
        try:
            addrs.append(address_of(row))
        except ValueError as e:
            raise RegistryError(f"{addresses}: line {line}: {e}") from None
    if not grids:
        raise RegistryError(f"{geojson}: no grids")
    name = geojson.parent.name or "registry"
    return (name, *units_of(grids), grids, addrs, _common_prefixes([a.text for a in addrs]))


def _common_prefixes(texts: list[str]) -> tuple[str, ...]:
    """Province/city words every standard address starts with (people leave them out)."""
    if not texts:
        return ()
    first = texts[0]
    out = []
    for marker in ("省", "市"):
        i = first.find(marker)
        if i > 0 and all(t.startswith(first[:i + 1]) for t in texts[:500]):
            out.append(first[:i + 1])
    # Strip the province first, then the city: 山东省淄博市 → (山东省, 淄博市).
    if len(out) == 2:
        out[1] = out[1][len(out[0]):]
    return tuple(out)
