"""The city registry: generated Zibo city, GeoJSON/CSV round trip, locate, geocode, validation."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from cityops.registry import CityRegistry, PoiKind
from cityops.registry.files import ADDRESSES, GRIDS, RegistryError
from cityops.registry.validate import validate

CLI = str(Path(sys.executable).with_name("cityops"))
ZIBO = {"370302": "淄川区", "370303": "张店区", "370304": "博山区", "370305": "临淄区", "370306": "周村区",
        "370321": "桓台县", "370322": "高青县", "370323": "沂源县"}


@pytest.fixture(scope="module")
def city() -> CityRegistry:
    return CityRegistry.generated()


@pytest.fixture(scope="module")
def exported(city, tmp_path_factory):
    d = tmp_path_factory.mktemp("registry")
    city.export(d)
    return d


def test_generated_city_shape(city):
    assert {c: u.name for c, u in city.districts.items()} == ZIBO
    assert 1400 <= len(city.grids) <= 1700
    for g in city.grids.values():
        assert len(g.code) == 15 and g.code.isdigit()
        assert g.code.startswith(g.community_code) and g.community_code.startswith(g.street_code)
        assert g.street_code.startswith(g.district_code) and len(g.street_code) == 9
        assert city.locate(*g.centroid) is g
    zd = city.locate(36.81, 118.05)
    assert zd is not None and zd.district_name == "张店区"
    for kind in PoiKind:
        assert city.pois(kind), kind
    assert any(p.poi == "八大局便民市场" for p in city.pois(PoiKind.market))


def test_generated_city_is_deterministic(city):
    again = CityRegistry.generated()
    assert list(again.grids) == list(city.grids)
    assert [a.text for a in again.addresses] == [a.text for a in city.addresses]


def test_grids_numbered_west_to_east_north_to_south(city):
    comm = city.grids_of("370303001001")
    assert [g.code[-3:] for g in comm] == ["001", "002", "003", "004", "005", "006"]
    first, second, fourth = comm[0], comm[1], comm[3]
    assert second.centroid[1] > first.centroid[1] and second.centroid[0] == first.centroid[0]
    assert fourth.centroid[0] < first.centroid[0]


def test_locate_agrees_with_strtree(city):
    rng = random.Random(7)
    pts = [(rng.uniform(36.1, 37.25), rng.uniform(117.75, 118.4)) for _ in range(5000)]
    # Points near grid borders too, where the bucket index falls back to polygon tests.
    pts += [(g.polygon.bounds[1] + 1e-7, g.polygon.bounds[0] + rng.uniform(0, 0.005)) for g in city.grids.values()]
    for lat, lon in pts:
        assert city.locate(lat, lon) == city.locate_slow(lat, lon)


def test_in_city(city):
    assert city.in_city(36.81, 118.05)
    assert not city.in_city(0.0, 0.0)
    assert not city.in_city(39.9, 116.4)       # Beijing
    assert city.locate(39.9, 116.4) is None


@pytest.mark.parametrize("text", ["山东省淄博市张店区{road}{n}号", "张店{road}{n}号附近", "淄博市张店区 {road}{n}号门口",
                                  "张店区{road}{n}号对面"])
def test_geocode_tolerant(city, text):
    a = next(a for a in city.addresses if a.district_code == "370303" and a.number and not a.poi)
    hit = city.geocode(text.format(road=a.road, n=a.number))
    assert hit is not None and hit.road == a.road and hit.district_code == "370303"
    assert hit.number == a.number


def test_geocode_places_numbers_and_nonsense(city):
    assert city.geocode("八大局便民市场门口").poi == "八大局便民市场"
    a = next(a for a in city.addresses if a.district_code == "370303" and a.number and a.number > 200)
    fw = str(a.number + 2).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    near = city.geocode(f"张店区{a.road}{fw}号")
    assert near is not None and near.road == a.road and abs(near.number - a.number) <= 40
    assert city.geocode("北京市朝阳区建国路") is None
    assert city.geocode("") is None


def test_round_trip_through_files(city, exported):
    loaded = CityRegistry.from_dir(exported)
    assert list(loaded.grids) == list(city.grids)
    assert len(loaded.addresses) == len(city.addresses)
    assert {c: u.name for c, u in loaded.districts.items()} == ZIBO
    for g in list(city.grids.values())[::97]:
        assert loaded.locate(*g.centroid).code == g.code
    a = city.pois(PoiKind.market)[0]
    assert loaded.geocode(a.poi).grid_code == a.grid_code
    assert validate(exported / GRIDS, exported / ADDRESSES) == []


def _broken(exported, tmp_path):
    doc = json.loads((exported / GRIDS).read_text())
    feats = doc["features"]
    feats[1]["geometry"] = feats[0]["geometry"]                # overlap
    feats[2]["properties"]["grid_code"] = "37030300100100"     # 14 digits
    feats[3]["properties"]["grid_code"] = "990303001001001"    # no such province
    # A hole: drop a grid enclosed by its street's other grids.
    inner = next(i for i, f in enumerate(feats) if f["properties"]["grid_code"] == "370303001003002")
    del feats[inner]
    (tmp_path / GRIDS).write_text(json.dumps(doc, ensure_ascii=False))
    rows = (exported / ADDRESSES).read_text().splitlines()
    rows[5] = rows[5].replace(",36.", ",39.", 1)                  # outside its grid
    (tmp_path / ADDRESSES).write_text("\n".join(rows) + "\n")
    return tmp_path


def test_validate_finds_problems(exported, tmp_path):
    kinds = {i.kind for i in validate(*(p / n for p, n in ((_broken(exported, tmp_path), GRIDS), (tmp_path, ADDRESSES))))}
    assert {"overlap", "bad_code", "gap", "address"} <= kinds


def test_loader_names_the_bad_feature(exported, tmp_path):
    _broken(exported, tmp_path)
    with pytest.raises(RegistryError, match="feature 2: grid_code"):
        CityRegistry.from_dir(tmp_path)


def test_cli_validate_exit_codes(exported, tmp_path):
    run = lambda p: subprocess.run([CLI, "registry", "validate", str(p)],
                                   capture_output=True, text=True)
    ok = run(exported)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = run(_broken(exported, tmp_path))
    assert bad.returncode == 1
    assert "overlap" in bad.stdout and "gap" in bad.stdout


def test_cli_export(tmp_path):
    r = subprocess.run([CLI, "registry", "export", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / GRIDS).exists() and (tmp_path / ADDRESSES).exists()
