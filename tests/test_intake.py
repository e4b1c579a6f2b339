"""Open311 GeoReport v2 intake against the real broker: the `georeport` client reads services and
requests, raw HTTP posts; bad requests get spec errors; each accepted request is on the topic once."""
from __future__ import annotations

import httpx
import pytest
from georeport import GeoReport

from tests.intake_server import KEY, serving
from tests.test_producers import consume

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def intake(broker, stack_env, tmp_path_factory):
    with serving(stack_env, tmp_path_factory.mktemp("intake")) as server:
        yield server.url


def post(base: str, **fields) -> httpx.Response:
    return httpx.post(f"{base}/requests.json", data={"api_key": KEY, **fields}, timeout=30)


def test_real_client_reads_services_and_requests(intake, stack_env):
    client = GeoReport(intake, api_key=KEY)
    services = client.get_service_list()
    assert {"service_code": "0404", "service_name": "露天烧烤"}.items() <= next(
        s for s in services if s["service_code"] == "0404").items()
    assert client.get_service_definition("0404")["service_code"] == "0404"
    r = post(intake, service_code="0404", lat="36.8101", long="118.0502", description="八大局门口有人露天烧烤，烟很大",
             media_url="https://img.example/1.jpg", **{"attribute[reporter_role]": "grid_worker"})
    assert r.status_code == 201, r.text
    rid = r.json()[0]["service_request_id"]
    got = client.get_service_request(rid)
    assert got["service_code"] == "0404" and got["status"] == "open" and got["lat"] == 36.81   # public: ~100 m
    assert rid in {x["service_request_id"] for x in client.get_service_requests(service_code="0404")}
    on_topic = consume(stack_env["CITYOPS_BOOTSTRAP_SERVERS"], "app.reports", {rid}, field="report_id")
    assert len(on_topic) == 1
    ev = on_topic[0]
    assert ev["reporter_role"] == "grid_worker" and ev["grid_code"].startswith("370303")
    assert ev["photo_url"] == "https://img.example/1.jpg"


def test_each_accepted_request_is_on_the_topic_once(intake, stack_env):
    fields = dict(service_code="0201", address_string="张店区柳泉路128号附近", description="电线杆上贴满了小广告")
    first = post(intake, **fields)
    again = post(intake, **fields)                       # a client retry: same content, same day
    keyed = [httpx.post(f"{intake}/requests.json", data={"api_key": KEY, **fields, "description": "小广告又贴上了"},
                        headers={"Idempotency-Key": "retry-42"}, timeout=30) for _ in range(2)]
    other = post(intake, **{**fields, "description": "另一处小广告"})
    assert first.status_code == 201 and again.status_code == 200
    assert first.json() == again.json()
    assert keyed[0].status_code == 201 and keyed[1].status_code == 200
    assert keyed[0].json() == keyed[1].json()
    ids = {r.json()[0]["service_request_id"] for r in (first, keyed[0], other)}
    assert len(ids) == 3
    got = consume(stack_env["CITYOPS_BOOTSTRAP_SERVERS"], "app.reports", ids, field="report_id")
    assert sorted(d["report_id"] for d in got) == sorted(ids)


@pytest.mark.parametrize("fields,code,words", [
    ({"api_key": "wrong"}, 403, "api_key"),
    ({"api_key": ""}, 403, "api_key"),
    ({"service_code": "7777"}, 400, "service_code"),
    ({"description": ""}, 400, "description"),
    ({"description": "长" * 4001}, 400, "description"),
    ({"lat": "0", "long": "0"}, 400, "outside"),
    ({"lat": "abc", "long": "118"}, 400, "lat"),
    ({"lat": "", "long": "", "address_string": ""}, 400, "location"),
    ({"media_url": "file:///etc/passwd"}, 400, "media_url"),
    ({"attribute[reporter_role]": "mayor"}, 400, "reporter_role"),
])
def test_bad_requests_get_spec_errors(intake, fields, code, words):
    base = {"api_key": KEY, "service_code": "0102", "lat": "36.81", "long": "118.05", "description": "路边垃圾没人清"}
    r = httpx.post(f"{intake}/requests.json", data={**base, **fields}, timeout=30)
    assert r.status_code == code
    body = r.json()
    assert isinstance(body, list) and body[0]["code"] == code and words in body[0]["description"]


def test_size_limit_and_not_found(intake):
    r = httpx.post(f"{intake}/requests.json", content=b"api_key=" + b"x" * 70_000,
                   headers={"content-type": "application/x-www-form-urlencoded"}, timeout=30)
    assert r.status_code == 400 and "larger" in r.json()[0]["description"]
    for path in ("/requests/SR-none.json", "/services/7777.json", "/nothing"):
        r = httpx.get(intake + path, timeout=30)
        assert r.status_code == 404 and r.json()[0]["code"] == 404
