"""Alerts built from case, incident and count changes. The alert id is the dedup key plus the cooldown
slot, so a rule firing again inside its cooldown yields the same id and the pager delivers it once."""
from __future__ import annotations

from datetime import datetime

from cityops.alerting import load_alerting
from cityops.models.alerts import Alert, AlertRule
from cityops.taxonomy import Tier


def make_alert(rule: AlertRule, dedup_key: str, at: datetime, **fields) -> Alert:
    cfg = load_alerting().rules[rule]
    slot = int(at.timestamp()) // cfg.cooldown_s
    key = f"{rule}:{dedup_key}"[:160]
    return Alert(alert_id=f"{key[:80]}@{slot}", rule=rule, severity=cfg.severity, dedup_key=key,
                 occurred_at=at, **fields)


def place_text(case: dict) -> str:
    return case.get("address") or (f"网格 {case['grid_code']}" if case.get("grid_code") else "未定位")


def emergency_case(case: dict, at: datetime) -> Alert:
    return make_alert(AlertRule.emergency_case, case["case_id"], at, department=case["department"],
                      title=f"紧急：{case['label']}（{place_text(case)}）",
                      detail=f"案件 {case['case_id']}，时限 {case['time_limit_minutes']} 分钟，请立即处置。{case.get('text', '')}"[:2000],
                      district_code=case.get("district_code") or "", grid_code=case.get("grid_code") or "",
                      subject_id=case["case_id"])


def overdue_case(case: dict, at: datetime) -> Alert:
    """Each level a case reaches overdue pages that level's duty officer once (Alert.level)."""
    level = Tier(case["tier"])
    return make_alert(AlertRule.overdue_case, f"{case['case_id']}:{level}", at, department=case["department"],
                      level=level.value, title=f"超期：{case['label']}（{place_text(case)}），已升级至{level.zh}级",
                      detail=f"案件 {case['case_id']} 已超期，第 {case.get('escalations', 1)} 次升级；"
                             f"现限 {case.get('due_at')} 前办结。",
                      district_code=case.get("district_code") or "", grid_code=case.get("grid_code") or "",
                      subject_id=case["case_id"])


def accept_overdue(case: dict, at: datetime) -> Alert:
    return make_alert(AlertRule.accept_overdue, case["case_id"], at, department=case["department"],
                      title=f"签收超时：{case['label']}（{place_text(case)}）",
                      detail=f"案件 {case['case_id']} 派至{case['department']}，应于 {case.get('accept_due_at')} 前签收。",
                      district_code=case.get("district_code") or "", grid_code=case.get("grid_code") or "",
                      subject_id=case["case_id"])


def false_closure(case: dict, at: datetime) -> Alert:
    """A case found unresolved after 办结 pages the department's supervisor (Alert.level supervisor)."""
    return make_alert(AlertRule.false_closure, f"{case['case_id']}:{case.get('false_closures', 1)}", at,
                      department=case["department"], level="supervisor",
                      title=f"疑似虚假办结：{case['label']}（{place_text(case)}）",
                      detail=f"案件 {case['case_id']} 已办结，但问题仍在（{case.get('note') or '复核未通过'}），已重办。",
                      district_code=case.get("district_code") or "", grid_code=case.get("grid_code") or "",
                      subject_id=case["case_id"])


def incident_opened(incident: dict, at: datetime) -> Alert:
    return make_alert(AlertRule.incident_opened, incident["device_id"], at, department=incident["department"],
                      title=f"传感器事件：{incident['label']}，峰值 {incident['peak_value']:g}{incident['unit']}"
                            f"（限值 {incident['limit']:g}）",
                      detail=f"设备 {incident['device_id']} 持续超限，事件 {incident['incident_id']}。",
                      district_code=incident.get("district_code") or "", grid_code=incident.get("grid_code") or "",
                      subject_id=incident["incident_id"])


def volume_anomaly(district: str, label: str, department: str, minute: datetime, count: int,
                   baseline: float) -> Alert:
    return make_alert(AlertRule.volume_anomaly, f"{district}:{label}", minute, department=department,
                      title=f"异常增多：{label} 每分钟 {count} 件（近期基线 {baseline:.1f}）",
                      detail=f"区县 {district} 在 {minute.isoformat()} 这一分钟 {label} 达 {count} 件。",
                      district_code=district, subject_id=f"{district}:{label}")


def anomaly_baseline(history: dict[int, int], minute: int, min_history_min: int) -> float | None:
    """Mean count per minute over the hour before `minute` (absent minutes count as 0), or None if too
    little history exists to judge."""
    prev = {m: c for m, c in history.items() if minute - 3600 <= m < minute}
    if not prev:
        return None
    span = (minute - min(prev)) // 60
    if span < min_history_min:
        return None
    return sum(prev.values()) / span
