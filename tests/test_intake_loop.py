"""The intake closes the loop with the reporter and the departments, against the real broker: it follows the
`cases` topic (the versions are produced here, as the streams worker does), the real `georeport` client sees a
request go from open to closed with the city's notes, and departments report on their cases through
/departments/v1/ with their own keys: what they send is on `case.events`, once; what they may not do is a clear
4xx, and Kafka away is a bounded 503."""
from __future__ import annotations

import os
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import yaml
from georeport import GeoReport

from cityops.models import CaseUpdate
from cityops.topics import CASES
from tests.intake_server import CLI, KEY, serving
from tests.test_intake_faults import frozen
from tests.test_producers import consume

pytestmark = pytest.mark.integration

TZ = timezone(timedelta(hours=8))
KEYS = {"环卫": "key-huanwei-" + "h" * 20, "城管执法": "key-chengguan-" + "c" * 20}


def _key_file(directory) -> str:
    path = directory / "department-keys.yaml"
    path.write_text(yaml.safe_dump(KEYS, allow_unicode=True), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def intake(broker, stack_env, tmp_path_factory):
    data = tmp_path_factory.mktemp("intake-loop")
    with serving(stack_env, data, department_keys=_key_file(data)) as server:
        yield server


@pytest.fixture(scope="module")
def publisher(stack_env):
    from producers.publisher import Publisher

    pub = Publisher(stack_env["CITYOPS_BOOTSTRAP_SERVERS"], client_id="test-streams-worker", linger_ms=0)
    yield pub
    pub.close()


def publish(publisher, *versions: CaseUpdate) -> None:
    """What the streams worker does: each case version on `cases`, keyed by case id."""
    for fut in [publisher.submit(CASES, v) for v in versions]:
        fut.get(timeout=30)


def version(case_id: str, n: int, status: str, department: str = "环卫", **fields) -> CaseUpdate:
    at = datetime.now(TZ).replace(microsecond=0) - timedelta(minutes=30) + timedelta(minutes=n)
    return CaseUpdate(**{"case_id": case_id, "version": n, "event_id": f"{case_id}-v{n}", "source": "app",
                         "status": status, "occurred_at": at, "received_at": at, "text": "路边垃圾没人清",
                         "label": "暴露垃圾", "code": "0102", "department": department, "tier": "grid",
                         "time_limit_minutes": 240, "confidence": 0.9, **fields})


def new_case() -> str:
    return f"T-{uuid.uuid4().hex[:16]}"


def eventually(probe, timeout_s: float = 30.0):
    """`probe()` once it is truthy; the last value in the failure otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = probe()
        if got or time.monotonic() > deadline:
            assert got, f"not within {timeout_s:.0f} s: {got!r}"
            return got
        time.sleep(0.3)


def act(intake, case_id: str, body, key: str | None = KEYS["环卫"], **headers) -> httpx.Response:
    headers = {**({"X-API-Key": key} if key is not None else {}), **headers}
    kw = {"content": body} if isinstance(body, (str, bytes)) else {"json": body}
    return httpx.post(f"{intake.root}/departments/v1/cases/{case_id}/events", headers=headers, timeout=60, **kw)


def known(intake, case_id: str, body: dict | None = None, key: str = KEYS["环卫"]) -> httpx.Response:
    """The first answer that is not 404: the intake has seen the case on `cases`."""
    body = {"action": "accept"} if body is None else body
    return eventually(lambda: (r := act(intake, case_id, body, key)).status_code != 404 and r)


def on_case_events(stack_env, case_id: str) -> list[dict]:
    return consume(stack_env["CITYOPS_BOOTSTRAP_SERVERS"], "case.events", {case_id}, field="case_id")


def test_the_reporter_sees_the_request_go_from_open_to_closed(intake, publisher):
    r = intake.post(service_code="0102", lat="36.81", long="118.05", description="小区门口垃圾堆了三天",
                    headers={"Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 201, r.text
    rid = r.json()[0]["service_request_id"]
    client = GeoReport(intake.url)
    first = client.get_service_request(rid)
    assert first["status"] == "open" and first["status_notes"] == "已受理"

    publish(publisher, version(rid, 1, "created"), version(rid, 2, "dispatched", tier="community"))
    got = eventually(lambda: (d := client.get_service_request(rid))["status_notes"] != "已受理" and d)
    assert got["status"] == "open" and got["status_notes"] == "已派单至环卫（社区）"

    resolved = version(rid, 3, "resolved", resolution_mode="服务", note="垃圾已清运，并增设一个垃圾桶")
    t0 = time.monotonic()
    publish(publisher, resolved, version(rid, 2, "dispatched"))          # a stale version arrives late
    got = eventually(lambda: (d := client.get_service_request(rid))["status"] == "closed" and d)
    assert time.monotonic() - t0 < 5, "the reporter should read the change within seconds"
    assert got["status_notes"] == "已办结：垃圾已清运，并增设一个垃圾桶"
    assert got["updated_datetime"] == resolved.occurred_at.isoformat()
    assert rid in {d["service_request_id"] for d in client.get_service_requests(status="closed")}
    assert rid not in {d["service_request_id"] for d in client.get_service_requests(status="open")}
    listed = client.get_service_requests(service_request_id=rid)
    assert [(d["status"], d["status_notes"]) for d in listed] == [("closed", got["status_notes"])]


@pytest.mark.parametrize("status,fields,notes,open_", [
    ("accepted", {}, "环卫已签收", "open"),
    ("returned", {}, "已退回，重新派单中", "open"),
    ("resolved", {"resolution_mode": "管理"}, "已办结：管理", "closed"),
    ("verified", {}, "核查通过", "closed"),
    ("return_visit", {"satisfaction": "满意"}, "已回访", "closed"),
    ("closed", {}, "已结案", "closed"),
    ("reopened", {"reopen_count": 1}, "重办中", "open"),
])
def test_each_status_tells_the_reporter(intake, publisher, status, fields, notes, open_):
    r = intake.post(service_code="0102", address_string="张店区柳泉路", description=f"垃圾（{status}）",
                    headers={"Idempotency-Key": uuid.uuid4().hex})
    rid = r.json()[0]["service_request_id"]
    publish(publisher, version(rid, 7, status, **fields))
    got = eventually(lambda: (d := intake.get(f"/requests/{rid}.json").json()[0])["status_notes"] != "已受理" and d)
    assert (got["status"], got["status_notes"]) == (open_, notes)


def test_status_notes_show_no_personal_data(intake, publisher):
    r = intake.post(service_code="0102", address_string="张店区柳泉路", description="垃圾没人清（note）",
                    headers={"Idempotency-Key": uuid.uuid4().hex})
    rid = r.json()[0]["service_request_id"]
    publish(publisher, version(rid, 4, "resolved", resolution_mode="服务", note="已联系13912345678处理完毕"))
    got = eventually(lambda: (d := intake.get(f"/requests/{rid}.json").json()[0])["status"] == "closed" and d)
    assert "13912345678" not in got["status_notes"] and got["status_notes"].startswith("已办结：")
    assert b"13912345678" not in intake.store_bytes


def test_a_department_accepts_and_resolves_its_case(intake, publisher, stack_env):
    case_id = new_case()
    publish(publisher, version(case_id, 1, "created"), version(case_id, 2, "dispatched"))
    accepted = known(intake, case_id, {"action": "accept", "note": "已安排保洁员前往"})
    assert accepted.status_code == 202, accepted.text
    answer = accepted.json()
    assert answer["case_id"] == case_id and answer["status"] == "accepted" and answer["event_id"]
    publish(publisher, version(case_id, 3, "accepted", event_id=answer["event_id"]))

    photo = "https://img.example.cn/done/1.jpg"
    resolve = {"action": "resolve", "resolution_mode": "服务", "note": "已清运完毕", "photo_url": photo}
    resolved = eventually(lambda: (r := act(intake, case_id, resolve)).status_code == 202 and r)
    assert resolved.json()["status"] == "resolved"

    published = eventually(lambda: len(got := on_case_events(stack_env, case_id)) == 2 and got)
    events = {e["event_id"]: e for e in published}
    first, second = events[answer["event_id"]], events[resolved.json()["event_id"]]
    assert first["status"] == "accepted" and first["note"] == "已安排保洁员前往"
    assert {first["system"], second["system"]} == {"department-api"}
    assert {first["department"], second["department"]} == {"环卫"}
    assert (second["status"], second["resolution_mode"], second["note"], second["photo_url"]) == \
        ("resolved", "服务", "已清运完毕", photo)


def test_a_department_returns_a_case_and_a_repeat_is_not_published_again(intake, publisher, stack_env):
    case_id = new_case()
    publish(publisher, version(case_id, 1, "dispatched"))
    body = {"action": "return", "note": "不属于本部门职责，请改派市政"}
    first = known(intake, case_id, body)
    again = act(intake, case_id, body)
    assert first.status_code == 202 and again.status_code == 200, (first.text, again.text)
    assert again.json() == first.json() and first.json()["status"] == "returned"
    publish(publisher, version(case_id, 2, "returned", event_id=first.json()["event_id"]))
    eventually(lambda: act(intake, case_id, {"action": "accept"}).status_code == 409)
    assert act(intake, case_id, body).json() == first.json()           # still the same event, once applied
    time.sleep(1)
    assert [e["event_id"] for e in on_case_events(stack_env, case_id)] == [first.json()["event_id"]]


def _error(r: httpx.Response, code: int, *words: str) -> None:
    assert r.status_code == code, r.text
    description = r.json()[0]["description"]
    for w in words:
        assert w in description, description


def test_keys_are_checked(intake, publisher):
    case_id = new_case()
    publish(publisher, version(case_id, 1, "dispatched"))
    _error(act(intake, case_id, {"action": "accept"}, key=None), 401, "X-API-Key")
    _error(act(intake, case_id, {"action": "accept"}, key="guessed-key-000000000000"), 401, "X-API-Key")
    _error(act(intake, case_id, {"action": "accept"}, key=KEY), 401)        # an Open311 key is no department's
    _error(known(intake, case_id, key=KEYS["城管执法"]), 403, "环卫", "城管执法")
    _error(act(intake, new_case(), {"action": "accept"}), 404, "not known")


@pytest.mark.parametrize("status,action,allowed", [
    ("created", "accept", "dispatched or reopened"),
    ("accepted", "accept", "dispatched or reopened"),
    ("returned", "resolve", "dispatched, accepted or reopened"),
    ("resolved", "resolve", "dispatched, accepted or reopened"),
    ("reopened", "return", "dispatched or accepted"),
    ("closed", "return", "dispatched or accepted"),
])
def test_an_action_the_status_does_not_allow_is_a_409(intake, publisher, status, action, allowed):
    case_id = new_case()
    extra = {"resolution_mode": "执法"} if status == "resolved" else {}
    publish(publisher, version(case_id, 5, status, **extra))
    body = {"action": action, **({"resolution_mode": "服务"} if action == "resolve" else {})}
    _error(known(intake, case_id, body), 409, f"is {status}", allowed)


@pytest.mark.parametrize("body,field", [
    ("not json", "JSON"),
    ("[]", "JSON object"),
    ({}, "action"),
    ({"action": "close"}, "action"),
    ({"action": "resolve"}, "resolution_mode"),
    ({"action": "resolve", "resolution_mode": "道歉"}, "resolution_mode"),
    ({"action": "accept", "resolution_mode": "服务"}, "resolution_mode"),
    ({"action": "accept", "note": "长" * 2001}, "note"),
    ({"action": "accept", "photo_url": "file:///etc/passwd"}, "photo_url"),
    ({"action": "accept", "department": "城管执法"}, "department"),
])
def test_a_bad_body_names_its_field(intake, publisher, body, field):
    case_id = new_case()
    publish(publisher, version(case_id, 1, "dispatched"))
    _error(known(intake, case_id, body), 400, field)


def test_kafka_away_is_a_bounded_503_and_the_event_lands_once(broker, stack_env, publisher, tmp_path):
    try:
        with serving(stack_env, tmp_path, department_keys=_key_file(tmp_path), ack_timeout_s="3") as intake:
            warm, case_id = new_case(), new_case()
            publish(publisher, version(warm, 1, "dispatched"), version(case_id, 1, "dispatched"))
            assert known(intake, warm).status_code == 202
            eventually(lambda: act(intake, case_id, {"action": "oops"}).status_code == 400)   # known: not a 404
            body = {"action": "resolve", "resolution_mode": "服务", "note": "已处理"}
            with frozen(broker):
                t0 = time.monotonic()
                first = act(intake, case_id, body)
                assert first.status_code == 503 and time.monotonic() - t0 < 15, first.text
                event_id = first.json()[0]["event_id"]
                assert event_id in first.json()[0]["description"] and int(first.headers["Retry-After"]) > 0
                again = act(intake, case_id, body)
                assert again.status_code == 503 and again.json()[0]["event_id"] == event_id
            done = eventually(lambda: (r := act(intake, case_id, body)).status_code in (200, 202) and r, 90)
            assert done.json()["event_id"] == event_id
    finally:
        broker.up()
    assert [e["event_id"] for e in on_case_events(stack_env, case_id)] == [event_id]


@pytest.mark.parametrize("content,words", [
    (None, "does not exist"),
    ("- 环卫\n- key\n", "department → key"),
    ("环卫: [unclosed\n", "cannot be read"),
    (f"环卫: {'k' * 20}\n城管执法: {'k' * 20}\n", "same key"),
    ("环卫: short\n", "16 characters"),
])
def test_a_bad_key_file_stops_the_intake_with_one_line(tmp_path, stack_env, content, words):
    path = tmp_path / "keys.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    env = {**os.environ, **stack_env, "CITYOPS_DATA_DIR": str(tmp_path), "CITYOPS_INTAKE_DEPARTMENT_KEYS": str(path)}
    done = subprocess.run([CLI, "intake", "serve", "--port", "1"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    line = " ".join(done.stderr.split())
    assert "CITYOPS_INTAKE_DEPARTMENT_KEYS" in line and words in line, done.stderr
    assert "Traceback" not in done.stderr


def test_the_book_forgets_closed_cases_and_old_reports_but_not_a_requests_answer(tmp_path):
    """Past the retention: a closed case goes unless it is a request's; an open one stays (it can still change);
    a published report keeps nothing; an unsent report keeps its event for the resend, its note masked."""
    import json

    from cityops.models import CaseEvent
    from producers.intake.casebook import CaseBook
    from producers.intake.store import RequestStore

    store = RequestStore(tmp_path / "requests.sqlite")
    book = CaseBook(store, CASES.name)
    old = datetime.now(TZ) - timedelta(days=8)
    store.add_pending({"service_request_id": "SR-closed-request", "idempotency_key": "k", "body_sig": "s",
                       "service_code": "0102", "description": "垃圾", "requested_at": old.isoformat(), "event": ""})
    closed = {"status": "closed", "occurred_at": old, "received_at": old}
    book.apply([version("T-closed-case", 9, **closed), version("SR-closed-request", 9, **closed),
                version("T-open-case", 2, "dispatched", occurred_at=old, received_at=old)], {0: 3})
    note = "已联系13912345678"
    for eid, sent in (("e-sent-0001", True), ("e-unsent-01", False)):
        event = CaseEvent(event_id=eid, case_id="T-open-case", status="accepted", system="department-api",
                          occurred_at=old, received_at=old, department="环卫", note=note)
        book.register({"event_id": eid, "idempotency_key": eid, "body_sig": "s", "case_id": "T-open-case",
                       "department": "环卫", "status": "accepted", "requested_at": old.isoformat(),
                       "event": event.model_dump_json(exclude_none=True)})
        if sent:
            book.mark_sent(eid)
    assert book.forget(datetime.now(TZ) - timedelta(days=9)) == 0       # not old enough yet
    assert book.forget(datetime.now(TZ) - timedelta(days=7)) == 3
    assert set(book.cases(["T-closed-case", "SR-closed-request", "T-open-case"])) == {"SR-closed-request",
                                                                                       "T-open-case"}
    assert book.by_key("e-sent-0001") is None
    [(eid, kept)] = book.unsent(datetime.now(TZ))
    assert eid == "e-unsent-01" and "13912345678" not in json.loads(kept)["note"]
    assert book.offsets() == {0: 3}
    store.forget(datetime.now(TZ) - timedelta(days=7))
    store.close()
    assert b"13912345678" not in b"".join(p.read_bytes() for p in tmp_path.glob("requests.sqlite*"))
