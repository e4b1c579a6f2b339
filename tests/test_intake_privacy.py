"""What the Open311 intake shows and keeps of a citizen: the public read (no key) shows masked text, a masked
address and coordinates rounded to ~100 m; a read key shows the exact place; Open311 contact fields reach no
table and no answer; the request store forgets personal data after its retention."""
from __future__ import annotations

import json
import time
import uuid

import pytest

from cityops.pii import mask_text
from tests.intake_server import READ_KEY, serving

pytestmark = pytest.mark.integration

NAME, PHONE = "张伟", "13912345678"
DESCRIPTION = f"我是{NAME}，电话{PHONE}，楼下烧烤摊油烟太大，晚上十点还在烤"
CONTACT = {"first_name": "秀英", "last_name": "欧阳", "email": "xiuying@example.com", "phone": "13800001111"}
ADDRESS = "张店区柳泉路128号3单元"


@pytest.fixture(scope="module")
def intake(broker, stack_env, tmp_path_factory):
    with serving(stack_env, tmp_path_factory.mktemp("intake-privacy"), read_keys=READ_KEY) as server:
        yield server


def _report(intake, **extra) -> str:
    r = intake.post(service_code="0404", lat="36.812345", long="118.054321", address_string=ADDRESS,
                    description=DESCRIPTION, headers={"Idempotency-Key": uuid.uuid4().hex}, **CONTACT, **extra)
    assert r.status_code == 201, r.text
    return r.json()[0]["service_request_id"]


def _no_personal_data(doc: dict) -> None:
    text = json.dumps(doc, ensure_ascii=False)
    for secret in (NAME, PHONE, *CONTACT.values()):
        assert secret not in text, (secret, text)
    assert not {"first_name", "last_name", "email", "phone", "reporter_phone"} & set(doc)
    assert doc["description"] == mask_text(DESCRIPTION)


def test_public_read_shows_no_personal_data(intake):
    rid = _report(intake)
    listed = intake.get("/requests.json")                # a new user's first call: no key, no filter
    assert listed.status_code == 200
    by_id = intake.get(f"/requests/{rid}.json")
    filtered = intake.get("/requests.json", service_request_id=rid)
    docs = [next(d for d in listed.json() if d["service_request_id"] == rid), by_id.json()[0], filtered.json()[0]]
    for doc in docs:
        _no_personal_data(doc)
        assert (doc["lat"], doc["long"]) == (36.812, 118.054)        # ~100 m
        assert "128" not in doc["address"] and "柳泉路" in doc["address"]


def test_read_key_shows_the_exact_place_and_still_no_contact(intake):
    rid = _report(intake)
    r = intake.get(f"/requests/{rid}.json", api_key=READ_KEY)
    assert r.status_code == 200, r.text
    doc = r.json()[0]
    _no_personal_data(doc)
    assert (doc["lat"], doc["long"]) == (36.812345, 118.054321)
    assert doc["address"] == ADDRESS
    listed = intake.get("/requests.json", api_key=READ_KEY, service_request_id=rid).json()
    assert listed == [doc]
    for key in ("wrong-key", "test-intake-key"):       # a POST key is not a read key
        r = intake.get(f"/requests/{rid}.json", api_key=key)
        assert r.status_code == 403 and "read" in r.json()[0]["description"]


def test_contact_fields_reach_no_table(intake):
    _report(intake, **{"attribute[reporter_role]": "resident"})
    stored = intake.store_bytes
    for secret in CONTACT.values():
        assert secret.encode() not in stored, secret


def test_store_forgets_personal_data_after_retention(broker, stack_env, tmp_path):
    # 0.00005 days = 4.3 s
    with serving(stack_env, tmp_path, read_keys=READ_KEY, retention_days="0.00005") as intake:
        rid = _report(intake)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            doc = intake.get(f"/requests/{rid}.json", api_key=READ_KEY).json()[0]
            if doc["lat"] == 36.812:
                break
            time.sleep(0.5)
        assert (doc["lat"], doc["long"]) == (36.812, 118.054), "the exact place was kept past the retention"
        assert "128" not in doc["address"]
        stored = intake.store_bytes
        for secret in (NAME, PHONE, "128号", *CONTACT.values()):
            assert secret.encode() not in stored, secret


def test_a_pending_report_is_forgotten_too(tmp_path):
    """A report whose send never succeeded keeps its event for the resend, but not past the retention."""
    from datetime import datetime, timedelta

    from producers.intake.store import RequestStore, TZ

    store = RequestStore(tmp_path / "requests.sqlite")
    old = datetime.now(TZ) - timedelta(days=8)
    event = {"report_id": "SR20260101-abc", "text": DESCRIPTION, "address": ADDRESS, "lat": 36.812345,
             "lon": 118.054321, "source": "app"}
    store.add_pending({"service_request_id": "SR20260101-abc", "idempotency_key": "k1", "body_sig": "s1",
                       "service_code": "0404", "description": mask_text(DESCRIPTION), "lat": 36.812345,
                       "lon": 118.054321, "address": ADDRESS, "media_url": None,
                       "requested_at": old.isoformat(), "event": json.dumps(event, ensure_ascii=False)})
    assert store.forget(datetime.now(TZ) - timedelta(days=9)) == 0     # not old enough yet
    assert store.forget(datetime.now(TZ) - timedelta(days=7)) == 1
    row = store.pending()[0]
    kept = json.loads(row["event"])
    assert kept["text"] == mask_text(DESCRIPTION) and "128" not in kept["address"]
    assert (kept["lat"], kept["lon"]) == (36.812, 118.054) == (row["lat"], row["lon"])
    store.close()
    on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("requests.sqlite*"))
    for secret in (NAME.encode(), PHONE.encode(), "128号".encode()):
        assert secret not in on_disk, secret
