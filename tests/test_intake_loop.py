"""The intake closes the loop with the reporter, against the real broker: it follows the `cases` topic (the
versions are produced here, as the streams worker does), and the real `georeport` client sees a request go from
open to closed with the city's notes."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from georeport import GeoReport

from cityops.models import CaseUpdate
from cityops.topics import CASES
from tests.intake_server import serving

pytestmark = pytest.mark.integration

TZ = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def intake(broker, stack_env, tmp_path_factory):
    data = tmp_path_factory.mktemp("intake-loop")
    with serving(stack_env, data) as server:
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


def eventually(probe, timeout_s: float = 30.0):
    """`probe()` once it is truthy; the last value in the failure otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = probe()
        if got or time.monotonic() > deadline:
            assert got, f"not within {timeout_s:.0f} s: {got!r}"
            return got
        time.sleep(0.3)


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


def test_the_book_forgets_closed_cases_but_not_a_requests_answer(tmp_path):
    """Past the retention: a closed case goes unless it is a request's; an open one stays (it can still change)."""
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
    assert book.forget(datetime.now(TZ) - timedelta(days=9)) == 0       # not old enough yet
    assert book.forget(datetime.now(TZ) - timedelta(days=7)) == 1
    assert set(book.cases(["T-closed-case", "SR-closed-request", "T-open-case"])) == {"SR-closed-request",
                                                                                       "T-open-case"}
    assert book.offsets() == {0: 3}
    store.close()
