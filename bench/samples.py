"""Valid sample events for every topic the sink reads, for tests and the benchmark.

`prefix` makes ids unique per run, so a test counts its own rows on a broker shared with other tests."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from pydantic import BaseModel

from cityops.models import AppReport, CaseUpdate, SensorEvent, TicketEvent
from cityops.models.aggregates import MinuteCount
from cityops.models.alerts import Alert, Delivery
from cityops.models.incidents import Incident

DISTRICTS = ("370302", "370303", "370304", "370305", "370306")
LABELS = (("0105", "油烟污染", "生态环境"), ("0401", "占道经营", "城管执法"), ("0201", "非法小广告", "城管执法"),
          ("0102", "暴露垃圾", "环卫"), ("B0101", "井盖缺损", "市政"))
TEXTS = ("我叫张三，电话13812345678，楼下烧烤油烟很大", "身份证370303199001011234，路边有人占道经营",
         "小区门口有小广告，联系人李四 0533-2345678", "垃圾桶满了没人清理")


def _t(i: int, now: datetime) -> datetime:
    return now - timedelta(seconds=i % 86_400)


def _grid(i: int) -> tuple[str, str, str]:
    district = DISTRICTS[i % len(DISTRICTS)]
    street = f"{district}{(i // 5) % 9 + 1:03d}"
    return district, street, f"{street}{i % 7 + 1:03d}{i % 11 + 1:03d}"


def ticket(prefix: str, i: int, now: datetime) -> TicketEvent:
    district, _, grid = _grid(i)
    return TicketEvent(ticket_id=f"{prefix}-T{i}", status="created", occurred_at=_t(i, now), text=TEXTS[i % 4],
                       caller_phone=f"139{i % 100_000_000:08d}", caller_name="王小明", district_code=district,
                       grid_code=grid, address="张店区人民西路8号", channel="phone")


def sensor(prefix: str, i: int, now: datetime) -> SensorEvent:
    district, _, grid = _grid(i)
    return SensorEvent(device_id=f"{prefix}-D{i % 500}", kind="cooking_fume", value=round(random.random() * 4, 2),
                       occurred_at=_t(i, now), lat=36.81, lon=118.05, district_code=district, grid_code=grid)


def report(prefix: str, i: int, now: datetime) -> AppReport:
    district, _, grid = _grid(i)
    return AppReport(report_id=f"{prefix}-R{i}", text=TEXTS[(i + 1) % 4], occurred_at=_t(i, now), lat=36.8, lon=118.0,
                     reporter_phone="13700001111", photo_url="https://img.example.cn/p/1.jpg",
                     district_code=district, grid_code=grid)


def case(prefix: str, i: int, now: datetime, version: int = 1) -> CaseUpdate:
    district, street, grid = _grid(i)
    code, label, dept = LABELS[i % len(LABELS)]
    status = ("created", "dispatched", "resolved")[(version - 1) % 3]
    return CaseUpdate(case_id=f"{prefix}-C{i}", version=version, event_id=f"{prefix}-E{i}-{version}", source="hotline",
                      status=status, occurred_at=_t(i, now), received_at=_t(i, now), text="楼下烧烤油烟很大",
                      placed=True, grid_code=grid, district_code=district, street_code=street, label=label, code=code,
                      department=dept, tier="community", time_limit_minutes=120, confidence=0.9,
                      resolution_mode="服务" if status == "resolved" else None)


def incident(prefix: str, i: int, now: datetime) -> Incident:
    district, street, grid = _grid(i)
    return Incident(incident_id=f"{prefix}-I{i}", version=1, device_id=f"{prefix}-D{i}", kind="cooking_fume",
                    state="open", opened_at=_t(i, now), peak_value=3.2, limit=2.0, unit="mg/m³", lat=36.81, lon=118.05,
                    grid_code=grid, district_code=district, street_code=street, label="油烟污染", department="生态环境")


def minute_count(prefix: str, i: int, now: datetime) -> MinuteCount:
    district, street, _ = _grid(i)
    minute = (now - timedelta(minutes=i)).replace(second=0, microsecond=0)
    return MinuteCount(minute=minute, district_code=district, street_code=street, source="hotline",
                       label=f"{prefix}-L", count=i % 9 + 1)


def alert(prefix: str, i: int, now: datetime) -> Alert:
    return Alert(alert_id=f"{prefix}-A{i}", rule="incident_opened", severity="critical", department="生态环境",
                 dedup_key=f"{prefix}-K{i}", title="油烟超标", occurred_at=_t(i, now))


def delivery(prefix: str, i: int, now: datetime) -> Delivery:
    return Delivery(alert_id=f"{prefix}-A{i}", department="生态环境", channel="webhook", target="https://hook/***",
                    attempt=1, status="delivered", http_status=200)


BY_TOPIC = {"hotline.tickets": ticket, "sensor.events": sensor, "app.reports": report, "cases": case,
            "incidents": incident, "aggregates": minute_count, "alerts": alert, "deliveries": delivery}


def make(topic: str, prefix: str, n: int, now: datetime | None = None) -> list[BaseModel]:
    now = now or datetime.now(timezone.utc)
    return [BY_TOPIC[topic](prefix, i, now) for i in range(n)]
