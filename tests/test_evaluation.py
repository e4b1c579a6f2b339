"""考核 on a hand-built set of cases whose every rate is known: stored through the sink's decoder and store into a
migrated warehouse of the test's own, summed from `evaluation_daily` for a day, an ISO week, a month and 30
days, scored and ranked by a YAML, with movement against the previous month and 红榜 / 黑榜."""
from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cityops import evaluation as ev
from cityops.errors import UserError
from cityops.models.cases import CaseUpdate
from cityops.topics import CASES
from cityops.warehouse.evaluation import PERIOD_SUMS, period_sums, ranking
from sinks.batch import Batch
from sinks.decode import Decoder
from sinks.store import Store
from tests.simulated import sim_database

ROOT = Path(__file__).parents[1]
CST = timezone(timedelta(hours=8))
# Two units of each kind that match (department, district, street, community), and one with a single open case.
GROUPS = {
    "X": ("城管执法", "370303001001001", "占道经营", "0401"),
    "Y": ("环卫", "370302001001001", "暴露垃圾", "0102"),
    "Z": ("市政", "370304001001001", "路面破损", "0701"),
}
UNITS = {"department": {"X": "城管执法", "Y": "环卫", "Z": "市政"},
         "district": {g: grid[:6] for g, (_, grid, _, _) in GROUPS.items()},
         "street": {g: grid[:9] for g, (_, grid, _, _) in GROUPS.items()},
         "community": {g: grid[:12] for g, (_, grid, _, _) in GROUPS.items()}}


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=CST)


class Loop:
    """One case's versions as the streams emit them: a step is a new event, a bump re-emits it changed."""

    def __init__(self, case_id: str, group: str, when: datetime, tier: str = "grid", **first):
        dept, grid, label, code = GROUPS[group]
        self.case = dict(case_id=case_id, version=1, event_id=f"{case_id}-e1", source="hotline", status="created",
                         occurred_at=when, received_at=when, placed=True, grid_code=grid, district_code=grid[:6],
                         street_code=grid[:9], label=label, code=code, department=dept, tier=tier,
                         time_limit_minutes=240, confidence=0.9, **first)
        self.versions = [CaseUpdate(**self.case)]

    def bump(self, **changes) -> Loop:
        self.case = {**self.case, **changes, "version": self.case["version"] + 1}
        self.versions.append(CaseUpdate(**self.case))
        return self

    def step(self, status: str, when: datetime, **changes) -> Loop:
        n = self.case["version"] + 1
        stamp = {"dispatched": "dispatched_at", "accepted": "accepted_at", "resolved": "resolved_at"}.get(status)
        more = {stamp: when} if stamp else {}
        return self.bump(status=status, event_id=f"{self.case['case_id']}-e{n}", occurred_at=when,
                         received_at=when, **more, **changes)

    def done(self, dispatched: datetime, resolved: datetime, satisfaction: str, **resolution) -> Loop:
        """派单, 签收 ten minutes later, 办结 and 回访 the next day."""
        self.step("dispatched", dispatched).step("accepted", dispatched + timedelta(minutes=10))
        return self.step("resolved", resolved, resolution_mode="服务", **resolution).step(
            "return_visit", resolved + timedelta(days=1), satisfaction=satisfaction)


