"""Every panel and alert-rule query, expanded as Grafana and the ClickHouse plugin expand it, runs against the
migrated warehouse (chdb) on simulated data and returns the columns its panel type needs."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cityops.models.tickets import TicketStatus
from cityops.settings import Settings
from cityops.taxonomy import Tier
from dashboards import alerting
from dashboards.macros import ALL, MacroError, QueryContext, expand
from dashboards.panels import HEADERS, PANELS, Kind, by_key
from dashboards.units import Units
from tests.simulated import sim_database

NOW = datetime(2026, 3, 14, 10, 30, tzinfo=timezone.utc)
T0 = int((NOW - timedelta(hours=6)).timestamp())
T1 = int(NOW.timestamp())


# -- macro expansion, as the plugin documents and implements it --------------------------------------------
@pytest.fixture
def ctx() -> QueryContext:
    return QueryContext(NOW - timedelta(hours=6), NOW, 30, {"district": "370303", "street": ALL, "many": ["a", "b"]})


@pytest.mark.parametrize("sql, expected", [
    ("$__timeFilter(minute)", f"minute >= toDateTime({T0}) AND minute <= toDateTime({T1})"),
    ("$__timeFilter_ms(t)", f"t >= fromUnixTimestamp64Milli({T0}000) AND t <= fromUnixTimestamp64Milli({T1}000)"),
    ("$__dateFilter(day)", "day >= toDate('2026-03-14') AND day <= toDate('2026-03-14')"),
    ("$__fromTime / $__toTime", f"toDateTime({T0}) / toDateTime({T1})"),
    ("$__fromTime_ms", f"fromUnixTimestamp64Milli({T0}000)"),
    ("$__timeInterval(minute)", "toStartOfInterval(toDateTime(minute), INTERVAL 30 second)"),
    ("$__interval_s", "30"),
    ("$__conditionalAll(d = '${district}', $district)", "d = '370303'"),
    ("$__conditionalAll(s = '${street}', $street)", "1=1"),
    ("$__conditionalAll(s IN (${many}), ${many})", "s IN ('a','b')"),
    ("$__conditionalAll(f(x, g(y)) = 1, $district)", "f(x, g(y)) = 1"),
])
def test_macros_expand_like_the_plugin(ctx, sql, expected):
    assert expand(sql, ctx) == expected


def test_empty_variable_counts_as_all(ctx):
    assert expand("$__conditionalAll(x = '${v}', $v)", QueryContext(ctx.start, ctx.end, 60, {"v": ""})) == "1=1"


@pytest.mark.parametrize("sql", ["$__timeFilter(toDateTime(x))", "$__timeFilter()", "$__nosuch(x)",
                                 "x = '${unknown}'", "$__conditionalAll(a, b, $v)"])
def test_bad_macros_are_refused(ctx, sql):
    with pytest.raises(MacroError):
        expand(sql, ctx)


def test_interval_is_at_least_one_second():
    assert expand("$__interval_s", QueryContext(NOW, NOW, 0)) == "1"


# -- the queries against the real engine ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def warehouse(stack_env):
    return sim_database("dashboards_sim", 60_000)


@pytest.fixture
def empty(stack_env, request):
    """A migrated database of the test's own: rows it inserts never reach the simulated city others count."""
    return sim_database(f"dash_{request.node.name[5:40]}", 0)


VARIABLES = [{"district": ALL, "street": ALL}, {"district": "370303", "street": ALL},
             {"district": "370303", "street": "370303001"}]
NUMERIC = ("Int", "UInt", "Float", "Decimal")


def run(client, sql: str) -> tuple[list[str], list[str], list[tuple]]:
    """Column names and types (from DESCRIBE, so an empty result still has them) and the rows."""
    described = client.query(f"DESCRIBE ({sql})").result_rows
    return [d[0] for d in described], [d[1] for d in described], client.query(sql).result_rows


def _numeric(t: str) -> bool:
    return any(n in t for n in NUMERIC)


