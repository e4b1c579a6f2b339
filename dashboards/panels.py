"""Every cockpit panel, defined once: title, SQL, panel type, unit, thresholds and size. The Grafana builder
(`grafana.py`), the terminal cockpit (`cockpit.py`), the query checks and the benchmark all read this list.

SQL is written for grafana-clickhouse-datasource: plugin macros (`$__timeFilter(col)`, `$__fromTime`,
`$__conditionalAll(cond, $var)` …) and the dashboard variables `${district}` / `${street}` (single value or All).
`{{district_name(col)}}` / `{{street_name(col)}}` are filled in at build time with the registry's names,
`{{district_lat(col)}}` / `{{district_lon(col)}}` with the centre of each district's grids (as text).
Panels read the rollups (case_daily, events_per_minute, hotspot_monthly) where they can; the
current-state ones read small ReplacingMergeTree tables with FINAL (open cases: case_open; incidents).
Levels, sources and discovery channels are stored as codes and named here, in Chinese."""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from cityops.evaluation import load_rules
from cityops.models.cases import Discovery
from cityops.taxonomy import LEVEL_NAMES, Tier
from cityops.topics import SOURCE_TOPICS
from dashboards import evaluation
from dashboards.units import Units, transform


class Kind(StrEnum):
    stat = "stat"
    timeseries = "timeseries"
    geomap = "geomap"
    table = "table"
    piechart = "piechart"
    bargauge = "bargauge"


# Threshold steps: (from value, colour); the first step's value is None (the base).
Steps = tuple[tuple[float | None, str], ...]
GOOD_HIGH_RATE: Steps = ((None, "red"), (0.8, "orange"), (0.95, "green"))
BAD_WHEN_ANY: Steps = ((None, "green"), (1, "orange"), (10, "red"))
NEUTRAL: Steps = ((None, "blue"),)


@dataclass(frozen=True)
class PanelDef:
    key: str
    title: str
    kind: Kind
    sql: str
    unit: str = "none"
    thresholds: Steps = NEUTRAL
    description: str = ""
    size: tuple[int, int] = (6, 8)          # Grafana grid width (of 24) × height
    decimals: int | None = None
    in_terminal: bool = True                # shown by `cityops cockpit`
    in_district: bool = True                # also on the per-district drill-down

    def render(self, units: Units) -> str:
        """The SQL with the registry's names filled in: what Grafana runs (after its own macro expansion)."""
        names = {"district_name": units.districts, "street_name": units.streets,
                 "district_lat": {d: f"{c[0]:.5f}" for d, c in units.centres.items()},
                 "district_lon": {d: f"{c[1]:.5f}" for d, c in units.centres.items()}}
        return re.sub(r"\{\{(\w+)\((\w+)\)\}\}", lambda m: transform(m.group(2), names[m.group(1)]), self.sql.strip())

    @property
    def format(self) -> int:
        """The plugin's `format`: 0 time series (long → wide), 1 table."""
        return 0 if self.kind is Kind.timeseries else 1


# Filters every panel applies: the dashboard's district and street variables ('' or All → no filter).
DISTRICT = "$__conditionalAll(district_code = '${district}', $district)"
STREET = "$__conditionalAll(street_code = '${street}', $street)"
PLACE = f"{DISTRICT} AND {STREET}"
DISTRICT_UNIT = "$__conditionalAll(unit LIKE '${district}%', $district)"   # a street or community of the district
TODAY = "day = toDate(now(), 'Asia/Shanghai')"
IN_RANGE_DAYS = "day BETWEEN toDate($__fromTime, 'Asia/Shanghai') AND toDate($__toTime, 'Asia/Shanghai')"
# Cases still waiting for someone: case_open (migrations 0004, 0008) holds them; FINAL drops the ones done since
# (resolved, verified, return visit, closed) and reports merged into another case.
OPEN_CASES = "case_open FINAL"
LATE = "(overdue OR due_at < now64(3))"
# Dispatched and not accepted (签收) by its deadline: flagged by the streams, or due already and not flagged yet.
ACCEPT_LATE = "(status = 'dispatched' AND (accept_overdue OR accept_due_at < now64(3)))"
LEVELS = tuple(t.value for t in Tier)


