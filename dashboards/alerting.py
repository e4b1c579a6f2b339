"""Grafana unified alerting as code: rules whose queries are ClickHouse SQL, one contact point per department
and a notification policy that routes on the `department` label.

Rule queries use format 0 (time series) with a `time` column: the plugin pivots the rows wide and each string
column becomes a label, so a query grouped by `department` yields one alert instance per department, labelled
for routing. Ad hoc filters and dashboard variables do not apply in alert evaluation: rules use neither."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from cityops.taxonomy import load_taxonomy
from dashboards import clickhouse as ch
from dashboards.panels import ACCEPT_LATE, LATE, OPEN_CASES, SOURCE_ACCEPTED, SOURCE_DEAD_LETTERS

FOLDER_UID = "cityops"
FOLDER_TITLE = "城市运行"
OPS = "运维值班"            # the platform's own duty desk: dead letters and anything unrouted
EXPR = "__expr__"
# Env vars Grafana expands when it loads the provisioning files; secrets never land in the repo.
WEBHOOK_BASE_ENV = "CITYOPS_PAGER_URL"
# ASCII slugs for env var names and uids; a department not listed gets a stable hash slug.
SLUGS = {"城管执法": "chengguan", "环卫": "huanwei", "市政": "shizheng", "园林": "yuanlin", "物业": "wuye",
         "市场监管": "shichang", "生态环境": "shengtai", "水务": "shuiwu", "住建": "zhujian", "公安": "gongan",
         "交警": "jiaojing", "12345热线分拨": "triage", OPS: "ops"}


def slug(department: str) -> str:
    return SLUGS.get(department) or "d" + hashlib.sha1(department.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class AlertDef:
    key: str
    title: str
    sql: str                  # returns `time`, optionally `department`, and a numeric `value`
    above: float              # fires when the value is above this
    pending: str              # how long it must hold (Grafana `for`)
    severity: str
    summary: str
    window_s: int = 600       # the query's relative time range
    department: str = ""      # fixed department label when the query has no `department` column

    @property
    def uid(self) -> str:
        return f"cityops-{self.key.replace('_', '-')}"


def _emergency_labels() -> str:
    return ", ".join(f"'{c.label}'" for c in load_taxonomy().categories if c.page)


_RECEIVED_5_TO_10_MIN_AGO = ("SELECT count() FROM {table} WHERE occurred_at >= now64(3) - INTERVAL 1 DAY "
                             "AND received_at BETWEEN now64(3) - INTERVAL 10 MINUTE AND now64(3) - INTERVAL 5 MINUTE")

RULES: tuple[AlertDef, ...] = (
    AlertDef("overdue_cases", "部门超期案件", f"""
SELECT now() AS time, department, toFloat64(count()) AS value
FROM {OPEN_CASES}
WHERE {LATE}
GROUP BY department""", above=0, pending="5m", severity="warning",
             summary="{{ $labels.department }} 有 {{ $values.B }} 件案件已超过办理时限，请尽快处置（超期将升级一级）"),
    AlertDef("incidents_open", "感知设备事件未关闭", """
SELECT now() AS time, department, toFloat64(count()) AS value
FROM incidents FINAL
WHERE state = 'open'
GROUP BY department""", above=0, pending="1m", severity="critical",
             summary="{{ $labels.department }} 辖内有 {{ $values.B }} 起设备读数持续超限（井盖、积水、油烟等），请立即处置"),
    # Waiting for a dispatch: just received, or returned by a department (退回). Every rule counts states a
    # person can end (dispatch, accept, resolve): a count of what merely happened would fire until it ages out.
    AlertDef("emergency_undispatched", "紧急案件未派单", f"""
SELECT now() AS time, department, toFloat64(count()) AS value
FROM {OPEN_CASES}
WHERE status IN ('created', 'returned') AND label IN ({{emergency}}) AND received_at < now64(3) - INTERVAL 10 MINUTE
GROUP BY department""", above=0, pending="0s", severity="critical",
             summary="{{ $labels.department }} 有 {{ $values.B }} 件紧急案件（积水、塌陷、井盖）受理或退回超过 10 分钟仍未派单"),
    AlertDef("accept_overdue", "部门签收超时", f"""
SELECT now() AS time, department, toFloat64(count()) AS value
FROM {OPEN_CASES}
WHERE {ACCEPT_LATE}
GROUP BY department""", above=0, pending="5m", severity="warning",
             summary="{{ $labels.department }} 有 {{ $values.B }} 件已派单案件超过签收时限仍未签收：请签收，不属本部门的请退回"),
    # A stalled worker: events arrive (the sink stores them without it) but no case is processed, which a quiet
    # night never looks like; only the last day is read, as the tables are ordered by event time. Case status
    # events are left out: one the lifecycle refuses (a step out of order) changes no case, and must not page.
    AlertDef("processing_stalled", "案件处理中断", f"""
WITH ({_RECEIVED_5_TO_10_MIN_AGO.format(table="raw_tickets")}) + ({_RECEIVED_5_TO_10_MIN_AGO.format(table="raw_app_reports")})
     AS waiting,
     (SELECT count() FROM case_history WHERE occurred_at >= now64(3) - INTERVAL 1 DAY
                                         AND processed_at >= now64(3) - INTERVAL 10 MINUTE) AS processed
