"""What a webhook receives, per format (personal data masked), and how a target is written down without its
token."""
from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from cityops.models.alerts import Alert
from cityops.pii import mask_text

SH = ZoneInfo("Asia/Shanghai")
CHANNELS = {"wecom": "wecom", "dingtalk": "dingtalk", "json": "webhook"}   # Delivery.channel
SEVERITY = {"critical": "紧急", "warning": "警告", "info": "提示"}
WECOM_MAX_BYTES = 4096   # the robot API rejects longer markdown content
_SECRET = re.compile(r"(?i)((?:key|access_token|token|sign|secret)=)[^&#]*")


def redact(url: str) -> str:
    """The URL with token query values replaced: recorded targets never carry secrets."""
    return _SECRET.sub(r"\1***", url)


def markdown(alert: Alert) -> str:
    at = alert.occurred_at.astimezone(SH).strftime("%Y-%m-%d %H:%M")
    lines = [f"## {alert.title}",
             f"> 级别：{SEVERITY.get(alert.severity, alert.severity)}　部门：{alert.department}",
             *([f"> 区县：{alert.district_code}" + (f"　网格：{alert.grid_code}" if alert.grid_code else "")]
               if alert.district_code else []),
             f"> 时间：{at}", "", alert.detail, "", f"编号：{alert.alert_id}"]
    return "\n".join(lines)


def _fit(text: str, max_bytes: int) -> str:
    data = text.encode()
    return text if len(data) <= max_bytes else data[:max_bytes - 3].decode(errors="ignore") + "…"


def body(fmt: str, alert: Alert) -> dict:
    # A case's complaint text can reach an alert's detail; a robot's chat group is no place for the caller.
    alert = alert.model_copy(update={"title": mask_text(alert.title), "detail": mask_text(alert.detail)})
    if fmt == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": _fit(markdown(alert), WECOM_MAX_BYTES)}}
    if fmt == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": alert.title, "text": markdown(alert)}}
    return alert.model_dump(mode="json")


def robot_error(fmt: str, response_json) -> str:
    """WeCom and DingTalk answer HTTP 200 with `errcode` ≠ 0 when they refuse a message (bad token, rate)."""
    if fmt in ("wecom", "dingtalk") and isinstance(response_json, dict) and response_json.get("errcode", 0) != 0:
        return f"errcode {response_json.get('errcode')}: {response_json.get('errmsg', '')}"[:300]
    return ""
