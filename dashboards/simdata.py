"""Simulated warehouse contents for the query checks, the benchmark and the cockpit screenshot.

Rows are generated inside ClickHouse (`INSERT … SELECT … FROM numbers(n)`): millions of rows in seconds, and
the rollup materialized views fill exactly as they do from the sink. Every attribute of a ticket is a hash
of its id, so the raw rows and the case rows agree. Grids, labels, departments and time limits come from the
registry and the taxonomy, so the names on screen are real."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from cityops.taxonomy import load_taxonomy

COLUMNS = {
    "raw_tickets": "event_id, source, schema_version, occurred_at, received_at, grid_code, district_code, ticket_id, status, caller_hash, text, address, lat, lon, channel, department, tier, resolution_mode, satisfaction, note, kafka_partition, kafka_offset",
    "case_history": "case_id, version, event_id, source, status, occurred_at, received_at, processed_at, text, address, lat, lon, placed, grid_code, district_code, street_code, label, code, department, tier, time_limit_minutes, confidence, due_at, overdue, reporter_count, reopen_count, resolution_mode, satisfaction, caller_hash, kafka_partition, kafka_offset",
    "sensor_events": "event_id, source, schema_version, occurred_at, received_at, grid_code, district_code, device_id, kind, event, value, alert_code, lat, lon, kafka_partition, kafka_offset",
    "raw_app_reports": "event_id, source, schema_version, occurred_at, received_at, grid_code, district_code, report_id, text, photo_url, lat, lon, address, reporter_role, reporter_hash, service_code, kafka_partition, kafka_offset",
    "incidents": "incident_id, version, device_id, kind, state, opened_at, closed_at, peak_value, `limit`, unit, lat, lon, grid_code, district_code, street_code, label, department, updated_at, kafka_partition, kafka_offset",
    "alerts": "alert_id, rule, severity, department, dedup_key, title, detail, district_code, grid_code, subject_id, occurred_at, raised_at, kafka_partition, kafka_offset",
    "dead_letters": "topic, `partition`, `offset`, reason, detail, payload_b64, key_b64, failed_at, kafka_topic, kafka_partition, kafka_offset",
}
# Named columns: columns added later by migrations take their defaults.
STATUSES = ("created", "dispatched", "accepted", "resolved", "return_visit")
STEP_MIN = 25          # minutes between a ticket's status changes
# Common complaints from the seeds come up more often: label → weight.
WEIGHTS = {"占道经营": 6, "露天烧烤": 4, "非法小广告": 5, "噪声扰民": 4, "暴露垃圾": 4, "油烟污染": 3, "物业服务": 3}
KINDS = ("cooking_fume", "noise", "water_depth", "manhole", "bin_fill", "street_light")


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


def fill(client, mix: Mix, grids: list[tuple[str, float, float]], now: datetime | None = None) -> dict[str, int]:
    """Inserts simulated rows; returns the row count of each table. `grids`: (grid code, lat, lon)."""
    now = now or datetime.now(timezone.utc)
    t_now = int(now.timestamp())
    span = mix.days * 86400
    cats = [c for c in load_taxonomy().categories for _ in range(WEIGHTS.get(c.label, 1))]
    g_code, g_lat, g_lon = (_arr(x) for x in zip(*grids))
    # A ticket's attributes as SQL expressions of its number `t`; hot grids: the square favours low indexes.
    n_g, n_c = len(grids), len(cats)
    ticket_cols = f"""
        1 + toUInt32(pow({_u(1, 't')}, 2) * {n_g}) AS gi,
        1 + cityHash64(t, 2) % {n_c} AS ci,
        {g_code}[gi] AS grid, {g_lat}[gi] + ({_u(3, 't')} - 0.5) * 0.004 AS glat,
        {g_lon}[gi] + ({_u(4, 't')} - 0.5) * 0.005 AS glon,
        {_arr([c.label for c in cats])}[ci] AS lab, {_arr([c.code for c in cats])}[ci] AS cod,
        {_arr([c.department for c in cats])}[ci] AS dep, {_arr([str(c.tier) for c in cats])}[ci] AS tie,
        {_arr([c.time_limit for c in cats])}[ci] AS lim,
        toInt64({t_now} - {STEP_MIN * 60 * len(STATUSES)} - {_u(5, 't')} * {span}) AS t0,
        -- older tickets are mostly closed: the open backlog is the last two days plus a few stragglers
        if(t0 < {t_now} - 2 * 86400 AND {_u(6, 't')} > 0.02, {len(STATUSES) - 1} + cityHash64(t, 6) % 2,
           1 + cityHash64(t, 6) % {len(STATUSES)}) AS n_status,
        {_u(7, 't')} < 0.12 AS late"""
    statuses = _arr(STATUSES)

    client.command(f"""