def hand_built() -> list[CaseUpdate]:
    x1 = Loop("EV-X1", "X", at(11, 3, 9)).step("dispatched", at(11, 3, 9, 10)).step("accepted", at(11, 3, 9, 30))
    x1.bump(overdue=True, tier="street", escalations=1)            # 超期升级: the same 签收, not a new step
    x1.step("resolved", at(11, 3, 13, 10), resolution_mode="管理").step("return_visit", at(11, 4, 9),
                                                                       satisfaction="不满意")
    x2 = Loop("EV-X2", "X", at(11, 5, 10), discovered_by="patrol", hot_spot=True).step("dispatched", at(11, 5, 10))
    x2.bump(accept_overdue=True).step("accepted", at(11, 5, 12, 30))
    x2.step("resolved", at(11, 5, 14), resolution_mode="服务").step("return_visit", at(11, 6, 9), satisfaction="满意")
    x2.step("reopened", at(11, 7, 9), reopen_count=1, false_closures=1, resolved_at=None, satisfaction=None,
            resolution_mode=None)
    x2.bump(overdue=True, tier="community", escalations=1)         # an escalation of the reopened case
    x2.step("resolved", at(11, 8, 10), resolution_mode="执法")
    x3 = Loop("EV-X3", "X", at(11, 10, 8), discovered_by="sensor", device_id="D-EV-1")
    x3.done(at(11, 10, 8), at(11, 10, 9), "基本满意")
    x4 = Loop("EV-X4", "X", at(11, 10, 8, 5), duplicate_of="EV-X3")   # merged into X3: counts nowhere
    x4.step("resolved", at(11, 10, 9))
    x5 = Loop("EV-X5", "X", at(10, 28, 9), tier="community").step("resolved", at(11, 2, 9))   # no 派单
    x6 = Loop("EV-X6", "X", at(10, 5, 9)).done(at(10, 5, 9), at(10, 5, 11), "满意")
    y1 = Loop("EV-Y1", "Y", at(11, 4, 9)).done(at(11, 4, 9), at(11, 4, 11), "满意")
    y2 = Loop("EV-Y2", "Y", at(11, 12, 9)).done(at(11, 12, 9), at(11, 12, 11), "满意")
    y3 = Loop("EV-Y3", "Y", at(11, 20, 9)).step("dispatched", at(11, 20, 9))
    y4 = Loop("EV-Y4", "Y", at(10, 6, 9), tier="street").step("dispatched", at(10, 6, 9))
    y4.step("accepted", at(10, 6, 9, 5)).bump(overdue=True)
    y4.step("resolved", at(10, 6, 13), resolution_mode="服务").step("return_visit", at(10, 7, 9), satisfaction="不满意")
    z1 = Loop("EV-Z1", "Z", at(11, 15, 9))
    return [v for loop in (x1, x2, x3, x4, x5, x6, y1, y2, y3, y4, z1) for v in loop.versions]


def store(wh, updates: list[CaseUpdate], first_offset: int = 0) -> None:
    """Through the sink's own decoder and store, as one batch of the `cases` topic."""
    batch = Batch()
    for i, u in enumerate(updates):
        batch.add(CASES.name, 0, first_offset + i, u.case_id.encode(), u.model_dump_json().encode())
    writer = Store(wh, threading.Event())
    for ins in Decoder((CASES,), "test-key").inserts(batch):
        writer.write(ins)


# Hand counts per group. November: X1 (overdue, escalated to the street, 签收 in time, 4 h, 不满意), X2 (patrol, hot
# spot; 办结 on time at grid level in 4 h, 签收 late, 满意; reopened as a false closure, escalated, 办结 again overdue
# at community level 72 h after its 派单), X3 (sensor, 1 h, 基本满意), X5 (opened in October, 办结 without 派单 at
# community level); Y1, Y2 (2 h each, 满意), Y3 (open); Z1 (open).
NOVEMBER = {
    "X": dict(received=3, found_active=2, recurring=1, resolved=5, resolved_on_time=3, resolved_local=4,
              dispatched_resolved=4, accepted_in_time=2, resolve_seconds=(4 + 4 + 72 + 1) * 3600, reopened=1,
              false_closures=1, visited=3, satisfied=2),
    "Y": dict(received=3, found_active=0, recurring=0, resolved=2, resolved_on_time=2, resolved_local=2,
              dispatched_resolved=2, accepted_in_time=2, resolve_seconds=2 * 2 * 3600, reopened=0,
              false_closures=0, visited=2, satisfied=2),
    "Z": dict.fromkeys(ev.SUMS, 0) | {"received": 1},
}
RULES = """
board_size: 1
min_resolved: 1
indicators:
  on_time:          {weight: 30, pass_line: 0.9, min_cases: 1}
  accepted_in_time: {weight: 10, pass_line: 0.9, min_cases: 1}
  satisfaction:     {weight: 20, pass_line: 0.9, min_cases: 1}
  reopen:           {weight: 10, pass_line: 0.05, min_cases: 1}
  active_discovery: {weight: 5, pass_line: 0.3, min_cases: 1}
  local_resolution: {weight: 5, pass_line: 0.7, min_cases: 1}
  recurrence:       {weight: 5, pass_line: 0.1, min_cases: 1}
  resolve_hours:    {weight: 5, pass_line: 24, min_cases: 1}
  false_closures:   {weight: 10, pass_line: 0, min_cases: 1, penalty: 20}
"""


