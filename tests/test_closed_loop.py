"""One closed loop for every case (pure logic): the statuses of any source's case, escalation level by level to the
city, 签收 in time or flagged, and device cases verified or found falsely closed by the device's own readings."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import orjson
import pytest

from cityops.models import CaseEvent, SensorEvent
from cityops.models.alerts import Alert
from cityops.models.cases import CaseCommand, DeviceCheck
from cityops.models.reports import AppReport
from cityops.taxonomy import load_taxonomy
from streams.aggregates.windows import MinuteCounts
from streams.cases import lifecycle
from streams.dispatch import due_at
from streams.state import DictKV

TAX = load_taxonomy()
T0 = (datetime.now(timezone.utc) - timedelta(days=3)).replace(microsecond=0)


def draft(label="暴露垃圾", source="app", received=T0, case_id="APP-000001", **kw) -> dict:
    cat = TAX.by_label(label)
    return {"case_id": case_id, "event_id": f"e-{case_id}", "source": source, "status": "created",
            "occurred_at": received.isoformat(), "received_at": received.isoformat(), "text": "", "address": "",
            "placed": False, "label": label, "code": cat.code, "department": cat.department, "tier": cat.tier.value,
            "time_limit_minutes": cat.time_limit, "confidence": 0.9,
            "due_at": due_at(received, cat.time_limit, TAX.working_hours, clock=cat.clock).isoformat(), **kw}


def event(status: str, at: datetime, n: int, case_id="APP-000001", **kw) -> dict:
    ev = CaseEvent(event_id=f"ev-{case_id}-{n}", case_id=case_id, status=status, system="szcg", occurred_at=at,
                   received_at=at, **kw)
    return ev.model_dump(mode="json", exclude_none=True)


def test_an_app_case_goes_through_every_status_from_case_events():
    s, _, _ = lifecycle.open_case(None, draft(), 0, TAX)
    steps = [("dispatched", dict(department="环卫", tier="street")), ("accepted", {}),
             ("resolved", dict(resolution_mode="服务", note="已清理，联系人王五 13912345678")),
             ("verified", {}), ("closed", {})]
    versions = []
    for n, (status, kw) in enumerate(steps):
        s, out, _ = lifecycle.apply_ticket(s, event(status, T0 + timedelta(hours=n + 1), n, **kw), n, TAX,
                                           "case.events")
        versions += out
    assert [c["status"] for c in versions] == [s for s, _ in steps]
    case = s["case"]
    assert case["tier"] == "street" and case["department"] == "环卫" and case["resolution_mode"] == "服务"
    assert case["dispatched_at"] and case["accepted_at"] and case["resolved_at"] and case["closed_at"]
    assert "13912345678" not in versions[2]["note"] and "王五" not in versions[2]["note"]   # masked
    assert versions[0]["accept_due_at"] == due_at(T0 + timedelta(hours=1), TAX.accept_limit, TAX.working_hours
                                                  ).isoformat()
    # Replays (the same offset of the same topic) change nothing; a hotline offset is another topic's.
    assert lifecycle.apply_ticket(s, event("reopened", T0, 9), 4, TAX, "case.events")[:2] == (s, [case])
    assert lifecycle.due(case) is None


def test_an_overdue_case_climbs_one_level_at_a_time_to_the_city_and_pages_each():
    s, _, _ = lifecycle.open_case(None, draft(received=T0 - timedelta(days=30)), 0, TAX)
    assert s["case"]["tier"] == "grid"
    levels, alerts = [], []
    for _ in range(8):
        s, out, a = lifecycle.check_overdue(s, datetime.now(timezone.utc), TAX)
        levels += [c["tier"] for c in out]
        alerts += a
    assert levels == ["community", "street", "district", "city"]
    assert [(a.rule, a.level) for a in alerts] == [("overdue_case", lv) for lv in levels]
    assert len({a.alert_id for a in alerts}) == 4 and s["case"]["escalations"] == 4 and s["case"]["overdue"]
    assert lifecycle.due(s["case"]) is None   # the city is the top: nothing left to escalate


def test_a_case_not_accepted_in_time_is_flagged_once_and_its_department_alerted():
    s, _, _ = lifecycle.open_case(None, draft("井盖缺损", received=T0), 0, TAX)
    s, out, _ = lifecycle.apply_ticket(s, event("dispatched", T0, 1, department="市政", tier="street"), 1, TAX,
                                       "case.events")
    accept_due = datetime.fromisoformat(out[0]["accept_due_at"])
    assert accept_due == T0 + timedelta(minutes=TAX.accept_limit_of(TAX.by_label("井盖缺损")))
    s2, out, alerts = lifecycle.check_overdue(s, accept_due + timedelta(seconds=1), TAX)
    assert out[0]["accept_overdue"] and [a.rule for a in alerts][0] == "accept_overdue"
    s3, out, alerts = lifecycle.check_overdue(s2, accept_due + timedelta(seconds=2), TAX)
    assert all(a.rule != "accept_overdue" for a in alerts)
    s4, out, _ = lifecycle.apply_ticket(s2, event("accepted", accept_due + timedelta(minutes=5), 2), 2, TAX,
                                        "case.events")
    assert out[0]["accepted_at"] and out[0]["accept_overdue"]   # accepted, late: the flag stays for the record


def test_a_returned_case_waits_for_a_new_dispatch():
    s, _, _ = lifecycle.open_case(None, draft(), 0, TAX)
    s, _, _ = lifecycle.apply_ticket(s, event("dispatched", T0, 1, department="住建"), 1, TAX, "case.events")
    s, out, _ = lifecycle.apply_ticket(s, event("returned", T0 + timedelta(minutes=10), 2, note="非本部门职责"), 2,
                                       TAX, "case.events")
    assert out[0]["status"] == "returned" and out[0]["accept_due_at"] is None and out[0]["note"] == "非本部门职责"
    s, out, _ = lifecycle.apply_ticket(s, event("dispatched", T0 + timedelta(minutes=20), 3, department="环卫"), 3,
                                       TAX, "case.events")
    assert out[0]["department"] == "环卫" and out[0]["accept_due_at"]


@pytest.fixture
def sources():
    from streams.classify import Classifier
    from streams.placement import default_placer
    from streams.sensors.limits import load_limits
    from streams.sources import Sources

    return Sources(placer=default_placer(), classifier=Classifier.default(), taxonomy=TAX,
                   counts=MinuteCounts(DictKV()), devices=DictKV(), limits=load_limits(), pii_key="k")


def _commands(outs) -> list:
    return [CaseCommand.model_validate_json(v).root for t, _, v in outs if t == "streams.case-commands"]


def _reading(device: str, at: datetime, value: float, event: str = "reading") -> bytes:
    return SensorEvent(device_id=device, kind="water_depth", event=event, value=value, lat=36.81, lon=118.05,
                       occurred_at=at, alert_code="flood" if event == "alert" else None).to_bytes()


def test_a_device_case_is_verified_by_its_readings_or_reopened_as_a_false_closure(sources):
    at = T0
    (topic, _, cand), = sources.sensor(_reading("WD-001", at, 30.0, "alert"), b"WD-001", "sensor.events", 0, 1)
    case = orjson.loads(cand)["case"]
    assert (case["discovered_by"], case["device_id"], case["source"]) == ("sensor", "WD-001", "sensor")
    state, _, _ = lifecycle.open_case(None, case, 0, TAX)
    cid = case["case_id"]
    state, out, _ = lifecycle.apply_ticket(state, event("resolved", at + timedelta(hours=1), 1, case_id=cid,
                                                        resolution_mode="管理"), 1, TAX, "case.events")
    chk = DeviceCheck(device_id="WD-001", case_id=cid, resolved_at=at + timedelta(hours=1), version=out[0]["version"])
    sources.check(chk.model_dump_json().encode(), "streams.device-checks", 0, 1)
    # Still flooding after the "repair" (over the limit for the kind's sustain time): the case reopens as a false
    # closure and the supervisor is paged; one reading over the limit is not yet an alarm.
    assert _commands(sources.sensor(_reading("WD-001", at + timedelta(hours=1, minutes=5), 40.0), b"WD-001",
                                    "sensor.events", 0, 2)) == []
    cmds = _commands(sources.sensor(_reading("WD-001", at + timedelta(hours=1, minutes=8), 41.0), b"WD-001",
                                    "sensor.events", 0, 5))
    assert [c.event["status"] for c in cmds] == ["reopened"] and cmds[0].event["false_closure"]
    state, out, alerts = lifecycle.apply_ticket(state, cmds[0].event, cmds[0].source_offset, TAX, cmds[0].source_topic)
    assert out[0]["status"] == "reopened" and out[0]["false_closures"] == 1
    assert [(a.rule, a.level) for a in alerts] == [("false_closure", "supervisor")]
    # Resolved again, then normal readings for the hold time: 核查通过, then closed.
    state, out, _ = lifecycle.apply_ticket(state, event("resolved", at + timedelta(hours=2), 3, case_id=cid,
                                                        resolution_mode="服务"), 3, TAX, "case.events")
    sources.check(DeviceCheck(device_id="WD-001", case_id=cid, resolved_at=at + timedelta(hours=2),
                              version=out[0]["version"]).model_dump_json().encode(), "streams.device-checks", 0, 2)
    assert _commands(sources.sensor(_reading("WD-001", at + timedelta(hours=2, minutes=10), 2.0), b"WD-001",
                                    "sensor.events", 0, 6)) == []    # normal, but not for long enough yet
    cmds = _commands(sources.sensor(_reading("WD-001", at + timedelta(hours=2, minutes=31), 1.0), b"WD-001",
                                    "sensor.events", 0, 7))
    assert [c.event["status"] for c in cmds] == ["verified"]
    state, out, _ = lifecycle.apply_ticket(state, cmds[0].event, cmds[0].source_offset, TAX, cmds[0].source_topic)
    assert [c["status"] for c in out] == ["verified", "closed"] and out[-1]["closed_at"]
    # A replayed reading re-emits its command (its first copy may have been lost); the case applies it once.
    again = _commands(sources.sensor(_reading("WD-001", at + timedelta(hours=2, minutes=31), 1.0), b"WD-001",
                                     "sensor.events", 0, 7))
    assert again == cmds
    assert lifecycle.apply_ticket(state, again[0].event, again[0].source_offset, TAX, again[0].source_topic)[1] == \
        [state["case"]]


def test_a_grid_workers_report_is_proactive_discovery(sources):
    for role, found in (("grid_worker", "patrol"), ("resident", "citizen")):
        report = AppReport(report_id=f"R-{role[:4]}01", text="路边垃圾没人清", lat=36.81, lon=118.05,
                           occurred_at=T0, reporter_role=role)
        (_, _, cand), = sources.app(report.to_bytes(), None, "app.reports", 0, 1)
        assert orjson.loads(cand)["case"]["discovered_by"] == found


def test_the_pager_pages_the_level_named_by_the_alert():
    from pager.service import Pager

    hooks = {name: [SimpleNamespace(key=name)] for name in ("市政", "市政@city", "@city", "@district", "*")}
    pager = SimpleNamespace(webhooks=hooks)
    alert = Alert(alert_id="a@1", rule="overdue_case", severity="warning", department="市政", level="city",
                  dedup_key="k", title="超期", occurred_at=T0)
    assert [h.key for h in Pager.targets(pager, alert)] == ["市政", "市政@city", "@city", "*"]
    assert [h.key for h in Pager.targets(pager, alert.model_copy(update={"level": ""}))] == ["市政", "*"]


def test_an_alarm_that_comes_before_its_check_still_reopens_the_case(sources):
    """At speed the device's next alarm can reach the worker before the resolved case's check: the check then
    finds the alarm noted after the resolution and reopens the case at once."""
    at = T0
    (_, _, cand), = sources.sensor(_reading("WD-002", at, 30.0, "alert"), b"WD-002", "sensor.events", 1, 1)
    cid = orjson.loads(cand)["case"]["case_id"]
    for n, minutes in enumerate((2, 5), start=2):   # over the limit for the sustain time: in alarm again
        sources.sensor(_reading("WD-002", at + timedelta(hours=1, minutes=minutes), 35.0), b"WD-002", "sensor.events",
                       1, n)
    chk = DeviceCheck(device_id="WD-002", case_id=cid, resolved_at=at + timedelta(hours=1), version=3)
    cmds = _commands(sources.check(chk.model_dump_json().encode(), "streams.device-checks", 1, 7))
    assert [(c.event["status"], c.event["false_closure"], c.source_offset) for c in cmds] == [("reopened", True, 7)]
    earlier = DeviceCheck(device_id="WD-002", case_id=cid, resolved_at=at + timedelta(hours=2), version=5)
    assert sources.check(earlier.model_dump_json().encode(), "streams.device-checks", 1, 8) == []   # dry since