def _named(column: str, names: dict[str, str], blank: str) -> str:
    """SQL naming a code column; an unknown code shows as itself, '' as `blank`."""
    codes, shown = [*names, ""], [*names.values(), blank]
    return f"transform({column}, [{', '.join(map(repr, codes))}], [{', '.join(map(repr, shown))}], {column})"


LEVEL_NAME = _named("tier", {t.value: n for t, n in LEVEL_NAMES.items()}, "未定级")
# Whose duty officer an alert calls besides the department's: a level, or the department's supervisor (督办).
ALERT_LEVEL_NAME = _named("level", {**{t.value: n for t, n in LEVEL_NAMES.items()}, "supervisor": "督办"}, "")
DISCOVERY_NAME = _named("discovered_by", {Discovery.citizen.value: "市民", Discovery.patrol.value: "网格员主动发现",
                                          Discovery.sensor.value: "感知设备"}, "未记录")
# The ways a case comes in, in the order the cockpit lists them: (source, discovery channel).
CHANNELS = (("hotline", "citizen"), ("app", "citizen"), ("app", "patrol"), ("sensor", "sensor"))
LEVEL_COUNTS = ",\n       ".join(f"countIf(tier = '{t}') AS tier_{t}" for t in LEVELS)
# Days with new cases and the cases since `since` (a WITH alias), from hotspot_monthly's rows of ≤ 2 months:
# the older month counts from since's day on (its day bits shifted, its day counts sliced), later ones whole.
HOTSPOT_DAYS = ("bitCount(bitAnd(groupBitOrIf(day_bits, month = toStartOfMonth(since)), "
                "bitShiftLeft(toUInt32(4294967295), toDayOfMonth(since) - 1))) "
                "+ bitCount(groupBitOrIf(day_bits, month > toStartOfMonth(since)))")
HOTSPOT_CASES = ("sum(arraySum(arraySlice([" + ", ".join(f"d{d:02}" for d in range(1, 32)) + "], "
                 "if(month = toStartOfMonth(since), toDayOfMonth(since), 1))))")
# Dead letters of the source topics only: the rate's denominator is source events (a message an internal stage
# could not store is a bug of ours, not bad input, and would inflate the rate the producers are judged by).
SOURCE_DEAD_LETTERS = ("SELECT count() FROM dead_letters WHERE $__timeFilter(failed_at) AND topic IN ("
                       + ", ".join(f"'{t.name}'" for t in SOURCE_TOPICS) + ")")
# Source messages stored: the events the rollup counts, and the case status events (few, read from their table).
SOURCE_ACCEPTED = ("(SELECT sum(events) FROM events_per_minute WHERE $__timeFilter(minute)) "
                   "+ (SELECT count() FROM raw_case_events WHERE $__timeFilter(occurred_at))")
SOURCE_NAME = "transform(source, ['hotline', 'sensor', 'app'], ['12345热线', '感知设备', '随手拍'], source)"
# A case's way in, in one name: 12345热线·市民, 随手拍·网格员主动发现, 感知设备 (a device's source says it all).
CHANNEL_NAME = f"if(source = discovered_by, {SOURCE_NAME}, concat({SOURCE_NAME}, '·', {DISCOVERY_NAME}))"


def _count_today(key: str, title: str, where: str, description: str) -> PanelDef:
    return PanelDef(key, title, Kind.stat, f"""
SELECT sum(updates) AS value
FROM case_daily
WHERE {TODAY} AND {where} AND {PLACE}""", unit="suffix:件", description=description, size=(3, 4))


