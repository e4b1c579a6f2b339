"""The 考核通报 (`cityops report monthly|weekly`): on the hand-built cases of tests/test_evaluation.py its ranking
rows are the cockpit panels' rows for the same period and the Python ranking's; it embeds everything it shows,
and the worst overdue cases' text is masked."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from cityops import evaluation as ev
from cityops.settings import get_settings
from cityops.warehouse.evaluation import ranking
from dashboards import report
from dashboards.units import Units
from tests.simulated import sim_database
from tests.test_evaluation import hand_built, store

CLI = str(Path(sys.executable).with_name("cityops"))
PHONE = "13812345678"


def _overdue_case_with_a_phone(wh) -> None:
    """Stored as an older stage might have left it: text unmasked (the report masks again)."""
    cols = ("case_id, version, event_id, source, status, occurred_at, received_at, label, code, department, tier, "
            "time_limit_minutes, confidence, district_code, street_code, due_at, overdue, escalations, text, "
            "kafka_partition, kafka_offset")
    wh.command(f"INSERT INTO case_current ({cols}) VALUES ('EV-LATE', 3, 'EV-LATE-e3', 'hotline', 'accepted', "
               f"'2026-11-20 09:00:00', '2026-11-20 09:00:00', '占道经营', '0401', '城管执法', 'district', 240, 0.9, "
               f"'370303', '370303001', '2026-11-20 13:00:00', true, 2, '门口占道 联系{PHONE}', 0, 1)")


@pytest.fixture(scope="module")
def wh(stack_env):
    client = sim_database("evaluation_report", 0)
    store(client, hand_built())
    _overdue_case_with_a_phone(client)
    return client


@pytest.mark.integration
def test_the_report_ranks_as_the_panels_and_the_ranking_do(wh):
    rules, units = ev.load_rules(), Units.of(get_settings())
    period = ev.month("2026-11")
    secs = {s.kind: s for s in report.sections(wh, rules, period, units)}
    python = [(r.rank, r.unit, r.score, r.previous_rank, r.movement_text())
              for r in ranking(wh, rules, "department", period) if r.rank is not None]
    assert python and secs["department"].board == python
    html = report.build(wh, rules, period, units, generated=datetime(2026, 12, 1, 9, 0))
    for rank, name, score, prev, move in secs["department"].board:
        assert re.search(rf'<tr data-unit="{name}"><td>{rank}</td><td>{name}</td><td>{score:.2f}</td>', html)
        assert move in html
    assert "城市运行管理考核通报（2026年11月）" in html and "对比上期 2026年10月" in html
    assert "红榜" in html and "黑榜" in html and "<svg" in html


@pytest.mark.integration
def test_the_report_embeds_everything_and_masks_the_overdue_cases(wh):
    html = report.build(wh, ev.load_rules(), ev.month("2026-11"), Units.of(get_settings()))
    assert "EV-LATE" in html and PHONE not in html and "138*****" in html and "已签收办理中" in html
    assert not re.search(r'(src|href)="(https?:)?//', html) and "@import" not in html and "<script" not in html


@pytest.mark.integration
def test_a_weekly_report_names_its_iso_week(wh):
    html = report.build(wh, ev.load_rules(), ev.week("2026-W45"), Units.of(get_settings()))
    assert "2026年第45周" in html and "对比上期 2026年第44周" in html


def _seed(data: Path) -> dict[str, str]:
    """A warehouse of the test's own under tmp_path, filled by a child process (chdb: one data path per process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYOPS_")}
    env |= {"CITYOPS_DATA_DIR": str(data), "CITYOPS_CLICKHOUSE_URL": f"chdb://{data / 'clickhouse'}"}
    seed = ("import clickhouse_connect, sys; sys.path.insert(0, %r)\n"
            "from cityops.warehouse.migrate import migrate\n"
            "from tests.test_evaluation import hand_built, store\n"
            "c = clickhouse_connect.get_client(dsn=%r); migrate(c); store(c, hand_built())\n"
            % (str(Path(__file__).parents[1]), f"chdb://{data / 'clickhouse'}"))
    subprocess.run([sys.executable, "-c", seed], env=env, check=True, timeout=300)
    return env


@pytest.mark.integration
def test_the_command_writes_the_monthly_report_and_refuses_a_bad_month(tmp_path):
    env = _seed(tmp_path / "data")
    out = tmp_path / "考核通报.html"
    r = subprocess.run([CLI, "report", "monthly", "--month", "2026-11", "--output", str(out)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "城管执法" in out.read_text(encoding="utf-8")
    bad = subprocess.run([CLI, "report", "monthly", "--month", "2026-13", "--output", str(out)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "YYYY-MM" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1



@pytest.mark.integration
def test_the_district_map_colours_each_district_by_its_score(wh):
    from dashboards.simdata import registry_grids

    units, rules, period = Units.of(get_settings()), ev.load_rules(), ev.month("2026-11")
    where = report.centres(registry_grids(get_settings()))
    html = report.build(wh, rules, period, units, where=where)
    svg = html.split("区县考核得分分布", 1)[1].split("</svg>", 1)[0]
    assert svg.count("<circle") == len(units.districts) == len(where)
    scored = {r.unit: r.score for r in ranking(wh, rules, "district", period) if r.score is not None}
    assert scored
    for code, score in scored.items():
        assert f"{units.districts[code]} {score:.1f}</text>" in svg
    assert all(36 < lat < 38 and 117 < lon < 119 for lat, lon in where.values())