@pytest.mark.integration
@pytest.mark.parametrize("variables", VARIABLES, ids=["all", "district", "street"])
@pytest.mark.parametrize("panel", PANELS, ids=[p.key for p in PANELS])
def test_panel_query_runs_and_has_its_columns(warehouse, panel, variables):
    ctx = QueryContext.last(timedelta(hours=6), interval_s=20, **variables)
    names, types, rows = run(warehouse, expand(panel.render(Units.of(Settings())), ctx))
    match panel.kind:
        case Kind.stat:
            assert len(names) == 1 and _numeric(types[0]) and len(rows) == 1, (names, types, rows)
        case Kind.timeseries:
            assert names[0] == "time" and "DateTime" in types[0] and _numeric(types[-1]), (names, types)
            if variables["district"] == ALL:
                assert rows, "no events in the last 6 h of simulated data"
                assert rows == sorted(rows, key=lambda r: r[0])
        case Kind.geomap:
            assert {"latitude", "longitude"} <= set(names)
            lat = names.index("latitude")
            assert all(36 < r[lat] < 38 for r in rows)
        case Kind.piechart | Kind.bargauge:
            assert len(names) == 2 and "String" in types[0] and _numeric(types[1]), (names, types)
        case Kind.table:
            assert len(names) >= 3 and len(set(names)) == len(names)
    if variables["district"] == ALL and panel.kind is not Kind.timeseries and panel.key != "incidents_open":
        assert rows and rows[0][0] is not None, f"{panel.key} found nothing in the simulated city"


@pytest.mark.integration
def test_district_filter_narrows_the_ranking(warehouse):
    units = Units.of(Settings())
    panel = next(p for p in PANELS if p.key == "street_ranking")
    rows = warehouse.query(expand(panel.render(units), QueryContext.last(timedelta(days=1), district="370304",
                                                                       street=ALL))).result_rows
    assert rows and {r[0] for r in rows} <= {n for c, n in units.streets.items() if c.startswith("370304")}


@pytest.mark.integration
@pytest.mark.parametrize("rule", alerting.RULES, ids=[r.key for r in alerting.RULES])
def test_alert_rule_query_runs_and_labels_by_department(warehouse, rule):
    ctx = QueryContext.last(timedelta(seconds=rule.window_s))
    names, types, rows = run(warehouse, expand(alerting.rule_sql(rule), ctx))
    assert names[0] == "time" and "DateTime" in types[0] and names[-1] == "value" and _numeric(types[-1])
    if rule.department:
        assert names == ["time", "value"]
    else:
        assert names == ["time", "department", "value"]
        routed = {r["receiver"] for r in alerting.policy_tree()["routes"]}
        assert {r[1] for r in rows} <= routed


def test_every_department_has_a_contact_point_and_route():
    names = {cp["name"] for cp in alerting.contact_points(env={})}
    routes = {r["object_matchers"][0][2]: r["receiver"] for r in alerting.policy_tree()["routes"]}
    assert set(routes) == set(alerting.departments()) - {alerting.OPS}
    assert set(routes.values()) <= names and alerting.OPS in names


def test_wecom_and_dingtalk_only_where_configured():
    plain = alerting.contact_points(env={})
    assert all(len(cp["receivers"]) == 1 for cp in plain)
    env = {"CITYOPS_WECOM_HUANWEI_URL": "https://qyapi.example/robot", "DINGTALK_WEBHOOK_URL": "https://oapi.example"}
    cps = {cp["name"]: cp["receivers"] for cp in alerting.contact_points(env=env)}
    assert [r["type"] for r in cps["环卫"]] == ["webhook", "wecom", "dingding"]
    assert cps["环卫"][1]["settings"]["url"] == "${CITYOPS_WECOM_HUANWEI_URL}"
    assert [r["type"] for r in cps["市政"]] == ["webhook", "dingding"]
    assert "example" not in str(cps)   # references only, never the secret URLs


def test_open_cases_table_agrees_with_the_newest_version_of_every_case(warehouse):
    """case_open (what the open-case panels and rules read) = the cases whose newest version is not done and that
    were not merged into another case."""
    done = "('resolved', 'verified', 'return_visit', 'closed')"
    want = warehouse.query(f"SELECT count(), countIf(overdue OR due_at < now64(3)) FROM case_current FINAL "
                           f"WHERE status NOT IN {done} AND duplicate_of = ''").result_rows[0]
    got = warehouse.query("SELECT count(), countIf(overdue OR due_at < now64(3)) FROM case_open FINAL").result_rows[0]
    assert got == want and want[0] > 0


