"""One case from each source through every status, against the real broker, worker, sink, intake and warehouse:

- a 12345 ticket dispatched, accepted, left overdue until it has climbed to the city, then resolved, visited back
  and closed;
- a citizen's 随手拍 through the Open311 intake, dispatched by the 数字城管 platform, accepted and resolved by the
  department on the intake's department endpoint — the reporter's `georeport` client then reads it closed with the
  department's note — then verified and closed;
- a grid worker's report: proactive discovery (主动发现) in the warehouse;
- a device's alarm: resolved by its department while the water is still deep (the device's reading reopens it as a
  false closure and pages the supervisor), resolved again, and verified by 30 minutes of normal readings."""
from __future__ import annotations

import json
import os
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import yaml
from georeport import GeoReport
from kafka import KafkaConsumer, KafkaProducer

from bench.pipeline import WORKER_GROUP, Pipeline, lag, query
from cityops.models import CaseEvent, SensorEvent, TicketEvent
from cityops.topics import ALERTS, CASE_EVENTS, CASES, DEVICE_CHECKS, HOTLINE_TICKETS, SENSOR_EVENTS
from tests.intake_server import KEY, serving

pytestmark = pytest.mark.integration
DEPT_KEY = "key-of-huanwei-for-the-loop-test"
NOW = datetime.now(timezone.utc).replace(microsecond=0)


class City:
    def __init__(self, env: dict, home: Path, bootstrap: str):
        self.env, self.home, self.bootstrap = env, home, bootstrap
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")

    def send(self, topic: str, key: str, value: bytes) -> None:
        self.producer.send(topic, key=key.encode(), value=value).get(30)

    def versions(self, case_id: str) -> list[dict]:
        return [v for v in _read(self.bootstrap, CASES.name) if v.get("case_id") == case_id]

    def wait(self, what, check, timeout: float = 120.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if got := check():
                return got
            time.sleep(0.5)
        raise AssertionError(f"{what}: not within {timeout:.0f} s")


def _read(bootstrap: str, topic: str) -> list[dict]:
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                      consumer_timeout_ms=1500)
    out = []
    for m in c:
        try:
            out.append(json.loads(m.value))
        except (ValueError, TypeError):
            continue
    c.close()
    return out


def case_event(case_id: str, status: str, at: datetime, n: int, **kw) -> bytes:
    return CaseEvent(event_id=f"{case_id}-{n}", case_id=case_id, status=status, system="szcg", occurred_at=at,
                     received_at=at, **kw).to_bytes()


@pytest.fixture(scope="module")
def city(broker, stack_env, tmp_path_factory):
    home = tmp_path_factory.mktemp("loop")
    keys = home / "department-keys.yaml"
    keys.write_text(yaml.safe_dump({"环卫": DEPT_KEY}, allow_unicode=True), encoding="utf-8")
    env = {**os.environ, **stack_env, "PYTHONUNBUFFERED": "1", "CITYOPS_CLICKHOUSE_URL": f"chdb://{home / 'ch'}",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(Path(__file__).parents[1])}
    pipe = Pipeline(env, home, sink_group=f"loop-sink-{uuid.uuid4().hex[:6]}")
    with serving(stack_env, home / "intake", department_keys=str(keys)) as intake:
        try:
            pipe.start_worker()
            pipe.start_sink()
            c = City(env, home, stack_env["CITYOPS_BOOTSTRAP_SERVERS"])
            c.pipe, c.intake = pipe, intake
            yield c
        finally:
            pipe.stop()


def test_a_hotline_ticket_climbs_to_the_city_and_closes(city):
    tid = f"LOOP-T{uuid.uuid4().hex[:6]}"
    created = NOW - timedelta(days=40)      # its time limit ran out weeks ago
    for n, (status, kw) in enumerate([("created", dict(text="小区门口垃圾堆了一个星期没人清理", channel="phone",
                                                       lat=36.81, lon=118.05)),
                                      ("dispatched", dict(department="环卫", tier="street")), ("accepted", {})]):
        ev = TicketEvent(event_id=f"{tid}-{n}", ticket_id=tid, status=status, occurred_at=created + timedelta(hours=n),
                         received_at=created + timedelta(hours=n), **kw)
        city.send(HOTLINE_TICKETS.name, tid, ev.to_bytes())
    top = city.wait("the ticket escalated to the city",
                    lambda: [v for v in city.versions(tid) if v["tier"] == "city"], timeout=180)
    assert top[0]["overdue"] and top[0]["escalations"] >= 2
    levels = [v["tier"] for v in city.versions(tid) if v["overdue"]]
    assert levels[:2] == ["district", "city"]
    paged = {a["level"] for a in _read(city.bootstrap, ALERTS.name) if a.get("subject_id") == tid}
    assert {"district", "city"} <= paged
    for n, (status, kw) in enumerate([("resolved", dict(resolution_mode="服务")),
                                      ("return_visit", dict(satisfaction="满意")), ("closed", {})], start=3):
        ev = TicketEvent(event_id=f"{tid}-{n}", ticket_id=tid, status=status, occurred_at=NOW - timedelta(minutes=10 - n),
                         received_at=NOW - timedelta(minutes=10 - n), **kw)
        city.send(HOTLINE_TICKETS.name, tid, ev.to_bytes())
    last = city.wait("the ticket closed", lambda: [v for v in city.versions(tid) if v["status"] == "closed"])[0]
    seen = [v["status"] for v in city.versions(tid)]
    for status in ("created", "dispatched", "accepted", "resolved", "return_visit", "closed"):
        assert status in seen
    assert last["closed_at"] and last["resolved_at"] and last["accepted_at"] and last["tier"] == "city"


