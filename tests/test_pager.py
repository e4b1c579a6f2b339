"""`cityops pager` against the real broker: a local HTTP receiver stands in for WeCom, DingTalk and plain
webhooks. Every test has its own consumer group (and so its own ledger); assertions look only at its own
alert ids, since each group reads the whole `alerts` topic."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml

from cityops.models.alerts import Alert
from tests.conftest import free_port

pytestmark = pytest.mark.integration


class Receiver:
    """Records every POST (and when, per path and alert id); `/flaky` answers 500 to an alert's first two
    POSTs, `/down` always 500, `/hang`
    answers the alert ids in `held` only once `release` is set (others at once; each group reads the whole
    topic, earlier tests' alerts included), robots answer like WeCom / DingTalk ({"errcode": 0})."""

    def __init__(self):
        self.posts: list[tuple[str, dict]] = []
        self.tries: Counter = Counter()
        self.times: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
        self.held: set[str] = set()
        self.release, self.hanging = threading.Event(), set()
        lock, outer = threading.Lock(), self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                path = self.path.split("?")[0]
                key = (path, body.get("alert_id"))
                with lock:
                    outer.posts.append((self.path, body))
                    outer.tries[key] += 1
                    outer.times[key].append(time.time())
                    n = outer.tries[key]
                if path == "/hang" and key[1] in outer.held:
                    outer.hanging.add(key[1])
                    outer.release.wait(120)
                    outer.hanging.discard(key[1])
                code = 500 if path == "/down" or (path == "/flaky" and n <= 2) else 200
                data = json.dumps({"errcode": 0, "errmsg": "ok"} if code == 200 else {"error": "busy"}).encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self, path: str) -> list[dict]:
        return [b for p, b in list(self.posts) if p.split("?")[0] == path]

    def robot_posts(self, path: str, alert_id: str) -> list[dict]:
        return [b for b in self.bodies(path) if alert_id in json.dumps(b, ensure_ascii=False)]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.release.set()
    r.server.shutdown()


# The robots' key, token and signing secret, as the environment gives them to the pager.
ROBOT_SECRETS = {"PAGER_TEST_WECOM_KEY": "SECRET-KEY-1", "PAGER_TEST_DING_TOKEN": "SECRET-TOKEN-2",
                 "PAGER_TEST_DING_SECRET": "SECRET-SIGN-3"}


