"""The Open311 intake while the pytest run's real broker is frozen (SIGSTOP), killed (SIGKILL) and restarted, and
after the intake itself was killed with requests unsent. The rule under test (producers/intake/delivery.py):
a POST Kafka does not acknowledge in time is answered 503 within the ack timeout, with the request's id, and
that request is then on app.reports exactly once, under that id, as is every request answered 201.

Every test leaves the broker running (resumed, or restarted on the same data dir and ports) with every
catalogue topic, whatever happens in it."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest

from tests.intake_server import serving, start, stop
from tests.test_producers import consume

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def broker_healthy_afterwards(broker):
    yield
    pid = broker.process.pid()
    if pid is not None:
        os.kill(pid, signal.SIGCONT)
    broker.up()          # restarts a killed broker; waits until it answers; creates missing topics


@contextmanager
def frozen(broker):
    pid = broker.process.pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _report(tag: str) -> tuple[dict, dict]:
    fields = {"service_code": "0102", "lat": "36.81", "long": "118.05", "description": f"路边垃圾没人清（{tag}）"}
    return fields, {"Idempotency-Key": f"{tag}-{uuid.uuid4().hex}"}


def _retry_until_stored(intake, fields: dict, headers: dict, deadline_s: float = 90) -> str:
    deadline = time.monotonic() + deadline_s
    while True:
        r = intake.post(headers=headers, **fields)
        if r.status_code in (200, 201) or time.monotonic() > deadline:
            assert r.status_code in (200, 201), r.text
            return r.json()[0]["service_request_id"]
        assert r.status_code == 503, r.text
        time.sleep(1)


def _copies(stack_env, ids: set[str]) -> Counter:
    got = consume(stack_env["CITYOPS_BOOTSTRAP_SERVERS"], "app.reports", ids, field="report_id")
    return Counter(d["report_id"] for d in got)


def test_frozen_broker_gets_503_in_time_and_the_request_lands_once(broker, stack_env, tmp_path):
    with serving(stack_env, tmp_path) as intake:          # the default ack timeout (10 s)
        fields, headers = _report("warm")
        assert intake.post(headers=headers, **fields).status_code == 201    # connected, metadata known
        fields, headers = _report("frozen")
        with frozen(broker):
            t0 = time.monotonic()
            first = intake.post(headers=headers, **fields)
            waited = time.monotonic() - t0
            assert first.status_code == 503, first.text
            assert waited <= 20, f"503 after {waited:.1f} s"
            rid = first.json()[0]["service_request_id"]
            assert rid in first.json()[0]["description"] and int(first.headers["Retry-After"]) > 0
            again = intake.post(headers=headers, **fields)    # the first send is still in flight
            assert again.status_code == 503 and again.json()[0]["service_request_id"] == rid
        assert _retry_until_stored(intake, fields, headers) == rid
    assert _copies(stack_env, {rid}) == {rid: 1}


def test_intake_killed_while_the_broker_is_frozen_is_not_sent_twice(broker, stack_env, tmp_path):
    """The killed intake's send was already in the frozen broker's socket and lands when it resumes; the next
    intake must find it on the topic instead of sending it again."""
    intake = start(stack_env, tmp_path)
    try:
        fields, headers = _report("warm")
        assert intake.post(headers=headers, **fields).status_code == 201
        fields, headers = _report("killed")
        with frozen(broker):
            first = intake.post(headers=headers, **fields)
            assert first.status_code == 503, first.text
            rid = first.json()[0]["service_request_id"]
            stop(intake, signal.SIGKILL)
    finally:
        stop(intake, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while _copies(stack_env, {rid}) != {rid: 1} and time.monotonic() < deadline:
        time.sleep(1)
    assert _copies(stack_env, {rid}) == {rid: 1}, "the killed intake's send did not land"
    with serving(stack_env, tmp_path) as again:
        assert _retry_until_stored(again, fields, headers) == rid
    assert _copies(stack_env, {rid}) == {rid: 1}


def test_unsent_requests_of_a_stopped_intake_are_sent_once_at_its_next_start(broker, stack_env, tmp_path):
    from cityops.models import AppReport
    from producers.intake.store import TZ, RequestStore

    rid = f"SR{datetime.now(TZ):%Y%m%d}-{uuid.uuid4().hex[:12]}"
    when = datetime.now(TZ) - timedelta(minutes=2)
    event = AppReport(report_id=rid, event_id=uuid.uuid4().hex, text="井盖松动，车过哐哐响", lat=36.81, lon=118.05,
                      occurred_at=when, received_at=when, service_code="0102")
    store = RequestStore(tmp_path / "intake" / "requests.sqlite")
    store.add_pending({"service_request_id": rid, "idempotency_key": uuid.uuid4().hex, "body_sig": "-",
                       "service_code": "0102", "description": event.text, "lat": 36.81, "lon": 118.05,
                       "requested_at": when.isoformat(), "event": event.model_dump_json(exclude_none=True)})
    store.close()
    with serving(stack_env, tmp_path) as intake:
        deadline = time.monotonic() + 60
        while intake.get(f"/requests/{rid}.json").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert intake.get(f"/requests/{rid}.json").status_code == 200, "the unsent request was not sent"
    assert _copies(stack_env, {rid}) == {rid: 1}


def test_broker_killed_and_restarted_during_a_stream_of_posts(broker, stack_env, tmp_path):
    answers: list[tuple[dict, dict, int, dict]] = []
    halt = threading.Event()

    def post_stream(lane: int) -> None:
        i = 0
        while not halt.is_set():
            fields, headers = _report(f"stream{lane}-{i}")
            r = intake.post(headers=headers, **fields)
            answers.append((fields, headers, r.status_code, r.json()[0]))
            i += 1
            time.sleep(0.05)

    with serving(stack_env, tmp_path, ack_timeout_s="4", rate_per_key="100000", rate_per_address="100000") as intake:
        lanes = [threading.Thread(target=post_stream, args=(n,), daemon=True) for n in range(2)]
        for t in lanes:
            t.start()
        time.sleep(3)
        os.kill(broker.process.pid(), signal.SIGKILL)
        try:
            time.sleep(5)
        finally:
            broker.up()          # the same data dir and ports
        time.sleep(5)
        halt.set()
        for t in lanes:
            t.join(60)
        codes = Counter(code for _, _, code, _ in answers)
        assert set(codes) <= {201, 503}, codes
        assert codes[503] and codes[201], codes
        ids = set()
        for fields, headers, code, body in answers:
            ids.add(body["service_request_id"])
            if code == 503:
                assert _retry_until_stored(intake, fields, headers) == body["service_request_id"]
    copies = _copies(stack_env, ids)
    assert set(copies) == ids and set(copies.values()) == {1}, json.dumps(
        {k: v for k, v in copies.items() if v != 1} or sorted(ids - set(copies)))
