"""Every cockpit panel, defined once: title, SQL, panel type, unit, thresholds and size. The Grafana builder
(`grafana.py`), the terminal cockpit (`cockpit.py`), the query checks and the benchmark all read this list.

SQL is written for grafana-clickhouse-datasource: plugin macros (`$__timeFilter(col)`, `$__fromTime`,
`$__conditionalAll(cond, $var)` …) and the dashboard variables `${district}` / `${street}` (single value or All).
`{{district_name(col)}}` / `{{street_name(col)}}` are filled in at build time with the registry's names.
Panels read the rollups (case_daily, events_per_minute, hotspot_monthly) where they can; the
current-state ones read small ReplacingMergeTree tables with FINAL (open cases: case_open; incidents)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from cityops.topics import SOURCE_TOPICS
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
        names = {"district_name": units.districts, "street_name": units.streets}
        return re.sub(r"\{\{(\w+)\((\w+)\)\}\}", lambda m: transform(m.group(2), names[m.group(1)]), self.sql.strip())

    @property
    def format(self) -> int:
        """The plugin's `format`: 0 time series (long → wide), 1 table."""
        return 0 if self.kind is Kind.timeseries else 1


# Filters every panel applies: the dashboard's district and street variables ('' or All → no filter).
DISTRICT = "$__conditionalAll(district_code = '${district}', $district)"
STREET = "$__conditionalAll(street_code = '${street}', $street)"
PLACE = f"{DISTRICT} AND {STREET}"
TODAY = "day = toDate(now(), 'Asia/Shanghai')"
IN_RANGE_DAYS = "day BETWEEN toDate($__fromTime, 'Asia/Shanghai') AND toDate($__toTime, 'Asia/Shanghai')"
# Cases still waiting for someone: case_open (migration 0004) holds them; FINAL drops the ones done since.
OPEN_CASES = "case_open FINAL"
LATE = "(overdue OR due_at < now64(3))"
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
SOURCE_NAME = "transform(source, ['hotline', 'sensor', 'app'], ['12345热线', '感知设备', '随手拍'], source)"


def _count_today(key: str, title: str, where: str, description: str) -> PanelDef:
    return PanelDef(key, title, Kind.stat, f"""
SELECT sum(updates) AS value
FROM case_daily
WHERE {TODAY} AND {where} AND {PLACE}""", unit="suffix:件", description=description, size=(3, 4))


PANELS: tuple[PanelDef, ...] = (
    _count_today("received_today", "今日受理", "opened = 1", "今天新立案件（热线工单与随手拍），含合并前的每一件"),
    _count_today("dispatched_today", "今日派单", "status = 'dispatched'", "今天的派单次数（含升级后的再派单）"),
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
     (SELECT sum(events) FROM events_per_minute WHERE $__timeFilter(minute)) AS accepted
SELECT dead / greatest(dead + accepted, 1) AS value""", unit="percentunit", decimals=2,
             thresholds=((None, "green"), (0.001, "orange"), (0.01, "red")), size=(3, 4), in_district=False,
             description="所选时段内无法接收的来源消息（热线、感知、随手拍）占全部来源消息的比例；原始消息保存在死信主题，可排查重放"),
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
       countIf(tier = 'grid') AS tier_grid,
       countIf(tier = 'community') AS tier_community,
       countIf(tier = 'street') AS tier_street,
       count() AS total,
       countIf({LATE}) AS late
FROM {OPEN_CASES}
WHERE {PLACE}
GROUP BY department
ORDER BY total DESC""", size=(12, 10),
             description="未办结案件按责任部门与处置层级（网格/社区/街道）；超期列为已过时限的件数"),
    PanelDef("alert_feed", "实时告警", Kind.table, f"""
SELECT raised_at,
       transform(severity, ['critical', 'warning', 'info'], ['紧急', '警告', '提示'], severity) AS severity_name,
       department, title, {{{{district_name(district_code)}}}} AS district
FROM alerts FINAL
WHERE $__timeFilter(raised_at) AND {DISTRICT}
ORDER BY raised_at DESC
LIMIT 50""", size=(12, 10), description="推送给各部门的最新告警（已去重）"),
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
)

# Column names (SQL aliases) → Chinese headers, applied as display names in Grafana and in the terminal.
HEADERS: dict[str, str] = {
    "source_name": "来源", "events": "事件数", "mode": "办结方式", "cases": "件数", "grid_code": "网格",
    "street": "街道", "district": "区县", "device_id": "监测点", "peak_mg_m3": "峰值浓度", "label": "问题类型",
    "department": "部门", "tier_grid": "网格级", "tier_community": "社区级", "tier_street": "街道级", "total": "合计", "late": "超期",
    "raised_at": "时间", "severity_name": "级别", "title": "告警", "days": "发生天数", "latitude": "纬度", "longitude": "经度",
}


def by_key(key: str) -> PanelDef:
    for p in PANELS:
        if p.key == key:
            return p
    raise KeyError(key)