def test_simulated_cases_come_every_way_and_go_every_step_at_every_level(warehouse):
    """The simulated city exercises every panel: each source and discovery channel, each status, each level."""
    def values(column: str) -> set:
        return {r[0] for r in warehouse.query(f"SELECT DISTINCT {column} FROM case_history").result_rows}

    assert values("(source, discovered_by)") == {("hotline", "citizen"), ("app", "citizen"), ("app", "patrol"),
                                                 ("sensor", "sensor")}
    assert values("status") == {s.value for s in TicketStatus}
    assert values("tier") == {t.value for t in Tier}
    sensor = warehouse.query("SELECT countIf(device_id = ''), countIf(false_closures > 0) FROM case_current FINAL "
                             "WHERE source = 'sensor'").result_rows[0]
    assert sensor[0] == 0 and sensor[1] > 0
    steps = warehouse.query("SELECT countIf(accepted_at < dispatched_at), countIf(accepted_at IS NOT NULL), "
                            "countIf(closed_at IS NOT NULL), countIf(escalations > 0) "
                            "FROM case_current FINAL").result_rows[0]
    assert steps[0] == 0 and all(steps[1:])
    events = warehouse.query("SELECT countIf(case_id LIKE 'T%'), count() FROM raw_case_events").result_rows[0]
    assert events[0] == 0 and events[1] > 0     # 12345 tickets bring their own status events


def _case(client, case_id: str, version: int, status: str, **columns) -> None:
    """One case version, as the sink stores it (the views fill case_open and the rollups)."""
    values = {"case_id": case_id, "version": version, "event_id": f"{case_id}-{version}", "source": "hotline",
              "status": status, "label": "占道经营", "code": "0101", "department": "城管执法", "tier": "grid",
              "time_limit_minutes": 60, "confidence": 0.9, "kafka_partition": 0, "kafka_offset": version} | columns
    literal = {str: lambda v: v if v.startswith("now64") else f"'{v}'", bool: lambda v: str(v).lower()}
    row = ", ".join(literal.get(type(v), str)(v) for v in values.values())
    client.command(f"INSERT INTO case_history ({', '.join(values)}) VALUES ({row})")


@pytest.mark.parametrize("done", ["resolved", "verified", "return_visit", "closed"])
def test_a_done_case_leaves_case_open_at_cleanup_and_comes_back_when_reopened(stack_env, done):
    empty = sim_database(f"dash_done_{done}", 0)

    def rows() -> list:
        return empty.query("SELECT version, status FROM case_open FINAL WHERE case_id = 'OPEN-T1'").result_rows

    _case(empty, "OPEN-T1", 1, "created", occurred_at="now64(3)", received_at="now64(3)")
    assert rows() == [(1, "created")]
    _case(empty, "OPEN-T1", 2, done, occurred_at="now64(3)", received_at="now64(3)")
    assert rows() == []
    empty.command("OPTIMIZE TABLE case_open FINAL CLEANUP")   # what the forced merges do after a minute
    assert empty.query("SELECT count() FROM case_open WHERE case_id = 'OPEN-T1'").result_rows == [(0,)]
    _case(empty, "OPEN-T1", 3, "reopened", occurred_at="now64(3)", received_at="now64(3)")
    assert rows() == [(3, "reopened")]


def test_a_report_merged_into_another_case_is_not_an_open_case(empty):
    """Its primary is dispatched and worked; the merged report would otherwise wait in `created` for ever."""
    _case(empty, "MERGED-R2", 1, "created", occurred_at="now64(3)", received_at="now64(3)", source="app",
          duplicate_of="MERGED-R1")
    _case(empty, "MERGED-R1", 1, "created", occurred_at="now64(3)", received_at="now64(3)", source="app")
    assert empty.query("SELECT case_id FROM case_open FINAL").result_rows == [("MERGED-R1",)]


