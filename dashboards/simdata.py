"""Simulated warehouse contents for the query checks, the benchmark and the cockpit screenshot.

Rows are generated inside ClickHouse (`INSERT … SELECT … FROM numbers(n)`): millions of rows in seconds, and
the rollup materialized views fill exactly as they do from the sink. Every attribute of a ticket is a hash
of its id, so the raw rows and the case rows agree. Grids, labels, departments and time limits come from the
registry and the taxonomy, so the names on screen are real."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from cityops.taxonomy import Tier, load_taxonomy

COLUMNS = {
    "raw_tickets": "event_id, source, schema_version, occurred_at, received_at, grid_code, district_code, ticket_id, status, caller_hash, text, address, lat, lon, channel, department, tier, resolution_mode, satisfaction, note, kafka_partition, kafka_offset",
    "case_history": "case_id, version, event_id, source, status, occurred_at, received_at, processed_at, text, address, lat, lon, placed, grid_code, district_code, street_code, label, code, department, tier, time_limit_minutes, confidence, due_at, overdue, reporter_count, reopen_count, resolution_mode, satisfaction, caller_hash, discovered_by, device_id, dispatched_at, accept_due_at, accepted_at, accept_overdue, resolved_at, closed_at, escalations, false_closures, note, duplicate_of, kafka_partition, kafka_offset",
    "raw_case_events": "event_id, case_id, status, system, occurred_at, received_at, department, tier, resolution_mode, satisfaction, false_closure, note, photo_url, kafka_partition, kafka_offset",
    "sensor_events": "event_id, source, schema_version, occurred_at, received_at, grid_code, district_code, device_id, kind, event, value, alert_code, lat, lon, kafka_partition, kafka_offset",
    "raw_app_reports": "event_id, source, schema_version, occurred_at, received_at, grid_code, district_code, report_id, text, photo_url, lat, lon, address, reporter_role, reporter_hash, service_code, kafka_partition, kafka_offset",
    "incidents": "incident_id, version, device_id, kind, state, opened_at, closed_at, peak_value, `limit`, unit, lat, lon, grid_code, district_code, street_code, label, department, updated_at, kafka_partition, kafka_offset",
    "alerts": "alert_id, rule, severity, department, level, dedup_key, title, detail, district_code, grid_code, subject_id, occurred_at, raised_at, kafka_partition, kafka_offset",
    "dead_letters": "topic, `partition`, `offset`, reason, detail, payload_b64, key_b64, failed_at, kafka_topic, kafka_partition, kafka_offset",
}
# Named columns: columns added later by migrations take their defaults.
# The closed loop each simulated case follows, one status per version (a case stops early while it is open):
# a citizen's case ends with the return visit (回访), one found by a grid worker or a device with the check
# (核查); some are returned (退回) and dispatched again, some devices find the repair did not hold (虚假办结).
PATHS = (("created", "dispatched", "accepted", "resolved", "return_visit", "closed"),
         ("created", "dispatched", "accepted", "resolved", "verified", "closed"),
         ("created", "dispatched", "returned", "dispatched", "accepted", "resolved", "return_visit", "closed"),
         ("created", "dispatched", "accepted", "resolved", "reopened", "resolved", "verified", "closed"))
STEPS = max(map(len, PATHS))
LEVELS = tuple(t.value for t in Tier)
STEP_MIN = 25          # minutes between a case's status changes
# Common complaints from the seeds come up more often: label → weight.
WEIGHTS = {"占道经营": 6, "露天烧烤": 4, "非法小广告": 5, "噪声扰民": 4, "暴露垃圾": 4, "油烟污染": 3, "物业服务": 3}
KINDS = ("cooking_fume", "noise", "water_depth", "manhole", "bin_fill", "street_light")
# What a device's alarm opens a case as (the incidents below use the same labels).
SENSOR_LABELS = ("油烟污染", "噪声扰民", "道路积水", "井盖缺损", "垃圾满溢", "路灯故障")
# Alert rules and their severity, as the streams raise them.
ALERT_RULES = {"overdue_case": "warning", "incident_opened": "critical", "emergency_case": "critical",
               "accept_overdue": "warning", "false_closure": "warning"}
MODES = "['服务', '服务', '服务', '服务', '服务', '服务', '服务', '管理', '管理', '执法']"
SATISFACTION = "['满意', '满意', '满意', '满意', '满意', '满意', '满意', '满意', '基本满意', '不满意']"


@dataclass(frozen=True)
class Mix:
    """How many raw events of each source; the total is the benchmark's event count."""

    tickets: int
    sensors: int
    reports: int
    days: int = 30

    @classmethod
    def of(cls, events: int, days: int = 30) -> Mix:
        return cls(tickets=int(events * 0.3), sensors=int(events * 0.6), reports=events - int(events * 0.9),
                   days=days)


