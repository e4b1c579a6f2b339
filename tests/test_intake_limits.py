"""Bounds of the Open311 intake against a real server and broker: a chunked body is refused while it streams
in, deep JSON is a 400 (never a 500), request rates per api_key and per address get 429 with Retry-After, and
an Idempotency-Key belongs to one api_key and one set of fields."""
from __future__ import annotations

import socket
import threading
import uuid

import httpx
import pytest

from tests.intake_server import KEY, serving
from tests.test_producers import consume

pytestmark = pytest.mark.integration
REPORT = {"service_code": "0102", "lat": "36.81", "long": "118.05", "description": "路边垃圾没人清"}


@pytest.fixture(scope="module")
def intake(broker, stack_env, tmp_path_factory):
    with serving(stack_env, tmp_path_factory.mktemp("intake-limits")) as server:
        yield server


def _spec_error(r: httpx.Response, code: int, words: str) -> None:
    assert r.status_code == code, r.text
    body = r.json()
    assert isinstance(body, list) and body[0]["code"] == code and words in body[0]["description"], body


def test_chunked_body_is_refused_while_it_streams_in(intake):
    """10 MB in chunks, no Content-Length: the answer must come before the client could send it all (the
    server stops reading at the limit instead of buffering the whole body first)."""
    host, port = intake.url.split("/")[2].split(":")
    total, chunk = 10 * 1024 * 1024, b"a" * 65536
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(b"POST /open311/v2/requests.json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
    progress = {"sent": 0, "at_answer": None}

    def send() -> None:
        try:
            while progress["sent"] < total:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                progress["sent"] += len(chunk)
            sock.sendall(b"0\r\n\r\n")
        except OSError:    # the server answered and closed: the rest of the body is not wanted
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"]"):
        data = sock.recv(65536)
        if progress["at_answer"] is None:
            progress["at_answer"] = progress["sent"]
        if not data:
            break
        answer += data
    sock.close()
    sender.join(30)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b'"code":400' in body and b"larger than 65536 bytes" in body, body
    assert progress["at_answer"] < total, "the whole body was read before the answer"


@pytest.mark.parametrize("body,words", [
    (b"[" * 100_000, "larger"),                         # 100 KB: over the body limit first
    (b"[" * 50_000, "nested too deeply"),
    (b'{"description": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deeply"),
    (b'{"api_key": "%s", "service_code": "0102", "description": {"text": "x"}}' % KEY.encode(), "description must be text"),
    (b"123", "JSON object"),
])
def test_deep_or_nested_json_is_a_clear_400(intake, body, words):
    r = httpx.post(f"{intake.url}/requests.json", content=body, headers={"content-type": "application/json"},
                   timeout=30)
    _spec_error(r, 400, words)


def test_rates_per_api_key_and_per_address(broker, stack_env, tmp_path):
    with serving(stack_env, tmp_path, rate_per_key="3", rate_per_address="8") as intake:
        bad = {"service_code": "7777"}                   # counted like any request, refused after the count
        for _ in range(3):
            _spec_error(intake.post(**bad), 400, "service_code")
        limited = intake.post(**bad)
        _spec_error(limited, 429, "api_key")
        assert 1 <= int(limited.headers["Retry-After"]) <= 20
        _spec_error(intake.post(key="other-key", **bad), 400, "service_code")   # another key has its own
        for _ in range(3):                               # 5 of the address's 8 are spent
            assert intake.get("/services.json").status_code == 200
        limited = intake.get("/services.json")
        _spec_error(limited, 429, "address")
        assert 1 <= int(limited.headers["Retry-After"]) <= 8


def test_idempotency_key_belongs_to_one_api_key_and_one_body(intake, stack_env):
    shared = {"Idempotency-Key": f"retry-{uuid.uuid4().hex[:8]}"}
    mine = intake.post(headers=shared, **REPORT)
    theirs = intake.post(key="other-key", headers=shared, **REPORT)
    assert mine.status_code == 201 and theirs.status_code == 201, (mine.text, theirs.text)
    ids = {mine.json()[0]["service_request_id"], theirs.json()[0]["service_request_id"]}
    assert len(ids) == 2
    changed = intake.post(headers=shared, **{**REPORT, "description": "另一件事：路灯不亮"})
    _spec_error(changed, 409, "Idempotency-Key")
    again = intake.post(headers=shared, **REPORT)
    assert again.status_code == 200 and again.json() == mine.json()
    got = consume(stack_env["CITYOPS_BOOTSTRAP_SERVERS"], "app.reports", ids, field="report_id")
    assert sorted(d["report_id"] for d in got) == sorted(ids)
    assert {d["text"] for d in got} == {REPORT["description"]}
