"""Generated personal data through the whole product: none of it is readable anywhere it goes.

Hypothesis makes citizens with a name, a mobile, another number (ID, landline, bank card, formatted mobile) and an
e-mail address, written into complaints the way callers do. Each citizen's complaint reaches the city as a valid
12345 ticket (UTF-8, sometimes with Python's \\u escapes, with caller_name and caller_phone), as the same ticket
in GBK or GB18030 or cut short (dead letters), and as an Open311 request with first_name, last_name, email and
phone. Some are emergencies, so the pager pages them. Then every ClickHouse table, every output and internal
topic (dead letters decoded), every log, every page the webhooks received and every public Open311 answer is
read: no name, number or address of theirs may be readable, whatever separators it is written with."""
from __future__ import annotations

import base64
import json
import os
import random
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st
from kafka import KafkaConsumer, KafkaProducer

from bench.pipeline import Pipeline
from cityops.topics import HOTLINE_TICKETS, INTERNAL_TOPICS, OUTPUT_TOPICS
from tests.conftest import free_port
from tests.personal import EMAIL, MOBILE_DIGITS, NAMED, NUMBER, readable, warehouse_texts
from tests.test_pager import Receiver

pytestmark = pytest.mark.integration
KEY = "pii-intake-key"
# What citizens complain about; the first two are emergencies (井盖缺损, 道路积水: the department is paged).
COMPLAINTS = ("小区门口的井盖没了，晚上很危险", "路口积水很深，车都过不去了", "楼下烧烤油烟太大了", "垃圾桶满了没人清理",
              "路边有人占道经营")
PERSON = st.fixed_dictionaries({"named": NAMED, "number": NUMBER, "mobile": MOBILE_DIGITS, "email": EMAIL,
                                "encoding": st.sampled_from(["utf-8", "gbk", "gb18030"]), "escaped": st.booleans()})


@dataclass
class City:
    pipe: Pipeline
    receiver: Receiver
    intake: str
    dsn: str
    bootstrap: str
    run: str


@pytest.fixture(scope="module")
def city(broker, stack_env, tmp_path_factory):
    home = tmp_path_factory.mktemp("pii")
    run = f"P{uuid.uuid4().hex[:6]}"
    receiver = Receiver()
    hooks = home / "webhooks.yaml"
    hooks.write_text(yaml.safe_dump({"webhooks": {"*": [{"format": "json", "url": f"{receiver.url}/json"},
                                                        {"format": "wecom", "url": f"{receiver.url}/wecom?key=k"}]}}))
    dsn = f"chdb://{home / 'clickhouse'}"
    env = {**os.environ, **stack_env, "PYTHONUNBUFFERED": "1", "CITYOPS_CLICKHOUSE_URL": dsn,
           "CITYOPS_PAGER_WEBHOOKS": str(hooks), "CITYOPS_INTAKE_API_KEYS": KEY,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(Path(__file__).parents[1])}
    pipe = Pipeline(env, home, sink_group=f"pii-sink-{run}")
    port = free_port()
    try:
        pipe.start_worker()
        pipe.start_sink()
        pipe.start("pager", "pager", "--group", f"pii-pager-{run}", "--backoff", "0.2")
        pipe.start("intake", "intake", "serve", "--port", str(port))
        _wait_for_port(port, pipe)
        yield City(pipe, receiver, f"http://127.0.0.1:{port}/open311/v2", dsn, stack_env["CITYOPS_BOOTSTRAP_SERVERS"],
                   run)
    finally:
        pipe.stop()
        receiver.server.shutdown()


def _wait_for_port(port: int, pipe: Pipeline) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        pipe.check_running()
        time.sleep(0.2)
    raise TimeoutError("the intake did not listen within 60 s:\n" + pipe.log("intake")[-2000:])