def test_hot_spots_count_the_days_and_cases_of_the_last_30_days(empty):
    """hotspot_monthly's day bits and day counts give what case_history says for the 30-day window, also when
    it starts mid-month and when parts are not merged yet (a case 45 days old, before the window, is left out)."""
    cols = "case_id, version, event_id, source, status, occurred_at, received_at, grid_code, district_code, " \
           "street_code, label, code, department, tier, time_limit_minutes, confidence, kafka_partition, kafka_offset"
    for i, days_ago in enumerate([0, 0, 3, 29, 29, 30, 45]):
        empty.command(f"INSERT INTO case_history ({cols}) VALUES ('HOT-{i}', 1, 'h{i}', 'hotline', 'created', "
                          f"now64(3) - INTERVAL {days_ago} DAY, now64(3), 'HOTGRID', '370303', '370303001', "
                          f"'非法小广告', '0103', '城管执法', 'grid', 60, 0.9, 0, {i})")
    panel = next(p for p in PANELS if p.key == "hotspots")
    sql = expand(panel.render(Units.of(Settings())), QueryContext.last(timedelta(days=1)))
    got = {(r[0], r[2]): r[3:] for r in empty.query(sql.replace("LIMIT 20", "LIMIT 100000")).result_rows}
    since = "toDate(now(), 'Asia/Shanghai') - 29"
    want = empty.query(f"SELECT uniqExact(toDate(occurred_at)), count() FROM case_history WHERE version = 1 "
                           f"AND grid_code = 'HOTGRID' AND toDate(occurred_at) >= {since}").result_rows[0]
    assert want == (3, 5) and got[("HOTGRID", "非法小广告")] == want


@pytest.mark.integration
def test_the_stall_rule_fires_while_tickets_wait_and_no_case_is_processed(stack_env):
    db = sim_database("stall_rule", 0)
    rule = next(r for r in alerting.RULES if r.key == "processing_stalled")
    sql = expand(alerting.rule_sql(rule), QueryContext.last(timedelta(seconds=rule.window_s)))

    def value() -> float:
        return db.query(sql).result_rows[0][-1]

    assert value() == 0                     # a quiet night: nothing arrived, nothing to process
    db.command("INSERT INTO raw_tickets (event_id, ticket_id, occurred_at, received_at) "
               "VALUES ('stall-1', 'T-1', now64(3) - INTERVAL 8 MINUTE, now64(3) - INTERVAL 7 MINUTE)")
    db.command("INSERT INTO raw_app_reports (event_id, occurred_at, received_at) "
               "VALUES ('stall-2', now64(3) - INTERVAL 7 MINUTE, now64(3) - INTERVAL 6 MINUTE)")
    assert value() == 2                     # received 6-7 minutes ago, no case processed since
    db.command("INSERT INTO case_history (case_id, version, event_id, occurred_at, received_at, processed_at) "
               "VALUES ('C-1', 1, 'stall-1', now64(3) - INTERVAL 8 MINUTE, now64(3) - INTERVAL 7 MINUTE, "
               "now64(3) - INTERVAL 1 MINUTE)")
    assert value() == 0                     # the worker is moving (if slowly)


def _panel_rows(client, key: str, **variables) -> list[tuple]:
    ctx = QueryContext.last(timedelta(days=30), **({"district": ALL, "street": ALL} | variables))
    return client.query(expand(by_key(key).render(Units.of(Settings())), ctx)).result_rows


@pytest.mark.integration
def test_open_cases_per_level_name_all_five_levels(warehouse):
    rows = _panel_rows(warehouse, "open_by_level")
    assert [r[0] for r in rows] == ["网格", "社区", "街道", "区县", "市"]
    total, late = warehouse.query("SELECT count(), countIf(overdue OR due_at < now64(3)) "
                                  "FROM case_open FINAL").result_rows[0]
    assert sum(r[1] for r in rows) == total and sum(r[2] for r in rows) == late
    assert all(r[1] for r in rows), "every level holds open cases in the simulated city"


@pytest.mark.integration
def test_open_cases_per_source_and_discovery_channel(warehouse):
    rows = _panel_rows(warehouse, "open_by_channel")
    assert [r[:2] for r in rows] == [("12345热线", "市民"), ("随手拍", "市民"), ("随手拍", "网格员主动发现"),
                                     ("感知设备", "感知设备")]
    assert sum(r[2] for r in rows) == warehouse.query("SELECT count() FROM case_open FINAL").result_rows[0][0]
    received = {r[0] for r in _panel_rows(warehouse, "received_by_channel")}
    assert received == {"12345热线·市民", "随手拍·市民", "随手拍·网格员主动发现", "感知设备"}


@pytest.mark.integration
def test_department_table_has_a_column_per_level(warehouse):
    sql = expand(by_key("open_by_department").render(Units.of(Settings())),
                 QueryContext.last(timedelta(hours=6), district=ALL, street=ALL))
    result = warehouse.query(sql)
    levels = [f"tier_{t.value}" for t in Tier]
    assert list(result.column_names)[1:6] == levels and all(HEADERS[c] for c in levels)
    assert all(sum(r[1:6]) == r[6] for r in result.result_rows)