@pytest.fixture(scope="module")
def wh(stack_env):
    client = sim_database("evaluation_hand", 0)
    store(client, hand_built())
    return client


@pytest.fixture
def rules(tmp_path):
    path = tmp_path / "evaluation.yaml"
    path.write_text(RULES, encoding="utf-8")
    return ev.load_rules(path)


def by_group(sums: dict[str, dict[str, int]], kind: str) -> dict[str, dict[str, int]]:
    names = {unit: g for g, unit in UNITS[kind].items()}
    return {names[unit]: s for unit, s in sums.items()}


@pytest.mark.integration
@pytest.mark.parametrize("kind", list(ev.UNIT_KINDS))
def test_a_month_sums_every_numerator_and_denominator_by_hand(wh, kind):
    assert by_group(period_sums(wh, kind, ev.month("2026-11")), kind) == NOVEMBER


@pytest.mark.integration
def test_a_day_a_week_and_thirty_days_sum_their_own_days(wh):
    day = by_group(period_sums(wh, "district", ev.day("2026-11-05")), "district")
    assert day == {"X": dict.fromkeys(ev.SUMS, 0) | dict(
        received=1, found_active=1, recurring=1, resolved=1, resolved_on_time=1, resolved_local=1,
        dispatched_resolved=1, accepted_in_time=0, resolve_seconds=4 * 3600),
        "Y": dict.fromkeys(ev.SUMS, 0) | dict(visited=1, satisfied=1)}      # Y1's 回访
    # 2026-W45 is 2 to 8 November: X1, X2 (both 办结), X5's 办结, Y1.
    week = by_group(period_sums(wh, "street", ev.week("2026-W45")), "street")
    assert week["X"] == dict(received=2, found_active=1, recurring=1, resolved=4, resolved_on_time=2,
                             resolved_local=3, dispatched_resolved=3, accepted_in_time=1,
                             resolve_seconds=(4 + 4 + 72) * 3600, reopened=1, false_closures=1, visited=2,
                             satisfied=1)
    assert (week["Y"]["received"], week["Y"]["resolved"], week["Y"]["satisfied"]) == (1, 1, 1)   # 回访 5 November
    # 30 days to 10 November: from 12 October, so X5 (opened 28 October) counts and X6 (5 October) does not.
    days30 = by_group(period_sums(wh, "community", ev.rolling30("2026-11-10")), "community")
    assert days30["X"]["received"] == 4 and days30["X"]["resolved"] == 5
    assert "Y" in days30 and days30["Y"]["visited"] == 1


