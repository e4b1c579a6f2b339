"""Generated dashboards against npm @grafana/schema (tsc --strict), and the committed provisioning tree
against a fresh build. No Grafana needed."""
from __future__ import annotations

import filecmp
import json

import pytest

from cityops.settings import Settings
from dashboards import grafana, provisioning, typecheck
from dashboards.units import Units

needs_tsc = pytest.mark.skipif(not typecheck.available(),
                               reason=f"{typecheck.TSC} absent: run `npm ci --prefix tests/tsc` (make setup does)")


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict]:
    return grafana.dashboards(Units.of(Settings()))


@needs_tsc
def test_every_dashboard_type_checks(dashboards):
    result = typecheck.check(dashboards)
    assert result.ok, result.output


@needs_tsc
@pytest.mark.parametrize("spoil, expected", [
    (lambda d: d.update(refresh=5), "not assignable to type 'string'"),
    (lambda d: d["panels"][0]["options"].update(graphMode="sparkle"), '"sparkle"'),
    (lambda d: d["panels"][0]["gridPos"].update(w="wide"), "not assignable to type 'number'"),
])
def test_a_wrong_type_fails_the_check(dashboards, spoil, expected):
    bad = json.loads(json.dumps(dashboards[grafana.MAIN_UID]))
    spoil(bad)
    result = typecheck.check({"bad": bad})
    assert not result.ok
    assert expected in result.output


def test_cockpit_shape(dashboards):
    main = dashboards[grafana.MAIN_UID]
    assert main["refresh"] == "5s"
    assert [v["name"] for v in main["templating"]["list"]] == ["district", "street"]
    titles = {p["title"] for p in main["panels"]}
    assert {"烧烤油烟一张图", "“721”工作法", "实时告警", "问题多发点位（近30日）", "死信率"} <= titles
    for p in main["panels"]:
        assert p["datasource"]["type"] == "grafana-clickhouse-datasource"
        (target,) = p["targets"]
        assert target["format"] == (0 if p["type"] == "timeseries" else 1)
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
    # one drill-down per district, each pinned to its district
    districts = [d for uid, d in dashboards.items() if uid != grafana.MAIN_UID]
    assert len(districts) == len(Units.of(Settings()).districts)
    for d in districts:
        (var,) = [v for v in d["templating"]["list"] if v["name"] == "district"]
        assert var["type"] == "constant" and d["uid"].endswith(var["query"])


def test_open_cases_by_level_and_by_way_in_are_on_every_cockpit(dashboards):
    """Where every case stands at each of the five levels and by how it came in, headed in Chinese."""
    for d in dashboards.values():
        panels = {p["title"]: p for p in d["panels"]}
        assert {"在办与超期（按层级）", "在办与超期（按来源与发现方式）", "受理来源与发现方式",
                "各部门在办案件（按层级）"} <= set(panels)
        (rename,) = panels["各部门在办案件（按层级）"]["transformations"]
        sql = panels["各部门在办案件（按层级）"]["targets"][0]["rawSql"]
        for level, name in (("grid", "网格级"), ("community", "社区级"), ("street", "街道级"), ("district", "区县级"),
                            ("city", "市级")):
            assert f"AS tier_{level}" in sql and rename["options"]["renameByName"][f"tier_{level}"] == name
    rules = {r["title"] for r in provisioning.alerting_file(env={})["groups"][0]["rules"]}
    assert {"部门签收超时", "紧急案件未派单"} <= rules


def test_committed_provisioning_is_up_to_date(tmp_path):
    """`cityops dashboards build dashboards` was run after the last change to the definitions."""
    provisioning.build(tmp_path, Units.of(Settings()), env={})
    fresh, committed = tmp_path / "provisioning", provisioning.Path(__file__).parent.parent / "dashboards" / "provisioning"
    diff = filecmp.dircmp(fresh, committed)
    stale = []

    def walk(d):
        stale.extend(d.left_only + d.right_only + d.diff_files)
        for sub in d.subdirs.values():
            walk(sub)

    walk(diff)
    assert not stale, f"run `cityops dashboards build dashboards`: stale {stale}"


def test_provisioning_escapes_dollars_but_keeps_env_references():
    doc = provisioning.alerting_file(env={})
    sql = doc["groups"][0]["rules"][-1]["data"][0]["model"]["rawSql"]
    assert "$$__timeFilter(failed_at)" in sql and "$__" not in sql.replace("$$__", "")
    urls = [r["settings"]["url"] for cp in doc["contactPoints"] for r in cp["receivers"]]
    assert all(u.startswith("${CITYOPS_PAGER_URL}/departments/") for u in urls)
    ds = provisioning.datasource(provisioning.Target())["datasources"][0]
    assert ds["secureJsonData"]["password"] == "${CLICKHOUSE_READER_PASSWORD}"
    assert ds["jsonData"]["username"] == "cityops_reader"