@pytest.fixture
def pager(broker, subprocess_env, receiver, tmp_path):
    """Starts `cityops pager` processes of one consumer group; all are killed at the end."""
    hooks = tmp_path / "webhooks.yaml"
    hooks.write_text(yaml.safe_dump({"webhooks": {
        "市政": [{"format": "wecom", "url": f"{receiver.url}/wecom?key=${{PAGER_TEST_WECOM_KEY}}"},
                 {"format": "dingtalk", "url": f"{receiver.url}/dingtalk?access_token=${{PAGER_TEST_DING_TOKEN}}",
                  "secret_env": "PAGER_TEST_DING_SECRET"}],
        "水务": [{"format": "json", "url": f"{receiver.url}/json"}],
        "环卫": [{"format": "json", "url": f"{receiver.url}/flaky"}],
        "园林": [{"format": "json", "url": f"{receiver.url}/down"}],
        "应急": [{"format": "json", "url": f"{receiver.url}/hang"}],
    }}, allow_unicode=True))
    group, procs = f"pager-test-{uuid.uuid4().hex[:8]}", []
    env = {**subprocess_env, "CITYOPS_PAGER_WEBHOOKS": str(hooks), **ROBOT_SECRETS}

    def start(*extra: str) -> subprocess.Popen:
        log = open(tmp_path / f"pager-{len(procs)}.log", "w")
        # A failing delivery: attempts at 0, 0.5 s and 1 s (the backoff's 1 s clipped to --retry-for), then gave up.
        p = subprocess.Popen([sys.executable, "-m", "cityops", "pager", "--group", group, "--backoff", "0.5",
                              "--retry-for", "1", *extra], env=env, stdout=log, stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    start.group = group
    start.logs = lambda: [f.read_text() for f in sorted(tmp_path.glob("pager-*.log"))]
    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def alert(department: str, **kw) -> Alert:
    tag = uuid.uuid4().hex[:10]
    return Alert(alert_id=f"test:{tag}@1", rule="emergency_case", severity="critical", department=department,
                 dedup_key=f"test:{tag}", title=f"紧急：路面塌陷 {tag}", detail="案件 T-1，时限 30 分钟",
                 district_code="370303", occurred_at="2026-11-22T08:00:00+00:00", **kw)


def produce(*values: bytes | Alert) -> list[int]:
    from kafka import KafkaProducer

    from cityops.settings import get_settings

    p = KafkaProducer(bootstrap_servers=get_settings().bootstrap_servers, acks="all")
    futures = [p.send("alerts", key=b"k", value=v if isinstance(v, bytes) else v.model_dump_json().encode())
               for v in values]
    offsets = [f.get(timeout=30).offset for f in futures]
    p.close()
    return offsets


class Deliveries:
    """The `deliveries` topic, read as it grows."""

    def __init__(self):
        from kafka import KafkaConsumer

        from cityops.settings import get_settings

        self.consumer = KafkaConsumer("deliveries", bootstrap_servers=get_settings().bootstrap_servers,
                                      auto_offset_reset="earliest", enable_auto_commit=False)
        self.all: list[dict] = []

    def of(self, alert_id: str) -> list[dict]:
        for records in self.consumer.poll(timeout_ms=200).values():
            self.all += [json.loads(r.value) for r in records]
        return [d for d in self.all if d["alert_id"] == alert_id]


def wait_for(check, what: str, limit: float = 90.0):
    """A hang guard, not a timing assertion."""
    deadline = time.monotonic() + limit
    while not (result := check()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)
    return result


def test_each_alert_reaches_each_webhook_once_in_its_format(pager, receiver, subprocess_env):
    port = free_port()
    pager("--port", str(port))
    robots, plain, nobody = alert("市政"), alert("水务"), alert("物业")
    produce(robots, b"{not an alert", plain, nobody, robots)   # the repeat is one alert: delivered once
    # Grafana's contact point for 水务; its repeat of the same firing alert is delivered once too.
    note = {"receiver": "水务", "status": "firing", "alerts": [{
        "status": "firing", "labels": {"alertname": "部门超期案件", "department": "水务", "severity": "warning"},
        "annotations": {"summary": "水务 有 3 件案件已超过办理时限"}, "startsAt": "2026-11-22T08:00:00Z",
        "fingerprint": uuid.uuid4().hex[:16]}]}
    post = lambda: httpx.post(f"http://127.0.0.1:{port}/departments/shuiwu", json=note, timeout=10)  # noqa: E731
    wait_for(lambda: _answers(post), "the pager's Grafana receiver")
    assert post().status_code == 200
    assert httpx.post(f"http://127.0.0.1:{port}/departments/shuiwu", content=b"[1", timeout=10).status_code == 400

    deliveries = Deliveries()
    wait_for(lambda: all(deliveries.of(a.alert_id) for a in (robots, plain, nobody)) and len(deliveries.of(robots.alert_id)) == 2,
             "delivery records")
    grafana_id = wait_for(lambda: next((b["alert_id"] for b in receiver.bodies("/json") if b["rule"] == "grafana"), None),
                          "the Grafana alert at the 水务 webhook")
    wait_for(lambda: deliveries.of(grafana_id), "the Grafana alert's record")

    wecom, = receiver.robot_posts("/wecom", robots.alert_id)
    assert wecom["msgtype"] == "markdown" and robots.title in wecom["markdown"]["content"]
    ding, = receiver.robot_posts("/dingtalk", robots.alert_id)
    assert ding["msgtype"] == "markdown" and ding["markdown"]["title"] == robots.title
    assert robots.alert_id in ding["markdown"]["text"]
    # The robots' secrets come from the environment; DingTalk's request is signed (加签) as its docs say.
    wecom_query, = [parse_qs(urlsplit(path).query) for path, b in receiver.posts if b is wecom]
    assert wecom_query == {"key": ["SECRET-KEY-1"]}
    ding_query, = [parse_qs(urlsplit(path).query) for path, b in receiver.posts if b is ding]
    assert ding_query.keys() == {"access_token", "timestamp", "sign"}
    assert ding_query["access_token"] == ["SECRET-TOKEN-2"]
    ts, = ding_query["timestamp"]
    assert abs(int(ts) - time.time() * 1000) < 3600_000   # DingTalk refuses a timestamp an hour off
    mac = hmac.new(b"SECRET-SIGN-3", f"{ts}\nSECRET-SIGN-3".encode(), hashlib.sha256).digest()
    assert ding_query["sign"] == [base64.b64encode(mac).decode()]
    sent, = [b for b in receiver.bodies("/json") if b.get("alert_id") == plain.alert_id]
    assert Alert.model_validate(sent) == plain
    g, = [b for b in receiver.bodies("/json") if b["alert_id"] == grafana_id]
    assert g["department"] == "水务" and g["title"] == "部门超期案件" and "3 件" in g["detail"]

    by_channel = {d["channel"]: d for d in deliveries.of(robots.alert_id)}
    assert by_channel["wecom"]["target"].endswith("/wecom?key=***")
    assert by_channel["dingtalk"]["target"].endswith("/dingtalk?access_token=***")
    assert all(d["status"] == "delivered" and d["attempt"] == 1 for d in by_channel.values())
    assert [(d["channel"], d["status"]) for d in deliveries.of(plain.alert_id)] == [("webhook", "delivered")]
    none, = deliveries.of(nobody.alert_id)
    assert (none["status"], none["error"]) == ("gave_up", "no webhook configured for 物业")
    assert not any("SECRET" in json.dumps(d) for d in deliveries.all)
    assert not [text for text in pager.logs() if "SECRET" in text]
    ledger = Path(subprocess_env["CITYOPS_DATA_DIR"]) / "pager"
    assert not [f for f in ledger.glob(f"{pager.group}.sqlite*") if b"SECRET" in f.read_bytes()]
    time.sleep(1)  # a second delivery of anything would show up here
    assert len(receiver.robot_posts("/wecom", robots.alert_id)) == 1
    assert len([b for b in receiver.bodies("/json") if b["alert_id"] in (plain.alert_id, grafana_id)]) == 2


def test_a_robot_secret_missing_from_the_environment_stops_the_pager_at_start(subprocess_env, tmp_path):
    hooks = tmp_path / "webhooks.yaml"
    hooks.write_text(yaml.safe_dump({"webhooks": {"水务": [
        {"format": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=${PAGER_TEST_DING_TOKEN}",
         "secret_env": "PAGER_TEST_NO_SUCH_SECRET"}]}}, allow_unicode=True))
    env = {**subprocess_env, "CITYOPS_PAGER_WEBHOOKS": str(hooks), **ROBOT_SECRETS}
    done = subprocess.run([sys.executable, "-m", "cityops", "pager", "--group", "pager-test-unstarted"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and done.stdout == ""
    line, = done.stderr.strip().splitlines()
    assert "PAGER_TEST_NO_SUCH_SECRET" in line and "水务" in line and "SECRET-" not in line


def _answers(post) -> bool:
    try:
        return post().status_code == 200
    except httpx.TransportError:
        return False


def test_retries_with_backoff_then_delivered_or_gave_up(pager, receiver):
    pager()
    flaky, down = alert("环卫"), alert("园林")
    produce(flaky, down)
    deliveries = Deliveries()
    wait_for(lambda: len(deliveries.of(flaky.alert_id)) == 3 and len(deliveries.of(down.alert_id)) == 3,
             "three attempts of each")
    assert [(d["attempt"], d["status"], d["http_status"]) for d in deliveries.of(flaky.alert_id)] == \
        [(1, "failed", 500), (2, "failed", 500), (3, "delivered", 200)]
    assert [(d["attempt"], d["status"]) for d in deliveries.of(down.alert_id)] == \
        [(1, "failed"), (2, "failed"), (3, "gave_up")]
    assert receiver.tries[("/flaky", flaky.alert_id)] == 3  # one delivery, after two refusals
    time.sleep(1)
    assert receiver.tries[("/flaky", flaky.alert_id)] == 3 and len(deliveries.of(flaky.alert_id)) == 3


def test_a_pager_killed_mid_backoff_resumes_the_attempts_from_the_ledger(pager, receiver):
    retry = ("--backoff", "4", "--backoff-max", "8", "--retry-for", "20")   # attempts at 0, 4, 12 and 20 s
    first = pager(*retry)
    down = alert("园林")
    produce(down)
    deliveries = Deliveries()
    wait_for(lambda: len(deliveries.of(down.alert_id)) == 2, "two failed attempts")
    os.kill(first.pid, signal.SIGKILL)   # its third attempt is due 8 s after the second
    first.wait()
    pager(*retry)
    plain = alert("水务")
    produce(plain)
    wait_for(lambda: "gave_up" in [d["status"] for d in deliveries.of(down.alert_id)], "the given-up record", 120)

    # At least once: a record the broker took before the kill may be sent again, unchanged.
    records = sorted({json.dumps(d, sort_keys=True): d for d in deliveries.of(down.alert_id)}.values(),
                     key=lambda d: d["attempt"])
    assert [(d["attempt"], d["status"]) for d in records] == [(1, "failed"), (2, "failed"), (3, "failed"),
                                                              (4, "gave_up")]
    assert records[-1]["error"] == "gave up after 4 attempts in 20 s: HTTP 500: {\"error\": \"busy\"}"
    posts = receiver.times[("/down", down.alert_id)]
    assert len(posts) == 4
    assert posts[2] - posts[1] >= 8 - 0.05   # the restarted pager kept the ledger's time, no immediate retry
    # Given up 20 s after the first attempt, not 20 s after the restart (which came after the second).
    assert 20 - 0.05 <= posts[3] - posts[0] and posts[3] - posts[1] < 19
    # Meanwhile the other department's alert was paged at once.
    sent = receiver.times[("/json", plain.alert_id)]
    assert sent and sent[0] < posts[3]


def test_a_hanging_webhook_holds_only_its_own_department(pager, receiver):
    pager("--timeout", "100")
    hung, plain = alert("应急"), alert("水务")
    receiver.held.add(hung.alert_id)
    produce(hung, plain)   # same partition: 水务's alert is read after the one whose webhook hangs
    wait_for(lambda: hung.alert_id in receiver.hanging, "the hanging webhook to be called")
    wait_for(lambda: [b for b in receiver.bodies("/json") if b["alert_id"] == plain.alert_id], "水务's page", 30)
    assert hung.alert_id in receiver.hanging   # paged while the other department's request still hangs
    receiver.release.set()
    deliveries = Deliveries()
    wait_for(lambda: [d["status"] for d in deliveries.of(hung.alert_id)] == ["delivered"], "the hung delivery's record")


def test_a_pager_killed_with_a_delivery_in_flight_delivers_it_after_restart(pager, receiver):
    first = pager("--timeout", "100")
    a = alert("应急")
    receiver.held.add(a.alert_id)
    produce(a)
    wait_for(lambda: a.alert_id in receiver.hanging, "the delivery to be in flight")
    os.kill(first.pid, signal.SIGKILL)   # its offset is committed: only the ledger's queue remembers it
    first.wait()
    receiver.release.set()
    pager()
    deliveries = Deliveries()
    wait_for(lambda: [d["status"] for d in deliveries.of(a.alert_id)] == ["delivered"], "the resumed delivery")
    assert receiver.tries[("/hang", a.alert_id)] == 2


def test_a_pager_killed_after_delivering_does_not_deliver_again(pager, receiver):
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    from cityops.settings import get_settings

    first = pager()
    a = alert("水务")
    offset, = produce(a)
    deliveries = Deliveries()
    wait_for(lambda: deliveries.of(a.alert_id), "the first delivery")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    # As if it died before committing: put the group's offset back to the alert (all partitions' keys are b"k").
    c = KafkaConsumer(bootstrap_servers=get_settings().bootstrap_servers, group_id=pager.group,
                      enable_auto_commit=False)
    tp = next(TopicPartition("alerts", p) for p in c.partitions_for_topic("alerts")
              if _holds(c, TopicPartition("alerts", p), offset, a.alert_id))
    wait_for(lambda: _rewind(c, tp, OffsetAndMetadata(offset, "", -1)), "the dead member to leave the group")
    c.close()

    pager()
    marker = alert("水务")
    produce(marker)
    wait_for(lambda: deliveries.of(marker.alert_id), "the restarted pager's delivery")
    assert len([b for b in receiver.bodies("/json") if b["alert_id"] == a.alert_id]) == 1
    # Records are at least once: killed after the broker took a record but before the outbox forgot it, the
    # pager resends it unchanged on restart. One delivery is one distinct record (a new attempt has a new time).
    records = {json.dumps(d, sort_keys=True) for d in deliveries.of(a.alert_id)}
    assert [json.loads(r)["status"] for r in records] == ["delivered"]


def _holds(c, tp, offset: int, alert_id: str) -> bool:
    c.assign([tp])
    c.seek(tp, offset)
    recs = c.poll(timeout_ms=5000).get(tp, [])
    c.unsubscribe()
    return bool(recs) and alert_id.encode() in recs[0].value


def _rewind(c, tp, meta) -> bool:
    from kafka.errors import KafkaError

    try:
        c.assign([tp])
        c.commit({tp: meta})
        return True
    except KafkaError:
        return False