@pytest.mark.integration
def test_score_rank_movement_and_boards_from_the_yaml(wh, rules):
    results = ranking(wh, rules, "department", ev.month("2026-11"))
    assert [(r.unit, r.rank, r.previous_rank, r.movement_text()) for r in results] == [
        ("环卫", 1, 2, "提升 1 位"), ("城管执法", 2, 1, "下降 1 位"), ("市政", None, None, "未排名")]
    y, x, _ = results
    # X: 按期 3/5, 签收 2/4, 满意 2/3, 重办 1/5, 主动 2/3, 不出社区 4/5, 回潮 1/3, 20.25 h, 1 虚假办结.
    expect = {"on_time": 0.6, "accepted_in_time": 0.5, "satisfaction": 2 / 3, "reopen": 0.2, "active_discovery": 2 / 3,
              "local_resolution": 0.8, "recurrence": 1 / 3, "resolve_hours": 20.25, "false_closures": 1}
    assert {k: i.value for k, i in x.indicators.items()} == pytest.approx(expect)
    assert x.score == pytest.approx((30 * 60 + 10 * 50 + 20 * 66.67 + 10 * 80 + 5 * 66.67 + 5 * 80 + 5 * 66.67
                                     + 5 * 100 + 10 * 80) / 100, abs=0.01)
    assert y.score == pytest.approx(95.0)       # all full marks but 主动发现率 0
    assert x.indicators["on_time"].passed is False and y.indicators["on_time"].passed is True
    assert x.indicators["resolve_hours"].passed is True and x.indicators["false_closures"].passed is False
    red, black = ev.boards(rules, results)
    assert [r.unit for r in red] == ["环卫"] and [r.unit for r in black] == ["城管执法"]


@pytest.mark.integration
def test_the_rollup_equals_a_recomputation_from_case_history(wh):
    """The doc's recomputation (every case version once, FINAL) gives the rollup's sums."""
    got = {r[0]: dict(zip(ev.SUMS, r[1:])) for r in wh.query(_doc_sql()["recomputation"]).result_rows}
    assert got == period_sums(wh, "district", ev.month("2026-11"))


@pytest.mark.integration
def test_a_batch_stored_again_after_a_lost_acknowledgement_counts_once(stack_env):
    client = sim_database("evaluation_replay", 0)
    cases = hand_built()
    store(client, cases)
    store(client, cases)          # the same offsets, the same deduplication token: the retry of a lost ack
    assert by_group(period_sums(client, "district", ev.month("2026-11")), "district") == NOVEMBER


def _doc_sql() -> dict[str, str]:
    """The 考核 section's SQL blocks of docs/warehouse.md, by the name in their first comment line."""
    text = (ROOT / "docs" / "warehouse.md").read_text(encoding="utf-8")
    section = text.split("## 考核", 1)[1].split("\n## ", 1)[0]
    return {re.match(r"/\* (\S+)", sql).group(1): sql for sql in re.findall(r"```sql\n(.*?)```", section, re.S)}


@pytest.mark.integration
def test_every_indicator_in_the_doc_gives_the_hand_counts(wh, rules):
    """Each indicator's SQL in docs/warehouse.md: unit, numerator, denominator, value for November's districts."""
    sql = _doc_sql()
    assert set(ev.BY_KEY) <= set(sql)
    results = {r.unit: r for r in ranking(wh, rules, "district", ev.month("2026-11"))}
    for key in ev.BY_KEY:
        for unit, num, den, value in wh.query(sql[key]).result_rows:
            want = results[unit].indicators[key]
            assert (num, den) == (pytest.approx(want.numerator), want.denominator), (key, unit)
            assert value == pytest.approx(want.value) if want.value is not None else value is None


def test_period_sums_read_only_the_rollup():
    assert "evaluation_daily" in PERIOD_SUMS and "case_history" not in PERIOD_SUMS


@pytest.mark.parametrize("text, where", [
    ("board_size: 0\nindicators: {}", "board_size"),
    ("indicators:\n  on_time: {weight: -1, pass_line: 0.9}", "indicators.on_time.weight"),
    ("indicators:\n  speed: {weight: 1, pass_line: 1}", "unknown indicator 'speed'"),
    ("indicators: [on_time", "not valid YAML"),
])
def test_a_bad_rules_file_is_refused_with_one_line(tmp_path, text, where):
    path = tmp_path / "evaluation.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as e:
        ev.load_rules(path)
    assert where in str(e.value) and "\n" not in str(e.value) and str(path) in str(e.value)