def _rule_value(client, key: str) -> dict[str, float]:
    rule = next(r for r in alerting.RULES if r.key == key)
    ctx = QueryContext.last(timedelta(seconds=rule.window_s))
    rows = client.query(expand(alerting.rule_sql(rule), ctx)).result_rows
    return {r[1]: r[2] for r in rows}


def test_the_emergency_rule_counts_only_emergencies_waiting_for_dispatch(empty):
    """Received or returned (退回) over 10 minutes ago and not dispatched since: a state dispatching ends."""
    ago = "now64(3) - INTERVAL 20 MINUTE"
    flood = {"label": "道路积水", "code": "0601", "department": "水务", "occurred_at": ago, "received_at": ago}
    _case(empty, "EMERG-1", 1, "created", **flood)
    _case(empty, "EMERG-2", 1, "created", **flood | {"received_at": "now64(3) - INTERVAL 2 MINUTE"})   # just now
    _case(empty, "EMERG-3", 1, "dispatched", **flood)
    _case(empty, "EMERG-4", 1, "returned", **flood)
    _case(empty, "EMERG-5", 1, "created", **flood | {"label": "占道经营", "code": "0101"})   # no emergency
    _case(empty, "EMERG-6", 1, "created", **flood | {"duplicate_of": "EMERG-1"})          # merged into EMERG-1
    assert _rule_value(empty, "emergency_undispatched") == {"水务": 2}
    _case(empty, "EMERG-1", 2, "dispatched", **flood | {"received_at": "now64(3)"})
    _case(empty, "EMERG-4", 2, "dispatched", **flood | {"received_at": "now64(3)"})
    assert _rule_value(empty, "emergency_undispatched") == {}


def test_the_accept_rule_counts_dispatched_cases_past_their_accept_deadline(empty):
    now = {"occurred_at": "now64(3)", "received_at": "now64(3)", "department": "环卫"}
    _case(empty, "ACC-1", 1, "dispatched", **now, accept_due_at="now64(3) - INTERVAL 5 MINUTE")
    _case(empty, "ACC-2", 1, "dispatched", **now, accept_due_at="now64(3) + INTERVAL 1 HOUR")
    _case(empty, "ACC-3", 1, "dispatched", **now, accept_due_at="now64(3) - INTERVAL 1 HOUR", accept_overdue=True)
    _case(empty, "ACC-4", 1, "accepted", **now, accept_due_at="now64(3) - INTERVAL 1 HOUR", accept_overdue=True)
    assert _rule_value(empty, "accept_overdue") == {"环卫": 2}
    assert [r[3] for r in _panel_rows(empty, "open_by_level")] == [2, 0, 0, 0, 0]
    _case(empty, "ACC-1", 2, "accepted", **now, accept_due_at="now64(3) - INTERVAL 5 MINUTE")
    _case(empty, "ACC-3", 2, "returned", **now, accept_overdue=True)
    assert _rule_value(empty, "accept_overdue") == {}


def test_the_dead_letter_rate_counts_case_events_on_both_sides(empty):
    """A refused case event is a source message refused: the stored ones count among the accepted."""
    empty.command("INSERT INTO dead_letters (topic, reason, failed_at, kafka_topic) "
                  "VALUES ('case.events', 'schema', now64(3) - INTERVAL 1 MINUTE, 'deadletters')")
    empty.command("INSERT INTO raw_case_events (event_id, case_id, status, occurred_at, received_at) "
                  "SELECT concat('ev', toString(number)), 'C-1', 'accepted', now64(3) - INTERVAL 1 MINUTE, now64(3) "
                  "FROM numbers(99)")
    [(rate,)] = _panel_rows(empty, "dead_letter_rate")
    assert rate == pytest.approx(0.01)


def test_the_score_map_puts_each_ranked_district_at_its_centre_with_its_score(warehouse):
    board = {(name, score) for _, name, score, *_ in _panel_rows(warehouse, "district_evaluation")}
    spots = _panel_rows(warehouse, "district_score_map")
    assert board and {(name, score) for name, _, _, score, _ in spots} == board
    centres = Units.of(Settings()).centres
    by_name = {n: c for c, n in Units.of(Settings()).districts.items()}
    assert all((round(lat, 5), round(lon, 5)) == tuple(round(v, 5) for v in centres[by_name[name]])
               for name, lat, lon, _, _ in spots)