INSERT INTO raw_tickets ({COLUMNS['raw_tickets']})
SELECT concat('sim', toString(number)), 'hotline', 1, ts, ts, grid, substring(grid, 1, 6),
       concat('T', toString(t)), {statuses}[k + 1], hex(cityHash64(t, 9)), if(k = 0, '市民反映' || lab, ''), '',
       glat, glon, 'phone', if(k >= 1, dep, ''), if(k >= 1, tie, ''),
       if(k >= 3, ['服务', '服务', '服务', '服务', '服务', '服务', '服务', '管理', '管理', '执法'][1 + cityHash64(t, 8) % 10], ''),
       if(k = 4, ['满意', '满意', '满意', '满意', '满意', '满意', '满意', '满意', '基本满意', '不满意'][1 + cityHash64(t, 10) % 10], ''),
       '', 0, number
FROM (SELECT number, intDiv(number, {len(STATUSES)}) AS t, number % {len(STATUSES)} AS k, {ticket_cols},
             toDateTime64(t0 + k * {STEP_MIN * 60}, 3, 'Asia/Shanghai') AS ts
      FROM numbers({mix.tickets * len(STATUSES) // 3}))
WHERE k < n_status""")

    case_select = f"""
SELECT concat('T', toString(t)), toInt64(k + 1), concat('sim', toString(number)), 'hotline', {statuses}[k + 1],
       ts, ts, ts, '', '', glat, glon, true, grid, substring(grid, 1, 6), substring(grid, 1, 9), lab, cod, dep, tie,
       toInt64(lim), 0.9, toDateTime64(t0 + lim * 60, 3, 'Asia/Shanghai') AS due, late AND k >= 1, 1, 0,
       if(k >= 3, ['服务', '服务', '服务', '服务', '服务', '服务', '服务', '管理', '管理', '执法'][1 + cityHash64(t, 8) % 10], ''),
       if(k = 4, ['满意', '满意', '满意', '满意', '满意', '满意', '满意', '满意', '基本满意', '不满意'][1 + cityHash64(t, 10) % 10], ''),
       hex(cityHash64(t, 9)), 0, number
FROM (SELECT number, intDiv(number, {len(STATUSES)}) AS t, number % {len(STATUSES)} AS k, {ticket_cols},
             toDateTime64(t0 + k * {STEP_MIN * 60}, 3, 'Asia/Shanghai') AS ts
      FROM numbers({mix.tickets * len(STATUSES) // 3}))
WHERE k < n_status"""
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
FROM (SELECT number, number AS t, {ticket_cols},
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
    client.command(f"""
INSERT INTO alerts ({COLUMNS['alerts']})
SELECT concat('al-', toString(number)), ['overdue_case', 'incident_opened', 'emergency_case'][1 + number % 3],
       ['warning', 'critical', 'critical'][1 + number % 3], dep, concat('k', toString(number)),
       concat(dep, '：', lab, if(number % 3 = 0, '超期未办结', '需立即处置')), '', substring(grid, 1, 6), grid, '',
       ts, ts, 0, number
FROM (SELECT number, number AS t, {ticket_cols},
             toDateTime64({t_now} - pow({_u(22)}, 2) * {span}, 3, 'Asia/Shanghai') AS ts
      FROM numbers({n_alerts}))""")

    total = mix.tickets + mix.sensors + mix.reports
    client.command(f"""
INSERT INTO dead_letters ({COLUMNS['dead_letters']})
SELECT ['hotline.tickets', 'sensor.events', 'app.reports'][1 + number % 3], 0, number,
       ['invalid_json', 'schema', 'encoding'][1 + number % 3], '字段缺失', '', '',
       toDateTime64({t_now} - {_u(23)} * {span}, 3, 'Asia/Shanghai'), 'deadletters', 0, number
FROM numbers({max(5, total // 1000)})""")

    tables = ("raw_tickets", "sensor_events", "raw_app_reports", "case_history", "case_current", "incidents",
              "alerts", "dead_letters", "case_daily", "events_per_minute", "hotspot_monthly")
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