def test_the_shipped_rules_load_and_every_indicator_has_one():
    rules = ev.load_rules()
    assert set(rules.indicators) == set(ev.BY_KEY) and rules.board_size >= 1


@pytest.mark.parametrize("asked, start, end, previous", [
    (ev.day("2026-11-01"), "2026-11-01", "2026-11-02", "2026-10-31"),
    (ev.week("2026-W01"), "2025-12-29", "2026-01-05", "2025-W52"),
    (ev.month("2026-01"), "2026-01-01", "2026-02-01", "2025-12"),
    (ev.month("2026-12"), "2026-12-01", "2027-01-01", "2026-11"),
    (ev.rolling30("2026-11-30"), "2026-11-01", "2026-12-01", "30d:2026-10-31"),
])
def test_periods_and_the_one_before(asked, start, end, previous):
    assert (asked.start.isoformat(), asked.end.isoformat(), asked.previous().label) == (start, end, previous)


@pytest.mark.parametrize("make, text", [(ev.month, "2026-13"), (ev.week, "2026-W54"), (ev.day, "2026-11-31"),
                                        (ev.week, "2026-45")])
def test_a_period_written_wrong_says_how_to_write_it(make, text):
    with pytest.raises(UserError, match="write it as"):
        make(text)


def _board(wh, sql: str, first: datetime, last: datetime) -> list[tuple]:
    from dashboards.macros import ALL, QueryContext, expand

    ctx = QueryContext(first, last, variables={"district": ALL, "street": ALL})
    return wh.query(expand(sql, ctx)).result_rows


@pytest.mark.integration
@pytest.mark.parametrize("period, first, last", [
    (ev.month("2026-11"), at(11, 1, 0), at(11, 30, 23, 59)),       # whole months: against October
    (ev.week("2026-W45"), at(11, 2, 0), at(11, 8, 23, 59)),        # else the same number of days before
])
def test_the_cockpit_ranking_board_shows_what_the_ranking_says(wh, rules, period, first, last):
    from dashboards.evaluation import ranking_sql

    want = [(r.rank, r.unit, r.score, r.previous_rank, r.movement_text())
            for r in ranking(wh, rules, "department", period) if r.rank is not None]
    assert want and _board(wh, ranking_sql(rules, "department", "unit"), first, last) == want


@pytest.mark.integration
def test_the_department_matrix_shows_every_indicator_and_the_score(wh, rules):
    from dashboards.evaluation import matrix_sql

    rows = _board(wh, matrix_sql(rules), at(11, 1, 0), at(11, 30, 23, 59))
    results = {r.unit: r for r in ranking(wh, rules, "department", ev.month("2026-11"))}
    assert [r[0] for r in rows] == ["环卫", "城管执法", "市政"]
    for dept, *values, score in rows:
        for d, shown in zip(ev.DEFINITIONS, values):
            v = results[dept].indicators[d.key].value
            assert shown == (None if v is None else v if d.kind == "count" else
                             round(v * (100 if d.kind == "rate" else 1), 1)), (dept, d.key)
        assert score == results[dept].score


def test_the_grafana_cockpit_has_the_boards_and_a_drill_down_its_streets():
    from cityops.settings import Settings
    from dashboards import grafana
    from dashboards.units import Units

    boards = grafana.dashboards(Units.of(Settings()))
    main = {p["title"]: p for p in boards.pop(grafana.MAIN_UID)["panels"]}
    assert {"部门考核排名", "区县考核排名", "街道考核排名", "部门考核指标（部门 × 指标）"} <= set(main)
    rename = main["部门考核排名"]["transformations"][0]["options"]["renameByName"]
    assert (rename["rank"], rename["movement"]) == ("排名", "名次变化")
    for drill in boards.values():
        titles = {p["title"] for p in drill["panels"]}
        assert "街道考核排名" in titles and "部门考核排名" not in titles
