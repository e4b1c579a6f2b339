"""The pager's pure parts (formats, redaction, Grafana notifications, the ledger) and how compose wires
Grafana's contact points to it."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from pathlib import Path
from urllib.parse import quote_plus

import pytest
import yaml
from pydantic import ValidationError

from cityops.models.alerts import Alert, Delivery
from cityops.pii import mask_text
from cityops.alerting import Webhook
from pager import formats
from pager.grafana import alerts_of
from pager.ledger import Ledger, target_key

ROOT = Path(__file__).parents[1]
ALERT = Alert(alert_id="emergency_case:T-1@1", rule="emergency_case", severity="critical", department="市政",
              dedup_key="emergency_case:T-1", title="紧急：路面塌陷（张店区人民路）", detail="长" * 2000,
              district_code="370303", occurred_at="2026-11-22T08:00:00+00:00")


def test_redact_hides_token_values_only():
    assert formats.redact("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc-123") == \
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***"
    assert formats.redact("https://oapi.dingtalk.com/robot/send?access_token=t0k&timestamp=1&sign=s1") == \
        "https://oapi.dingtalk.com/robot/send?access_token=***&timestamp=1&sign=***"
    assert formats.redact("https://ops.example/hooks/cityops") == "https://ops.example/hooks/cityops"


def test_wecom_content_fits_the_robot_limit_and_dingtalk_has_a_title():
    wecom = formats.body("wecom", ALERT)
    assert wecom["msgtype"] == "markdown" and len(wecom["markdown"]["content"].encode()) <= formats.WECOM_MAX_BYTES
    assert wecom["markdown"]["content"].startswith("## 紧急：路面塌陷")
    ding = formats.body("dingtalk", ALERT)
    assert ding["markdown"]["title"] == ALERT.title and "16:00" in ding["markdown"]["text"]  # Beijing time
    assert Alert.model_validate(formats.body("json", ALERT)) == ALERT
    assert formats.robot_error("wecom", {"errcode": 93000, "errmsg": "invalid webhook url"}).startswith("errcode 93000")
    assert formats.robot_error("json", {"errcode": 1}) == ""


# A citizen's phone number, 18-digit ID and name, as a case's complaint text carries them into an alert.
PERSONAL = "市民来电：我叫张三，电话13812345678，身份证370303199001011234，反映路面塌陷"
CLEAR = ("13812345678", "370303199001011234", "张三")


def test_webhook_bodies_carry_personal_data_masked():
    a = ALERT.model_copy(update={"title": "紧急：路面塌陷（来电13812345678）", "detail": PERSONAL})
    for fmt in ("wecom", "dingtalk", "json"):
        sent = json.dumps(formats.body(fmt, a), ensure_ascii=False)
        assert not [c for c in CLEAR if c in sent], fmt
        assert mask_text(PERSONAL) in sent and "紧急：路面塌陷（来电138" in sent, fmt


def test_grafana_notification_alerts_carry_personal_data_masked():
    note = {"receiver": "水务", "alerts": [{"status": "firing", "labels": {"alertname": "回访 13812345678"},
                                          "annotations": {"summary": PERSONAL}, "fingerprint": "abc",
                                          "startsAt": "2026-11-22T08:00:00Z"}]}
    a, = alerts_of(note)
    assert not [c for c in CLEAR if c in a.model_dump_json()]
    assert a.detail == mask_text(PERSONAL) and a.title.startswith("回访 138")


def test_grafana_notification_becomes_alerts_with_stable_ids():
    note = {"receiver": "运维值班", "alerts": [
        {"status": "firing", "labels": {"alertname": "死信率过高", "severity": "critical"},
         "annotations": {"summary": "死信 5%"}, "startsAt": "2026-11-22T08:00:00Z", "fingerprint": "abc"},
        {"status": "resolved", "labels": {"alertname": "部门超期案件", "department": "水务"},
         "startsAt": "2026-11-22T07:00:00Z", "endsAt": "2026-11-22T08:00:00Z", "fingerprint": "def"}]}
    firing, resolved = alerts_of(note)
    assert (firing.department, firing.severity, firing.rule, firing.detail) == ("运维值班", "critical", "grafana", "死信 5%")
    assert alerts_of(note)[0].alert_id == firing.alert_id  # Grafana's repeat: the same alert
    assert resolved.department == "水务" and resolved.title.startswith("已恢复") and resolved.alert_id.endswith(":ok")


def test_ledger_finishes_pairs_and_keeps_records_until_sent(tmp_path):
    led = Ledger(tmp_path / "p.sqlite")
    url = "https://x/send?key=1"
    d = dict(alert_id="a", department="市政", channel="wecom", target=formats.redact(url))
    led.record(Delivery(**d, attempt=1, status="failed"), url)
    assert not led.finished("a", url)
    led.record(Delivery(**d, attempt=2, status="delivered"), url)
    assert led.finished("a", url) and not led.finished("a", "https://x/send?key=2")
    led.close()
    again = Ledger(tmp_path / "p.sqlite")   # durable across a restart
    assert again.finished("a", url) and len(again.pending()) == 2
    again.sent(again.pending()[-1][0])
    assert again.pending() == []


def test_ledger_queues_a_delivery_once_until_it_is_finished(tmp_path):
    led = Ledger(tmp_path / "p.sqlite")
    url, other = "https://x/send?key=1", "https://y/hook"
    assert led.enqueue([("a", url, b"A"), ("a", other, b"A"), ("a", url, b"A")]) == [True, True, False]
    assert led.enqueue([("a", url, b"A")]) == [False]          # read again: already queued
    d = dict(alert_id="a", department="市政", channel="wecom", target=formats.redact(url))
    led.record(Delivery(**d, attempt=1, status="failed"), url)
    assert led.queued() == [(target_key(url), b"A"), (target_key(other), b"A")]
    led.record(Delivery(**d, attempt=2, status="delivered"), url)
    led.close()
    again = Ledger(tmp_path / "p.sqlite")                       # durable across a restart
    assert again.queued() == [(target_key(other), b"A")]
    assert again.enqueue([("a", url, b"A")]) == [False]        # finished: never queued again


def test_ledger_forgets_finished_marks_once_their_alerts_cannot_be_read_again(tmp_path):
    import sqlite3
    import time

    from pager.ledger import FINISHED_KEEP_S

    old = tmp_path / "old.sqlite"    # a ledger written before finished marks had a time
    db = sqlite3.connect(old)
    db.execute("CREATE TABLE finished (alert_id TEXT, target TEXT, status TEXT, PRIMARY KEY (alert_id, target))")
    db.execute("INSERT INTO finished VALUES ('a', ?, 'delivered')", (target_key("https://x/send?key=1"),))
    db.commit()
    db.close()
    led = Ledger(old)
    assert led.finished("a", "https://x/send?key=1") and led.forget_finished() == 0   # kept the whole period
    d = dict(alert_id="b", department="市政", channel="wecom", target="x")
    led.record(Delivery(**d, attempt=1, status="delivered"), "https://x/send?key=1")
    led.db.execute("UPDATE finished SET at = ? WHERE alert_id = 'a'", (time.time() - FINISHED_KEEP_S - 1,))
    assert led.forget_finished() == 1
    assert not led.finished("a", "https://x/send?key=1") and led.finished("b", "https://x/send?key=1")
    assert FINISHED_KEEP_S > 2 * 7 * 86400   # beyond the alerts topic's retention and a segment roll


def test_a_ledger_from_before_the_retry_schedule_resumes_its_queue_at_the_first_attempt(tmp_path):
    import sqlite3

    old = tmp_path / "old.sqlite"    # queued deliveries written before the queue kept their progress
    db = sqlite3.connect(old)
    db.execute("CREATE TABLE queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id TEXT, target TEXT, alert BLOB, "
               "UNIQUE (alert_id, target))")
    db.execute("INSERT INTO queue (alert_id, target, alert) VALUES ('a', ?, ?)", (target_key("https://x/hook"), b"A"))
    db.commit()
    db.close()
    led = Ledger(old)
    assert led.queued() == [(target_key("https://x/hook"), b"A")]
    assert led.progress("a", "https://x/hook") == (0, None, 0.0)   # due now, as attempt 1
    d = Delivery(alert_id="a", department="市政", channel="webhook", target="x", attempt=1, status="failed")
    led.retry(d, "https://x/hook", 100.0, 101.0)
    assert led.progress("a", "https://x/hook") == (1, 100.0, 101.0)


def test_compose_points_grafana_contact_points_at_the_pager():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    base = services["grafana"]["environment"]["CITYOPS_PAGER_URL"]
    host, port = re.fullmatch(r"http://([\w-]+):(\d+)", base).groups()
    pager = services[host]["command"]
    assert pager[0] == "pager" and pager[pager.index("--port") + 1] == port and "0.0.0.0" in pager
    assert "CITYOPS_PAGER_WEBHOOKS" in services[host]["environment"]
    points = yaml.safe_load((ROOT / "dashboards/provisioning/alerting/cityops.yaml").read_text())["contactPoints"]
    urls = [r["settings"]["url"] for p in points for r in p["receivers"] if r["type"] == "webhook"]
    assert urls and all(u.startswith("${CITYOPS_PAGER_URL}/departments/") for u in urls)


def test_a_bad_message_on_alerts_is_logged_without_personal_data(caplog):
    from types import SimpleNamespace

    from pager.service import _alert

    too_long = ALERT.model_copy(update={"detail": "我叫张三，电话13812345678，" + "路" * 1990})
    bad = too_long.model_dump_json().encode()   # pydantic's message quotes the head and tail of the value
    assert _alert(SimpleNamespace(value=bad, partition=0, offset=7)) is None
    assert "alerts 0/7: not an Alert, skipped: detail: String should have at most 2000 characters" in caplog.text
    assert "张三" not in caplog.text and "138123" not in caplog.text


def test_dingtalk_sign_is_the_documented_hmac():
    # DingTalk's 加签: urlencode(base64(HMAC-SHA256(key=secret, msg=timestamp + "\n" + secret))). Computed with
    # printf '1700000000000\nSECa1b2c3d4e5f6' | openssl dgst -sha256 -hmac SECa1b2c3d4e5f6 -binary | base64
    from pager.targets import dingtalk_sign

    assert dingtalk_sign("SECa1b2c3d4e5f6", "1700000000000") == "oJQpdCHfADjAvXpklWV1PzUEobyTlyhOkQWGlZgxWPE%3D"
    secret, ts = "SEC" + "9f" * 30 + "+/", "1732262400000"
    mac = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    assert dingtalk_sign(secret, ts) == quote_plus(base64.b64encode(mac).decode())


ROBOTS = {"水务": [Webhook(format="dingtalk", url="https://oapi.dingtalk.com/robot/send?access_token=${DT_TOKEN}",
                          secret_env="DT_SECRET")],
          "市政": [Webhook(format="wecom", url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=${WECOM_KEY}")]}
ROBOT_ENV = {"DT_TOKEN": "tok-4f1d", "DT_SECRET": "SECa1b2c3d4e5f6", "WECOM_KEY": "693a91f6-7x"}


def test_targets_take_their_secrets_from_the_environment():
    from pager.targets import resolve

    (ding,), (wecom,) = resolve(ROBOTS, ROBOT_ENV).values()
    assert ding.send_url(1700000000.0) == ("https://oapi.dingtalk.com/robot/send?access_token=tok-4f1d"
                                           "&timestamp=1700000000000&sign=oJQpdCHfADjAvXpklWV1PzUEobyTlyhOkQWGlZgxWPE%3D")
    assert wecom.send_url(1700000000.0) == "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7x"
    # Records, logs and the ledger know a target by the URL as configured: a rotated secret keeps its queue.
    assert (ding.shown, ding.key) == ("https://oapi.dingtalk.com/robot/send?access_token=***",
                                      target_key(ROBOTS["水务"][0].url))
    assert not [v for v in ROBOT_ENV.values() if v in repr(ding) + repr(wecom)]
    assert ding.scrub("HTTP 400: token tok-4f1d refused, sign of SECa1b2c3d4e5f6") == \
        "HTTP 400: token *** refused, sign of ***"


def test_a_missing_secret_variable_is_named_at_start():
    from pager.targets import resolve

    with pytest.raises(ValueError, match=r"DT_SECRET.*水务|水务.*DT_SECRET") as e:
        resolve(ROBOTS, {**ROBOT_ENV, "DT_SECRET": ""})
    assert "WECOM_KEY" not in str(e.value)
    with pytest.raises(ValueError, match=r"not set: DT_TOKEN \(webhook of 水务\); WECOM_KEY \(webhook of 市政\)"):
        resolve(ROBOTS, {"DT_SECRET": "s"})


def test_webhook_config_rejects_misplaced_secrets():
    with pytest.raises(ValidationError, match="DingTalk"):
        Webhook(format="wecom", url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=${K}", secret_env="K")
    with pytest.raises(ValidationError, match=r"\$\{NAME\}"):
        Webhook(format="json", url="https://ops.example/hooks/${TOKEN")


def test_retry_backs_off_to_its_cap_and_gives_up_an_hour_after_the_first_attempt():
    from pager.delivery import Retry

    retry, now, attempts = Retry(first_s=1.0, max_s=300.0, for_s=3600.0), 0.0, [0.0]
    while (again := retry.after(len(attempts), 0.0, now)) is not None:   # each attempt fails at once
        attempts.append(now := again)
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert gaps[:10] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300] and max(gaps) == 300
    assert attempts[-1] == 3600.0 and len(attempts) == 21   # the last one an hour after the first, then gave up
    assert retry.after(12, 100.0, 3700.0) is None and retry.after(12, 100.0, 3690.0) == 3700.0


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def refusing(requests: list):
    import httpx

    def answer(request):
        requests.append(request)
        return httpx.Response(500, text="robot busy")
    return httpx.Client(transport=httpx.MockTransport(answer))


def test_a_failing_delivery_is_retried_for_an_hour_across_a_restart(tmp_path):
    from datetime import datetime, timezone

    from pager.delivery import Deliverer, Retry
    from pager.targets import resolve

    start = 1_795_000_000.0
    clock, requests, retry = Clock(start), [], Retry(first_s=1.0, max_s=300.0, for_s=3600.0)
    # Raised 50 minutes before its first attempt: the pager's 1 h stale rule must not cut the retries short.
    alert = ALERT.model_copy(update={"raised_at": datetime.fromtimestamp(start - 3000, timezone.utc)})
    (target,), = resolve({"市政": [Webhook(format="json", url="https://ops.example/hooks/cityops")]}, {}).values()
    led = Ledger(tmp_path / "p.sqlite")
    led.enqueue([(alert.alert_id, target.name, alert.model_dump_json().encode())])
    pager = Deliverer(led, refusing(requests), retry, max_age_s=3600.0, clock=clock)
    for _ in range(5):
        clock.now = pager.attempt(target, alert)
    led.close()                                        # killed mid-backoff: the ledger knows where it was
    led = Ledger(tmp_path / "p.sqlite")
    assert led.progress(alert.alert_id, target.name) == (5, start, clock.now)
    pager = Deliverer(led, refusing(requests), retry, max_age_s=3600.0, clock=clock)
    while (due := pager.attempt(target, alert)) is not None:
        assert due > clock.now                         # never an immediate retry
        clock.now = due
    records = [Delivery.model_validate_json(r) for _, r in led.pending()]
    assert [d.attempt for d in records] == list(range(1, 22)) and len(requests) == 21
    assert {d.status for d in records[:-1]} == {"failed"} and records[-1].status == "gave_up"
    assert clock.now == start + 3600 and records[-1].attempted_at.timestamp() == start + 3600
    assert records[-1].error == "gave up after 21 attempts in 60 min: HTTP 500: robot busy"
    assert led.queued() == [] and led.finished(alert.alert_id, target.name)


def test_an_alert_too_old_for_its_first_attempt_is_given_up_as_stale(tmp_path):
    from datetime import datetime, timezone

    from pager.delivery import Deliverer, Retry
    from pager.targets import resolve

    clock, requests = Clock(1_795_000_000.0), []
    alert = ALERT.model_copy(update={"raised_at": datetime.fromtimestamp(clock.now - 7200, timezone.utc)})
    (target,), = resolve({"市政": [Webhook(format="json", url="https://ops.example/hooks/cityops")]}, {}).values()
    led = Ledger(tmp_path / "p.sqlite")
    led.enqueue([(alert.alert_id, target.name, alert.model_dump_json().encode())])
    assert Deliverer(led, refusing(requests), Retry(), max_age_s=3600.0, clock=clock).attempt(target, alert) is None
    (_, record), = led.pending()
    d = Delivery.model_validate_json(record)
    assert (d.status, d.attempt, requests) == ("gave_up", 1, [])
    assert d.error.startswith("stale: raised 120 minutes ago")


def test_an_alert_in_backoff_does_not_hold_the_next_one_for_its_target():
    import threading
    import time

    from pager.lanes import Lanes

    first, second = ALERT, ALERT.model_copy(update={"alert_id": "emergency_case:T-2@1"})
    attempts, stop = [], threading.Event()

    def deliver(target, alert):
        attempts.append((alert.alert_id, time.time()))
        if alert is first and len(attempts) == 1:
            return time.time() + 0.5     # its robot refused it: due again in 0.5 s
        return None

    lanes = Lanes(deliver, stop)
    lanes.put("k", None, first)
    lanes.put("k", None, second)
    deadline = time.time() + 10
    while len(attempts) < 3 and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    lanes.join(2)
    assert [a for a, _ in attempts] == [first.alert_id, second.alert_id, first.alert_id]
    assert attempts[2][1] - attempts[0][1] >= 0.5    # the first again once due, not at once