def _arr(values) -> str:
    return "[" + ", ".join(f"'{v}'" if isinstance(v, str) else repr(float(v)) for v in values) + "]"


def _u(salt: int, key: str = "number") -> str:
    """A uniform [0, 1) from a hash: deterministic, no state."""
    return f"(cityHash64({key}, {salt}) % 1000003 / 1000003.0)"


def _step(i: str) -> str:
    """The time of a case's i-th version (1-based), NULL when it has none (i = 0)."""
    return f"if({i} > 0, toDateTime64(t0 + ({i} - 1) * {STEP_MIN * 60}, 3, 'Asia/Shanghai'), NULL)"


def fill(client, mix: Mix, grids: list[tuple[str, float, float]], now: datetime | None = None) -> dict[str, int]:
    """Inserts simulated rows; returns the row count of each table. `grids`: (grid code, lat, lon)."""
    now = now or datetime.now(timezone.utc)
    t_now = int(now.timestamp())
    span = mix.days * 86400
    tax = load_taxonomy()
    cats = [c for c in tax.categories for _ in range(WEIGHTS.get(c.label, 1))]
    cats += [tax.by_label(label) for label in SENSOR_LABELS]   # a device's case: one of these, after the others
    g_code, g_lat, g_lon = (_arr(x) for x in zip(*grids))
    # A case's attributes as SQL expressions of its number `t`; hot grids: the square favours low indexes.
    # Sources: 60 % 12345 calls, 25 % app reports (two in five by grid workers), 15 % device alarms.
    n_g, n_c, n_s = len(grids), len(cats) - len(SENSOR_LABELS), len(SENSOR_LABELS)
    paths = "[" + ", ".join(_arr(path) for path in PATHS) + "]"
    case_cols = f"""
        {_u(30, 't')} AS su, multiIf(su < 0.6, 'hotline', su < 0.85, 'app', 'sensor') AS src,
        multiIf(src = 'sensor', 'sensor', src = 'app' AND {_u(31, 't')} < 0.4, 'patrol', 'citizen') AS disc,
        multiIf(src = 'sensor' AND {_u(32, 't')} < 0.15, 4, disc != 'citizen', 2, {_u(32, 't')} < 0.08, 3, 1) AS pi,
        {paths}[pi] AS path, concat(multiIf(src = 'hotline', 'T', src = 'app', 'R', 'S-'), toString(t)) AS cid,
        src = 'app' AND {_u(34, 't')} < 0.04 AS merged,
        1 + toUInt32(pow({_u(1, 't')}, 2) * {n_g}) AS gi,
        if(src = 'sensor', {n_c + 1} + cityHash64(t, 2) % {n_s}, 1 + cityHash64(t, 2) % {n_c}) AS ci,
        {g_code}[gi] AS grid, {g_lat}[gi] + ({_u(3, 't')} - 0.5) * 0.004 AS glat,
        {g_lon}[gi] + ({_u(4, 't')} - 0.5) * 0.005 AS glon,
        {_arr([c.label for c in cats])}[ci] AS lab, {_arr([c.code for c in cats])}[ci] AS cod,
        {_arr([c.department for c in cats])}[ci] AS dep, {_arr([str(c.tier) for c in cats])}[ci] AS tie,
        {_arr([c.time_limit for c in cats])}[ci] AS lim, {_arr([tax.accept_limit_of(c) for c in cats])}[ci] AS acc,
        toInt64({t_now} - {STEP_MIN * 60 * STEPS} - {_u(5, 't')} * {span}) AS t0,
        -- older cases are mostly closed: the open backlog is the last two days plus a few stragglers; a report
        -- merged into another case stays as it came
        multiIf(merged, 1, t0 < {t_now} - 2 * 86400 AND {_u(6, 't')} > 0.02, length(path) - cityHash64(t, 6) % 2,
                1 + cityHash64(t, 6) % length(path)) AS n_status,
        {_u(7, 't')} < 0.12 AS late, {_u(35, 't')} < 0.1 AS slow,
        {MODES}[1 + cityHash64(t, 8) % 10] AS mode, {SATISFACTION}[1 + cityHash64(t, 10) % 10] AS sat"""
    # One version of the case: its status, the steps so far, the level it is at (overdue cases went up 1–3
    # levels, stopping at the city) and the note the reporter is told.
    levels = _arr(LEVELS)
    versions = f"""
(SELECT number, intDiv(number, {STEPS}) AS t, number % {STEPS} AS k, {case_cols},
        path[k + 1] AS status, arraySlice(path, 1, k + 1) AS steps,
        arrayLastIndex(x -> x = 'dispatched', steps) AS di, arrayLastIndex(x -> x = 'accepted', steps) AS ai,
        arrayLastIndex(x -> x = 'resolved', steps) AS ri, arrayLastIndex(x -> x = 'reopened', steps) AS oi,
        toDateTime64(t0 + k * {STEP_MIN * 60}, 3, 'Asia/Shanghai') AS ts,
        least(if(late AND k >= 1, 1 + cityHash64(t, 36) % 3, 0), {len(LEVELS)} - indexOf({levels}, tie)) AS esc,
        {levels}[indexOf({levels}, tie) + esc] AS level,
        multiIf(status = 'resolved', '现场已处置完毕', status = 'returned', '非本部门职责，申请退回重新派单',
                status = 'reopened', '复核发现问题仍在，重办', '') AS note
 FROM numbers({mix.tickets // 3 * STEPS}))
WHERE k < n_status"""

    client.command(f"""
INSERT INTO raw_tickets ({COLUMNS['raw_tickets']})
SELECT concat('sim', toString(number)), 'hotline', 1, ts, ts, grid, substring(grid, 1, 6), cid, status,
       hex(cityHash64(t, 9)), if(k = 0, '市民反映' || lab, ''), '', glat, glon, 'phone',
       if(status = 'dispatched', dep, ''), if(status = 'dispatched', level, ''), if(status = 'resolved', mode, ''),
       if(status = 'return_visit', sat, ''), note, 0, number
FROM {versions} AND src = 'hotline'""")

    client.command(f"""
INSERT INTO raw_case_events ({COLUMNS['raw_case_events']})
SELECT concat('ce', toString(number)), cid, status,
       multiIf(src = 'sensor' AND status IN ('verified', 'reopened'), 'device',
               status IN ('accepted', 'returned', 'resolved'), 'department-api', 'szcg'),
       ts, ts, if(status = 'dispatched', dep, ''), if(status = 'dispatched', level, ''),
       if(status = 'resolved', mode, ''), if(status = 'return_visit', sat, ''), status = 'reopened', note, '', 0, number
FROM {versions} AND src != 'hotline' AND k >= 1""")

    case_select = f"""
SELECT cid, toInt64(k + 1), concat('sim', toString(number)), src, status, ts, ts, ts, '', '', glat, glon, true, grid,
       substring(grid, 1, 6), substring(grid, 1, 9), lab, cod, dep, level, toInt64(lim), 0.9,
       toDateTime64(t0 + (1 + esc) * lim * 60, 3, 'Asia/Shanghai'), late AND k >= 1, 1, toInt64(oi > 0),
       if(ri > oi, mode, ''), if(has(steps, 'return_visit'), sat, ''), if(src = 'hotline', hex(cityHash64(t, 9)), ''),
       disc, if(src = 'sensor', concat('dev-', toString(cityHash64(t, 37) % 97)), ''), {_step('di')},
       if(di > 0 AND status != 'returned', {_step('di')} + toIntervalMinute(acc), NULL),
       if(ai > di, {_step('ai')}, NULL),
       slow AND di > 0, if(ri > oi, {_step('ri')}, NULL), if(status = 'closed', ts, NULL), toInt64(esc),
       toInt64(oi > 0), note, if(merged, concat('R', toString(t + 1)), ''), 0, number
FROM {versions}"""
    client.command(f"INSERT INTO case_history ({COLUMNS['case_history']}) {case_select}")
    client.command(f"INSERT INTO case_current ({COLUMNS['case_history']}) {case_select}")

    kinds = _arr(KINDS)
    devices = max(50, mix.sensors // 3000)
    client.command(f"""
INSERT INTO sensor_events ({COLUMNS['sensor_events']})
SELECT concat('s', toString(number)), 'sensor', 1, ts, ts, grid, substring(grid, 1, 6), concat('dev-', toString(d)),
       kind, if(v > lim_v, 'alert', 'reading'), v, '', glat, glon, 0, number
FROM (SELECT number, number % {devices} AS d, {kinds}[1 + cityHash64(d, 11) % {len(KINDS)}] AS kind,
             1 + cityHash64(d, 12) % {n_g} AS gi, {g_code}[gi] AS grid,
             {g_lat}[gi] + ({_u(13, 'd')} - 0.5) * 0.004 AS glat, {g_lon}[gi] + ({_u(14, 'd')} - 0.5) * 0.005 AS glon,
             toDateTime64({t_now} - (number / {mix.sensors}) * {span}, 3, 'Asia/Shanghai') AS ts,
             multiIf(kind = 'cooking_fume', round(0.3 + pow({_u(15)}, 3) * 4, 2),
                     kind = 'noise', round(40 + {_u(15)} * 25, 1),
                     kind = 'water_depth', round(pow({_u(15)}, 6) * 40, 1),
                     kind = 'bin_fill', round({_u(15)} * 100, 0),
                     kind = 'manhole', round(pow({_u(15)}, 8) * 30, 1), toFloat64({_u(15)} > 0.01)) AS v,
             multiIf(kind = 'cooking_fume', 2.0, kind = 'noise', 60, kind = 'water_depth', 15, kind = 'bin_fill', 95,
                     kind = 'manhole', 15, 1e9) AS lim_v
      FROM numbers({mix.sensors}))""")

    client.command(f"""
INSERT INTO raw_app_reports ({COLUMNS['raw_app_reports']})
SELECT concat('a', toString(number)), 'app', 1, ts, ts, grid, substring(grid, 1, 6), concat('R', toString(number)),
       '随手拍：' || lab, '', glat, glon, '', ['resident', 'grid_worker', 'merchant_group', 'three_heads'][1 + number % 4],
       hex(cityHash64(number, 16)), cod, 0, number
FROM (SELECT number, number AS t, {case_cols},
             toDateTime64({t_now} - {_u(17)} * {span}, 3, 'Asia/Shanghai') AS ts
      FROM numbers({mix.reports}))""")

    n_inc = max(20, mix.sensors // 2000)
    client.command(f"""
INSERT INTO incidents ({COLUMNS['incidents']})
SELECT concat('inc-', toString(i)), toInt64(v), concat('dev-', toString(i % 97)), kind,
       if(v = 2, 'closed', 'open'), opened, if(v = 2, opened + INTERVAL 40 MINUTE, NULL), 3.1, 2.0, 'mg/m³',
       {g_lat}[gi], {g_lon}[gi], {g_code}[gi], substring({g_code}[gi], 1, 6), substring({g_code}[gi], 1, 9),
       multiIf(kind = 'cooking_fume', '油烟污染', kind = 'noise', '噪声扰民', kind = 'water_depth', '道路积水',
               kind = 'manhole', '井盖缺损', kind = 'bin_fill', '垃圾满溢', '路灯故障'),
       multiIf(kind IN ('cooking_fume', 'noise'), '生态环境', kind = 'water_depth', '水务', kind = 'bin_fill', '环卫', '市政'),
       opened, 0, i
FROM (SELECT intDiv(number, 2) AS i, 1 + number % 2 AS v, {kinds}[1 + cityHash64(i, 18) % {len(KINDS)}] AS kind,
             1 + cityHash64(i, 19) % {n_g} AS gi,
             toDateTime64({t_now} - {_u(20, 'i')} * {span}, 3, 'Asia/Shanghai') AS opened
      FROM numbers({n_inc * 2}))
WHERE v = 1 OR {_u(21, 'i')} > 0.02""")

    n_alerts = max(30, mix.tickets // 200)
    rules = _arr(ALERT_RULES)
    client.command(f"""
INSERT INTO alerts ({COLUMNS['alerts']})
SELECT concat('al-', toString(number)), {rules}[1 + number % {len(ALERT_RULES)}] AS r,
       {_arr(ALERT_RULES.values())}[1 + number % {len(ALERT_RULES)}], dep,
       multiIf(r = 'overdue_case', {levels}[3 + number % 3], r = 'false_closure', 'supervisor', ''),
       concat('k', toString(number)),
       concat(dep, '：', lab, multiIf(r = 'overdue_case', '超期未办结，已升级', r = 'accept_overdue', '超时未签收',
                                     r = 'false_closure', '虚假办结，已重办', '需立即处置')),
       '', substring(grid, 1, 6), grid, '', ts, ts, 0, number
FROM (SELECT number, number AS t, {case_cols},
             toDateTime64({t_now} - pow({_u(22)}, 2) * {span}, 3, 'Asia/Shanghai') AS ts
      FROM numbers({n_alerts}))""")

    total = mix.tickets + mix.sensors + mix.reports
    client.command(f"""
INSERT INTO dead_letters ({COLUMNS['dead_letters']})
SELECT ['hotline.tickets', 'sensor.events', 'app.reports', 'case.events'][1 + number % 4], 0, number,
       ['invalid_json', 'schema', 'encoding'][1 + number % 3], '字段缺失', '', '',
       toDateTime64({t_now} - {_u(23)} * {span}, 3, 'Asia/Shanghai'), 'deadletters', 0, number
FROM numbers({max(5, total // 1000)})""")

    tables = ("raw_tickets", "sensor_events", "raw_app_reports", "raw_case_events", "case_history", "case_current",
              "incidents", "alerts", "dead_letters", "case_daily", "events_per_minute", "hotspot_monthly")
    return {t: client.query(f"SELECT count() FROM {t}").result_rows[0][0] for t in tables}


def registry_grids(settings) -> list[tuple[str, float, float]]:
    """(code, lat, lon) of every grid of the configured registry (the generated Zibo city by default)."""
    if settings.registry:
        from cityops.registry import CityRegistry

        grids = CityRegistry.from_dir(settings.registry).grids.values()
    else:
        from cityops.registry import zibo

        grids = zibo.generate()[3]
    return [(g.code, g.centroid[0], g.centroid[1]) for g in grids]