def test_a_citizens_report_is_resolved_by_its_department_and_the_reporter_reads_it_closed(city):
    r = city.intake.post(service_code="0102", lat="36.8101", long="118.0502", description="路边暴露垃圾很多，味道很大")
    assert r.status_code == 201, r.text
    rid = r.json()[0]["service_request_id"]
    city.wait("the report's case", lambda: city.versions(rid))
    city.send(CASE_EVENTS.name, rid, case_event(rid, "dispatched", NOW - timedelta(minutes=5), 1, department="环卫",
                                                tier="community"))
    city.wait("dispatched", lambda: [v for v in city.versions(rid) if v["status"] == "dispatched"])
    url = f"{city.intake.url.rsplit('/open311', 1)[0]}/departments/v1/cases/{rid}/events"

    def report(body: dict, key: str = DEPT_KEY) -> httpx.Response:
        return httpx.post(url, json=body, headers={"X-API-Key": key}, timeout=30)

    # The intake knows the dispatch once it has followed the case.
    accepted = city.wait("accepted by the department", lambda: (r := report({"action": "accept"})).status_code in
                         (200, 202) and r)
    assert accepted.json()["status"] == "accepted"
    city.wait("accepted", lambda: [v for v in city.versions(rid) if v["status"] == "accepted"])
    assert report({"action": "resolve"}).status_code == 400            # the 721 mode is required
    assert report({"action": "resolve", "resolution_mode": "服务", "note": "已清理完毕"}, "wrong-key").status_code == 401
    r = report({"action": "resolve", "resolution_mode": "服务", "note": "已清理完毕",
                "photo_url": "https://img.example/after.jpg"})
    assert r.status_code in (200, 202), r.text
    city.wait("resolved", lambda: [v for v in city.versions(rid) if v["status"] == "resolved"])
    got = city.wait("the reporter reads it closed", lambda: (g := GeoReport(city.intake.url, api_key=KEY)
                                                               .get_service_request(rid))["status"] == "closed" and g)
    assert "已清理完毕" in got["status_notes"] and got["updated_datetime"]
    for n, status in enumerate(("verified", "closed"), start=2):
        city.send(CASE_EVENTS.name, rid, case_event(rid, status, NOW - timedelta(minutes=2 - n / 2), n))
    last = city.wait("closed", lambda: [v for v in city.versions(rid) if v["status"] == "closed"])[0]
    assert [v["status"] for v in city.versions(rid)][:5] == ["created", "dispatched", "accepted", "resolved",
                                                            "verified"]
    assert last["resolution_mode"] == "服务" and last["discovered_by"] == "citizen"


def test_a_grid_workers_report_is_proactive_discovery(city):
    r = city.intake.post(service_code="0102", lat="36.8005", long="118.0405", description="巡查发现道路边有暴露垃圾",
                         **{"attribute[reporter_role]": "grid_worker"})
    assert r.status_code == 201, r.text
    rid = r.json()[0]["service_request_id"]
    first = city.wait("the patrol's case", lambda: city.versions(rid))[0]
    assert first["discovered_by"] == "patrol"