PANELS: tuple[PanelDef, ...] = (
    _count_today("received_today", "今日受理", "opened = 1",
                 "今天新立案件（12345热线、随手拍、网格员上报与感知设备告警），含合并前的每一件"),
    _count_today("dispatched_today", "今日派单", "status = 'dispatched'", "今天的派单次数（含退回后的再次派单）"),
    _count_today("resolved_today", "今日办结", "status = 'resolved'", "今天办结的案件"),
    PanelDef("overdue_open", "当前超期", Kind.stat, f"""
SELECT count() AS value
FROM {OPEN_CASES}
WHERE {LATE} AND {PLACE}""", unit="suffix:件", thresholds=BAD_WHEN_ANY, size=(3, 4),
             description="未办结且已过办理时限的案件（超期即升级一级）"),
    PanelDef("on_time_rate", "按时办结率", Kind.stat, f"""
SELECT if(sum(updates) = 0, NULL, sumIf(updates, NOT overdue) / sum(updates)) AS value
FROM case_daily
WHERE status = 'resolved' AND {IN_RANGE_DAYS} AND {PLACE}""", unit="percentunit", decimals=1,
             thresholds=GOOD_HIGH_RATE, size=(3, 4), description="所选时段内办结的案件中，在时限内办结的比例"),
    PanelDef("satisfaction_rate", "满意率", Kind.stat, f"""
SELECT if(sum(updates) = 0, NULL, sumIf(updates, satisfaction IN ('满意', '基本满意')) / sum(updates)) AS value
FROM case_daily
WHERE status = 'return_visit' AND {IN_RANGE_DAYS} AND {PLACE}""", unit="percentunit", decimals=1,
             thresholds=((None, "red"), (0.85, "orange"), (0.95, "green")), size=(3, 4),
             description="回访中“满意”与“基本满意”的比例（目标 100%）"),
    PanelDef("incidents_open", "感知告警未关闭", Kind.stat, f"""
SELECT count() AS value
FROM incidents FINAL
WHERE state = 'open' AND {PLACE}""", unit="suffix:起", thresholds=BAD_WHEN_ANY, size=(3, 4),
             description="设备读数持续超限形成、尚未恢复的事件（井盖、积水、油烟、噪声…）"),
    PanelDef("dead_letter_rate", "死信率", Kind.stat, f"""
WITH ({SOURCE_DEAD_LETTERS}) AS dead,
     {SOURCE_ACCEPTED} AS accepted
SELECT dead / greatest(dead + accepted, 1) AS value""", unit="percentunit", decimals=2,
             thresholds=((None, "green"), (0.001, "orange"), (0.01, "red")), size=(3, 4), in_district=False,
             description="所选时段内无法接收的来源消息（热线、感知、随手拍、案件状态事件）占全部来源消息的比例；原始消息保存在死信主题，可排查重放"),
    PanelDef("events_per_minute", "每分钟事件数（按来源）", Kind.timeseries, f"""
SELECT toStartOfInterval(minute, INTERVAL greatest($__interval_s, 60) second) AS time,
       {SOURCE_NAME} AS source_name,
       sum(events) AS events
FROM events_per_minute
WHERE $__timeFilter(minute) AND {DISTRICT}
GROUP BY time, source_name
ORDER BY time""", unit="suffix:件/分", size=(16, 8),
             description="12345热线、感知设备、随手拍三路来源每分钟到达的事件（按事件发生时间）"),
    PanelDef("ratio_721", "“721”工作法", Kind.piechart, f"""
SELECT resolution_mode AS mode, sum(updates) AS cases
FROM case_daily
WHERE status = 'resolved' AND resolution_mode != '' AND {IN_RANGE_DAYS} AND {PLACE}
GROUP BY mode
ORDER BY mode""", unit="suffix:件", size=(8, 8),
             description="办结方式占比：服务 70%、管理 20%、执法 10% 为目标"),
    PanelDef("open_by_level", "在办与超期（按层级）", Kind.table, f"""
SELECT {LEVEL_NAME} AS level, open_cases, late, accept_late
FROM (SELECT arrayJoin({list(LEVELS)}) AS tier) AS levels
LEFT JOIN (
    SELECT tier, count() AS open_cases, countIf({LATE}) AS late, countIf({ACCEPT_LATE}) AS accept_late
    FROM {OPEN_CASES}
    WHERE {PLACE}
    GROUP BY tier
) AS open USING (tier)
ORDER BY indexOf({list(LEVELS)}, tier)""", size=(8, 8),
             description="未办结案件所在的处置层级（网格/社区/街道/区县/市，超期每次升一级）；超期为已过办理时限，签收超时为派单后未按时签收"),
    PanelDef("open_by_channel", "在办与超期（按来源与发现方式）", Kind.table, f"""
SELECT {SOURCE_NAME} AS source_name, {DISCOVERY_NAME} AS discovery, open_cases, late
FROM (SELECT arrayJoin({list(CHANNELS)}) AS channel, channel.1 AS source, channel.2 AS discovered_by) AS channels
FULL JOIN (
    SELECT source, discovered_by, count() AS open_cases, countIf({LATE}) AS late
    FROM {OPEN_CASES}
    WHERE {PLACE}
    GROUP BY source, discovered_by
) AS open USING (source, discovered_by)
ORDER BY (indexOf({list(CHANNELS)}, (source, discovered_by)) AS known) = 0, known""",
             size=(8, 8),
             description="未办结案件按来源（12345热线、随手拍、感知设备）与发现方式（市民反映、网格员主动发现、感知设备发现）"),
    PanelDef("received_by_channel", "受理来源与发现方式", Kind.piechart, f"""
SELECT {CHANNEL_NAME} AS channel, sum(updates) AS cases
FROM case_daily
WHERE opened = 1 AND {IN_RANGE_DAYS} AND {PLACE}
GROUP BY source, discovered_by
ORDER BY cases DESC""", unit="suffix:件", size=(8, 8),
             description="所选时段内新立案件：市民反映（12345热线、随手拍）、网格员主动发现、感知设备发现各占多少"),
    PanelDef("events_map", "事件分布一张图", Kind.geomap, f"""
SELECT grid_code, {{{{street_name(street_code)}}}} AS street, avg(lat) AS latitude, avg(lon) AS longitude, count() AS cases
FROM case_history
WHERE version = 1 AND lat IS NOT NULL AND $__timeFilter(occurred_at) AND {PLACE}
GROUP BY grid_code, street_code
ORDER BY cases DESC
LIMIT 2000""", unit="suffix:件", thresholds=((None, "green"), (5, "orange"), (20, "red")), size=(12, 12),
             in_terminal=False, description="所选时段内新立案件按网格汇总，颜色越深件数越多"),
    PanelDef("smoke_map", "烧烤油烟一张图", Kind.geomap, f"""
SELECT device_id, argMax(lat, occurred_at) AS latitude, argMax(lon, occurred_at) AS longitude,
       round(max(value), 2) AS peak_mg_m3
FROM sensor_events
WHERE kind = 'cooking_fume' AND event = 'reading' AND $__timeFilter(occurred_at) AND {DISTRICT}
GROUP BY device_id
ORDER BY peak_mg_m3 DESC
LIMIT 2000""", unit="mg/m³", thresholds=((None, "green"), (2.0, "orange"), (4.0, "red")), size=(12, 12),
             in_terminal=False, decimals=2,
             description="油烟在线监测点所选时段内的峰值浓度；GB 18483 限值 2.0 mg/m³，超限为橙、超两倍为红"),
    PanelDef("district_ranking", "区县受理量排名", Kind.bargauge, f"""
SELECT {{{{district_name(district_code)}}}} AS district, sum(updates) AS cases
FROM case_daily
WHERE opened = 1 AND {IN_RANGE_DAYS}
GROUP BY district_code
ORDER BY cases DESC""", unit="suffix:件", size=(8, 10), in_district=False,
             thresholds=((None, "green"), (500, "orange"), (2000, "red")),
             description="所选时段内各区县新立案件数"),
    PanelDef("street_ranking", "街道受理量排名", Kind.bargauge, f"""
SELECT {{{{street_name(street_code)}}}} AS street, sum(updates) AS cases
FROM case_daily
WHERE opened = 1 AND {IN_RANGE_DAYS} AND {DISTRICT}
GROUP BY street_code
ORDER BY cases DESC
LIMIT 15""", unit="suffix:件", size=(8, 10), thresholds=((None, "green"), (200, "orange"), (1000, "red")),
             description="所选时段内新立案件最多的 15 个街道（镇）"),
    PanelDef("top_labels", "高频问题 Top 10", Kind.bargauge, f"""
SELECT label, sum(updates) AS cases
FROM case_daily
WHERE opened = 1 AND {IN_RANGE_DAYS} AND {PLACE}
GROUP BY label
ORDER BY cases DESC
LIMIT 10""", unit="suffix:件", size=(8, 10), description="按小类统计的新立案件（GB/T 30428.2 部件/事件）"),
    PanelDef("open_by_department", "各部门在办案件（按层级）", Kind.table, f"""
SELECT department,
       {LEVEL_COUNTS},
       count() AS total,
       countIf({LATE}) AS late,
       countIf({ACCEPT_LATE}) AS accept_late
FROM {OPEN_CASES}
WHERE {PLACE}
GROUP BY department
ORDER BY total DESC""", size=(12, 10),
             description="未办结案件按责任部门与处置层级（网格/社区/街道/区县/市）；超期为已过办理时限，签收超时为派单后未按时签收"),
    PanelDef("overdue_cases", "超期案件（点案件号看办理过程）", Kind.table, f"""
SELECT case_id, label, department, {LEVEL_NAME} AS level_name, {{{{street_name(street_code)}}}} AS street,
       due_at, dateDiff('hour', due_at, now64(3)) AS hours_late
FROM {OPEN_CASES}
WHERE {LATE} AND {PLACE}
ORDER BY due_at
LIMIT 50""", size=(12, 10),
             description="已过办理时限仍未办结的案件，超期最久的在前（最多50件）；文字不含市民个人信息"),
    PanelDef("alert_feed", "实时告警", Kind.table, f"""
SELECT raised_at,
       transform(severity, ['critical', 'warning', 'info'], ['紧急', '警告', '提示'], severity) AS severity_name,
       department, {ALERT_LEVEL_NAME} AS level_name, title, {{{{district_name(district_code)}}}} AS district
FROM alerts FINAL
WHERE $__timeFilter(raised_at) AND {DISTRICT}
ORDER BY raised_at DESC
LIMIT 50""", size=(12, 10), description="推送给各部门的最新告警（已去重）；层级为同时通知的值班层级（超期升级到的层级，或虚假办结的督办）"),
    PanelDef("hotspots", "问题多发点位（近30日）", Kind.table, f"""
WITH toDate(now(), 'Asia/Shanghai') - 29 AS since
SELECT grid_code, {{{{street_name(grid_street)}}}} AS street, label, days, cases
FROM (
    SELECT grid_code, any(street_code) AS grid_street, label, {HOTSPOT_DAYS} AS days, {HOTSPOT_CASES} AS cases
    FROM hotspot_monthly
    WHERE month >= toStartOfMonth(since) AND {PLACE}
    GROUP BY grid_code, label
    HAVING days >= 3
    ORDER BY days DESC, cases DESC
    LIMIT 20
)
ORDER BY days DESC, cases DESC""", size=(24, 10),
             description="同一网格同一类问题近 30 日内在 3 天以上反复出现（如小广告“回潮”），锁定多发点位"),
    *evaluation.panels(PanelDef, Kind, load_rules(), DISTRICT_UNIT),
)

# Column names (SQL aliases) → Chinese headers, applied as display names in Grafana and in the terminal.
HEADERS: dict[str, str] = {
    "source_name": "来源", "events": "事件数", "mode": "办结方式", "cases": "件数", "grid_code": "网格",
    "street": "街道", "district": "区县", "device_id": "监测点", "peak_mg_m3": "峰值浓度", "label": "问题类型",
    "department": "部门", **{f"tier_{t.value}": f"{n}级" for t, n in LEVEL_NAMES.items()}, "total": "合计",
    "late": "超期", "accept_late": "签收超时", "open_cases": "在办", "level": "层级", "discovery": "发现方式",
    "channel": "来源", "level_name": "层级", "raised_at": "时间", "severity_name": "级别", "title": "告警",
    "days": "发生天数", "latitude": "纬度", "longitude": "经度", "case_id": "案件号", "due_at": "办理时限",
    "hours_late": "超期(小时)", **evaluation.HEADERS,
}


def by_key(key: str) -> PanelDef:
    for p in PANELS:
        if p.key == key:
            return p
    raise KeyError(key)