SELECT now() AS time, toFloat64(if(processed = 0, waiting, 0)) AS value""", above=0, pending="5m",
             severity="critical", department=OPS,
             summary="{{ $values.B }} 条热线工单和随手拍已入库 5 分钟以上，但 10 分钟内没有任何案件被处理：检查流处理 worker（cityops worker）是否卡住"),
    AlertDef("dead_letter_rate", "死信率过高", f"""
WITH ({SOURCE_DEAD_LETTERS}) AS dead,
     {SOURCE_ACCEPTED} AS accepted
SELECT now() AS time, dead / greatest(dead + accepted, 1) AS value""", above=0.01, pending="5m",
             severity="warning", department=OPS,
             summary="近 10 分钟 {{ $values.B }} 的消息进入死信（阈值 1%）：检查生产端格式与 schema 版本"),
)


def rule_sql(rule: AlertDef) -> str:
    return rule.sql.strip().replace("{emergency}", _emergency_labels())


def _rule(rule: AlertDef) -> dict:
    model = ch.ClickHouseQuery("A", rule_sql(rule), ch.Format.time_series).to_json()
    model |= {"intervalMs": 1000, "maxDataPoints": 43200}
    labels = {"severity": rule.severity, "source": "cityops"} | ({"department": rule.department}
                                                                  if rule.department else {})
    return {
        "uid": rule.uid, "title": rule.title, "condition": "C",
        "data": [
            {"refId": "A", "relativeTimeRange": {"from": rule.window_s, "to": 0}, "datasourceUid": ch.DATASOURCE_UID,
             "model": model},
            {"refId": "B", "datasourceUid": EXPR,
             "model": {"refId": "B", "type": "reduce", "expression": "A", "reducer": "last",
                       "settings": {"mode": "dropNN"}}},
            {"refId": "C", "datasourceUid": EXPR,
             "model": {"refId": "C", "type": "threshold", "expression": "B",
                       "conditions": [{"evaluator": {"type": "gt", "params": [rule.above]}}]}},
        ],
        "noDataState": "OK", "execErrState": "Error", "for": rule.pending,
        "labels": labels, "annotations": {"summary": rule.summary},
        "isPaused": False,
    }


def departments() -> list[str]:
    """Everyone who can be paged: the taxonomy's departments, then the platform's duty desk."""
    seen = dict.fromkeys(c.department for c in load_taxonomy().categories)
    return [*seen, OPS]


def _receivers(department: str, env: dict[str, str]) -> list[dict]:
    """A webhook to the pager for every department; WeCom / DingTalk robots too where a URL is configured
    (CITYOPS_WECOM_<SLUG>_URL for the department's own robot, else WECOM_WEBHOOK_URL; same for DingTalk).
    Files hold `${VAR}` references, never the URLs themselves."""
    s = slug(department)
    out = [{"uid": f"cityops-{s}-webhook", "type": "webhook", "disableResolveMessage": False,
            "settings": {"url": f"${{{WEBHOOK_BASE_ENV}}}/departments/{s}", "httpMethod": "POST"}}]
    for kind, grafana_type, key, shared in (("wecom", "wecom", "msgtype", "WECOM_WEBHOOK_URL"),
                                            ("dingtalk", "dingding", "msgType", "DINGTALK_WEBHOOK_URL")):
        own = f"CITYOPS_{kind.upper()}_{s.upper()}_URL"     # the department's own robot, else the shared one
        var = own if env.get(own) else shared if env.get(shared) else None
        if var:
            out.append({"uid": f"cityops-{s}-{kind}", "type": grafana_type,
                        "settings": {"url": f"${{{var}}}", key: "markdown"}})
    return out


def contact_points(env: dict[str, str] | None = None) -> list[dict]:
    env = os.environ if env is None else env
    return [{"orgId": 1, "name": d, "receivers": _receivers(d, env)} for d in departments()]


def policy_tree() -> dict:
    return {
        "receiver": OPS, "group_by": ["grafana_folder", "alertname", "department"],
        "group_wait": "10s", "group_interval": "1m", "repeat_interval": "1h",
        "routes": [{"receiver": d, "object_matchers": [["department", "=", d]], "continue": False}
                   for d in departments() if d != OPS],
    }


def provisioning(env: dict[str, str] | None = None) -> dict:
    """One Grafana alerting provisioning document (apiVersion 1): rule group, contact points, policies."""
    return {
        "apiVersion": 1,
        "groups": [{"orgId": 1, "name": "城市运行告警", "folder": FOLDER_TITLE, "interval": "1m",
                    "rules": [_rule(r) for r in RULES]}],
        "contactPoints": contact_points(env),
        "policies": [{"orgId": 1, **policy_tree()}],
    }


def api_rule(rule: AlertDef) -> dict:
    """The same rule in the HTTP provisioning API's shape (folder and group by uid/name)."""
    return _rule(rule) | {"folderUID": FOLDER_UID, "ruleGroup": "城市运行告警", "orgID": 1}