def test_a_device_catches_a_false_closure_and_then_verifies_the_repair(city):
    dev = f"WD-LOOP-{uuid.uuid4().hex[:6]}"
    t0 = NOW - timedelta(hours=4)

    def reading(at: datetime, value: float, event: str = "reading") -> bytes:
        return SensorEvent(event_id=f"{dev}-{int(at.timestamp())}-{event}", device_id=dev, kind="water_depth",
                           event=event, value=value, lat=36.812, lon=118.052, occurred_at=at,
                           alert_code="flood" if event == "alert" else None).to_bytes()

    city.send(SENSOR_EVENTS.name, dev, reading(t0, 32.0, "alert"))
    case = city.wait("the alarm's case", lambda: [v for v in _read(city.bootstrap, CASES.name)
                                                  if v.get("device_id") == dev])[0]
    cid = case["case_id"]
    assert case["discovered_by"] == "sensor" and case["source"] == "sensor"
    city.send(CASE_EVENTS.name, cid, case_event(cid, "dispatched", t0 + timedelta(minutes=5), 1, department="水务"))

    def resolve(n: int, at: datetime) -> None:
        before = _checks(city.bootstrap, dev)
        city.send(CASE_EVENTS.name, cid, case_event(cid, "resolved", at, n, resolution_mode="管理"))
        city.wait("the device check handled", lambda: _checks(city.bootstrap, dev) > before and
                  lag(city.bootstrap, WORKER_GROUP, [DEVICE_CHECKS.name]) == 0)

    resolve(2, t0 + timedelta(minutes=30))
    for minutes in (35, 38):                                                            # still flooded
        city.send(SENSOR_EVENTS.name, dev, reading(t0 + timedelta(minutes=minutes), 40.0))
    reopened = city.wait("reopened as a false closure",
                         lambda: [v for v in city.versions(cid) if v["status"] == "reopened"])[0]
    assert reopened["false_closures"] == 1
    assert city.wait("the supervisor paged", lambda: [a for a in _read(city.bootstrap, ALERTS.name)
                                                      if a.get("subject_id") == cid and a["rule"] == "false_closure"])[0][
        "level"] == "supervisor"
    resolve(3, t0 + timedelta(hours=1))
    for minutes in (5, 20, 31):                                                         # dry, for 30 minutes
        city.send(SENSOR_EVENTS.name, dev, reading(t0 + timedelta(hours=1, minutes=minutes), 1.0))
    last = city.wait("verified and closed", lambda: [v for v in city.versions(cid) if v["status"] == "closed"])[0]
    statuses = [v["status"] for v in city.versions(cid)]
    assert statuses.index("verified") == statuses.index("closed") - 1 and last["false_closures"] == 1


def _checks(bootstrap: str, device: str) -> int:
    return sum(1 for c in _read(bootstrap, DEVICE_CHECKS.name) if c.get("device_id") == device)


def test_the_warehouse_holds_each_sources_case_with_its_discovery_channel(city):
    """A ticket, a grid worker's report and a device alarm of its own, stored with what found them."""
    tid, dev = f"LOOP-W{uuid.uuid4().hex[:6]}", f"WD-LOOP-W{uuid.uuid4().hex[:6]}"
    city.send(HOTLINE_TICKETS.name, tid, TicketEvent(ticket_id=tid, status="created", text="路灯不亮了", lat=36.81,
                                                      lon=118.05, occurred_at=NOW - timedelta(minutes=5)).to_bytes())
    r = city.intake.post(service_code="0102", lat="36.8015", long="118.0415", description="巡查发现垃圾堆放",
                         **{"attribute[reporter_role]": "grid_worker"})
    assert r.status_code == 201, r.text
    rid = r.json()[0]["service_request_id"]
    city.send(SENSOR_EVENTS.name, dev, SensorEvent(device_id=dev, kind="water_depth", event="alert", value=31.0,
                                                   lat=36.813, lon=118.053, alert_code="flood",
                                                   occurred_at=NOW - timedelta(minutes=5)).to_bytes())
    city.send(CASE_EVENTS.name, rid, case_event(rid, "dispatched", NOW - timedelta(minutes=1), 1, department="环卫"))
    city.wait("three cases", lambda: city.versions(tid) and [v for v in city.versions(rid) if v["version"] == 2] and
              [v for v in _read(city.bootstrap, CASES.name) if v.get("device_id") == dev])
    city.pipe.wait_processed(timeout=180)
    city.pipe.stop("sink")   # the embedded warehouse admits one process: read it between two sinks
    try:
        rows = query(city.env["CITYOPS_CLICKHOUSE_URL"], {
            "cases": f"SELECT source, discovered_by, status, department FROM case_current FINAL "
                     f"WHERE case_id IN ('{tid}', '{rid}') OR device_id = '{dev}'",
            "events": f"SELECT status, department FROM raw_case_events WHERE case_id = '{rid}'"})
    finally:
        city.pipe.restart("sink")
    assert sorted(r[:2] for r in rows["cases"]) == [["app", "patrol"], ["hotline", "citizen"], ["sensor", "sensor"]]
    assert ["app", "patrol", "dispatched", "环卫"] in rows["cases"]
    assert rows["events"] == [["dispatched", "环卫"]]