def _ticket(run: str, i: int, person: dict, text: str) -> dict:
    form, name = person["named"]
    # A place of its own (a case ≤ 50 m and 30 min from another of its kind is merged into it, and not paged)
    lat, lon = 36.76 + random.Random(f"{run}{i}").randrange(80) / 1000, 118.01 + random.Random(f"{i}{run}").randrange(80) / 1000
    return {"source": "hotline", "event_id": f"{run}-{i}", "ticket_id": f"{run}-T{i}", "status": "created",
            "occurred_at": (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat(), "text": text,
            "caller_name": name, "caller_phone": person["mobile"], "channel": "phone", "lat": lat, "lon": lon,
            "address": f"张店区人民西路{i + 1}号 {form}{person['mobile']}"}


def _secrets(person: dict) -> list[str]:
    return [person["named"][1], person["number"], person["mobile"], person["email"]]


def _send(city: City, people: list[dict], tag: str) -> tuple[list[str], list[str]]:
    """Each citizen's complaint as a ticket (valid, re-encoded or cut short) and as an Open311 request; returns
    the emergency case ids and the Open311 request ids."""
    producer = KafkaProducer(bootstrap_servers=city.bootstrap, acks="all")
    emergencies, requests = [], []
    for i, person in enumerate(people):
        form, name = person["named"]
        complaint = COMPLAINTS[i % len(COMPLAINTS)]
        text = f"{form}{person['number']}，邮箱{person['email']}，{complaint}（{tag}{i}）"
        ticket = _ticket(f"{city.run}{tag}", i, person, text)
        valid = json.dumps(ticket, ensure_ascii=person["escaped"]).encode()
        producer.send(HOTLINE_TICKETS.name, key=ticket["ticket_id"].encode(), value=valid)
        other = {**ticket, "event_id": f"{ticket['event_id']}-x", "ticket_id": f"{ticket['ticket_id']}-x"}
        bad = json.dumps(other, ensure_ascii=False).encode(person["encoding"]) if person["encoding"] != "utf-8" \
            else json.dumps(other, ensure_ascii=False).encode()[:-5]
        producer.send(HOTLINE_TICKETS.name, key=other["ticket_id"].encode(), value=bad)
        if i % len(COMPLAINTS) < 2:
            emergencies.append(ticket["ticket_id"])
        surname, given_name = name[0], name[1:]
        r = httpx.post(f"{city.intake}/requests.json", timeout=30, data={
            "api_key": KEY, "service_code": "0404" if i % 2 else "B0101", "lat": "36.81", "long": "118.05",
            "description": text, "address_string": f"柳泉路{i + 1}号{person['mobile']}", "first_name": given_name,
            "last_name": surname, "email": person["email"], "phone": person["mobile"]})
        assert r.status_code == 201, r.text
        requests.append(r.json()[0]["service_request_id"])
    producer.flush()
    producer.close()
    return emergencies, requests


def _topic_texts(bootstrap: str) -> dict[str, str]:
    """Every message of every output and internal topic, dead letters' payload and key decoded."""
    names = [t.name for t in OUTPUT_TOPICS + INTERNAL_TOPICS]
    c = KafkaConsumer(*names, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                      consumer_timeout_ms=5000)
    out: dict[str, list[str]] = {n: [] for n in names}
    for m in c:
        text = (m.value or b"").decode(errors="replace")
        if m.topic == "deadletters":
            letter = json.loads(text)
            text += "".join(base64.b64decode(letter.get(f) or "").decode(errors="replace")
                            for f in ("payload_b64", "key_b64"))
        out[m.topic].append(text + (m.key or b"").decode(errors="replace"))
    c.close()
    return {n: "\n".join(v) for n, v in out.items()}


@settings(max_examples=2, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(people=st.lists(PERSON, min_size=10, max_size=10))
def test_no_personal_data_in_a_table_topic_log_page_or_public_answer(city, people):
    tag = uuid.uuid4().hex[:4]
    emergencies, requests = _send(city, people, tag)
    city.pipe.wait_processed(timeout=240)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not all(
            any(cid in json.dumps(b, ensure_ascii=False) for b in city.receiver.bodies("/json")) for cid in emergencies):
        time.sleep(0.5)
    pages = {f"page {n} to {p}": json.dumps(b, ensure_ascii=False) for n, (p, b) in enumerate(city.receiver.posts)}
    assert any(emergencies[0] in page for page in pages.values()), \
        f"no emergency was paged ({len(pages)} pages):\n{city.pipe.log('pager')[-3000:]}"
    answers = {"GET requests.json": httpx.get(f"{city.intake}/requests.json", timeout=30).text}
    answers |= {f"GET requests/{rid}.json": httpx.get(f"{city.intake}/requests/{rid}.json", timeout=30).text
                for rid in requests}
    topics = _topic_texts(city.bootstrap)
    city.pipe.stop("sink")   # the embedded warehouse admits one process: read it between two sinks
    try:
        tables = warehouse_texts(city.dsn)
    finally:
        city.pipe.restart("sink")
    logs = {f"{name}.log": city.pipe.log(name) for name in city.pipe.procs}
    places = {**{f"table {k}": v for k, v in tables.items()}, **{f"topic {k}": v for k, v in topics.items()},
              **logs, **pages, **answers}
    # The scan reads what was sent: the complaints are there, masked.
    for where in ("table case_history.text", "topic cases", "topic deadletters"):
        assert COMPLAINTS[2] in places[where], where
    leaks = [(where, secret) for person in people for secret in _secrets(person)
             for where, text in places.items() if readable(secret, text)]
    assert not leaks, leaks[:10]
