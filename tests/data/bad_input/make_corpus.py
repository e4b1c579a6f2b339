"""Writes cases.jsonl, the bad-input corpus: what producers really send wrong, one case per line.

Run `python tests/data/bad_input/make_corpus.py` after editing; the JSONL is what the tests read, so a
reviewer sees every payload byte for byte (base64) next to the outcome it must have.

Each line: name, topic, key (text or null), payload_b64 (null: a tombstone), repeat (times sent),
expect ('dead_letter' with `reasons`, the acceptable reason classes; or 'accepted' with `event_id` and
optional `text`/`address` that must be stored verbatim), why (one sentence).
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

OUT = Path(__file__).with_name("cases.jsonl")
T0 = "2026-07-15T20:31:05+08:00"

TICKET = {"event_id": "bad-ticket-base", "source": "hotline", "occurred_at": T0, "ticket_id": "BAD-T-000",
          "status": "created", "text": "八大局便民市场门口晚上有人露天烧烤，烟很大", "address": "张店区八大局便民市场",
          "lat": 36.8121, "lon": 118.0502, "channel": "phone", "caller_phone": "13812345678"}
SENSOR = {"event_id": "bad-sensor-base", "source": "sensor", "occurred_at": T0, "device_id": "fume-370303-0042",
          "kind": "cooking_fume", "event": "reading", "value": 2.7, "lat": 36.8093, "lon": 118.0467}
REPORT = {"event_id": "bad-report-base", "source": "app", "occurred_at": T0, "report_id": "BAD-R-000",
          "text": "小区门口垃圾桶满了好几天没人清运", "lat": 36.8150, "lon": 118.0610, "reporter_role": "resident"}
BASES = {"hotline.tickets": ("ticket", TICKET, "ticket_id"), "sensor.events": ("sensor", SENSOR, "device_id"),
         "app.reports": ("report", REPORT, "report_id")}

SQL = "'); DROP TABLE cases;--"
SCRIPT = "<script>alert(1)</script>"

cases: list[dict] = []


def js(obj: dict, **kw) -> bytes:
    return json.dumps(obj, ensure_ascii=False, **kw).encode()


def add(name: str, topic: str, payload: bytes | None, expect: str, why: str, *, reasons: list[str] | None = None,
        event_id: str | None = None, repeat: int = 1, **stored) -> None:
    cases.append({"name": name, "topic": topic, "key": name, "repeat": repeat,
                  "payload_b64": None if payload is None else base64.b64encode(payload).decode(),
                  "expect": expect, "reasons": reasons or [], "event_id": event_id, **stored, "why": why})


def dead(name, topic, payload, reasons, why):
    add(name, topic, payload, "dead_letter", why, reasons=reasons if isinstance(reasons, list) else [reasons])


def event(topic: str, name: str, **changes) -> dict:
    """A valid base event for `topic`, with unique ids for this case, then `changes` (None deletes)."""
    kind, base, id_field = BASES[topic]
    obj = dict(base, event_id=f"bad-{name}"[:64])
    if id_field != "device_id":
        obj[id_field] = f"BAD-{name}"[:40].replace("_", "-")
    for k, v in changes.items():
        if v is None:
            obj.pop(k, None)
        else:
            obj[k] = v
    return obj


def accepted(name, topic, obj, why, repeat=1, **stored):
    add(name, topic, js(obj), "accepted", why, event_id=obj["event_id"], repeat=repeat, **stored)


def common(topic: str) -> None:
    kind = BASES[topic][0]
    n = lambda s: f"{kind}-{s}"  # noqa: E731
    good = js(event(topic, n("x")))
    text = good.decode()
    dead(n("truncated-json"), topic, text[: len(text) // 2].encode(), "invalid_json", "JSON cut off mid-message")
    dead(n("trailing-comma"), topic, good[:-1] + b",}", "invalid_json", "a trailing comma (JavaScript habit)")
    dead(n("not-json"), topic, "工单已受理".encode(), "invalid_json", "plain text instead of JSON")
    dead(n("single-quotes"), topic, good.replace(b'"', b"'"), "invalid_json", "Python repr instead of JSON")
    dead(n("json-array"), topic, b"[" + good + b"]", "schema", "an array of events instead of one event")
    dead(n("json-null"), topic, b"null", "schema", "the literal null")
    dead(n("empty-value"), topic, b"", "empty", "a zero-byte value")
    dead(n("tombstone"), topic, None, "empty", "a null value (compaction tombstone)")
    dead(n("missing-id"), topic, js(event(topic, n("missing-id"), **{BASES[topic][2]: None})), "schema",
         "the entity id is missing")
    dead(n("missing-occurred-at"), topic, js(event(topic, n("missing-occurred-at"), occurred_at=None)),
         ["schema", "timestamp"], "no event time (a missing required field: the streams say schema)")
    dead(n("naive-time"), topic, js(event(topic, n("naive-time"), occurred_at="2026-07-15 20:31:05")), "timestamp",
         "a local time without a zone: ambiguous")
    dead(n("future-time"), topic, js(event(topic, n("future-time"), occurred_at="2099-01-01T00:00:00+08:00")),
         "timestamp", "an event from the future (device clock wrong)")
    dead(n("epoch-time"), topic, js(event(topic, n("epoch-time"), occurred_at="1970-01-01T00:00:00Z")), "timestamp",
         "1970: an unset device clock")
    dead(n("garbage-time"), topic, js(event(topic, n("garbage-time"), occurred_at="昨天晚上")), "timestamp",
         "free text where a timestamp belongs")
    dead(n("unknown-field"), topic, js(event(topic, n("unknown-field"), colour="red")), "schema",
         "a field the schema does not have (typo at the producer)")
    dead(n("wrong-source"), topic, js(event(topic, n("wrong-source"), source="elsewhere")), "schema",
         "the source does not match the topic")
    dead(n("lat-without-lon"), topic, js(event(topic, n("lat-without-lon"), lon=None)), "schema",
         "half a coordinate")
    dead(n("lat-out-of-range"), topic, js(event(topic, n("lat-out-of-range"), lat=95.0)), "schema",
         "latitude beyond the pole")
    dead(n("lat-as-word"), topic, js(event(topic, n("lat-as-word"), lat="north")), "schema", "a word for a number")
    dead(n("short-event-id"), topic, js(event(topic, n("x"), event_id="e1")), "schema", "event id under 8 chars")
    chinese = event(topic, n("gbk"), **({"alert_code": "井盖移位"} if kind == "sensor" else {}))
    dead(n("gbk"), topic, js(chinese).decode().encode("gbk"), "encoding",
         "the whole message GBK-encoded (Windows intake software)")
    mixed = js(event(topic, n("mixed-gbk"))).replace('"source"'.encode(),
                                                      '"备注":"'.encode("gbk") + "积水".encode("gbk") + b'","source"')
    dead(n("mixed-gbk"), topic, mixed, "encoding", "UTF-8 with a stray GBK run pasted in")
    dead(n("utf16"), topic, js(event(topic, n("utf16"))).decode().encode("utf-16"), "encoding",
         "UTF-16 with its BOM (Excel export)")
    dead(n("utf8-bom"), topic, b"\xef\xbb\xbf" + js(event(topic, n("utf8-bom"))), ["encoding", "invalid_json"],
         "UTF-8 with a byte-order mark (RFC 8259 forbids sending one)")
    padded = js(event(topic, n("oversize-padded")))
    dead(n("oversize-padded"), topic, padded[:-1] + b" " * (65 * 1024) + b"}", "oversize",
         "a valid event padded with whitespace past 64 KiB")
    dead(n("oversize-binary"), topic, bytes(range(256)) * 300, "oversize", "75 KiB of binary (a photo sent as value)")
    dead(n("outside-city"), topic, js(event(topic, n("outside-city"), lat=39.9042, lon=116.4074)), "coordinates",
         "coordinates in Beijing, far outside the city")
    dead(n("null-island"), topic, js(event(topic, n("null-island"), lat=0.0, lon=0.0)), "coordinates",
         "a missing GPS fix sent as (0, 0)")
    accepted(n("duplicate"), topic, event(topic, n("duplicate")), "the same event delivered twice: stored once",
             repeat=2)


def hotline() -> None:
    t = "hotline.tickets"
    accepted("ticket-sql-injection", t, event(t, "ticket-sql-injection", text=f"门口有人摆摊{SQL}"),
             "SQL in complaint text is text", text=f"门口有人摆摊{SQL}")
    accepted("ticket-script-injection", t, event(t, "ticket-script-injection", text=f"路灯不亮{SCRIPT}"),
             "script in complaint text is text", text=f"路灯不亮{SCRIPT}")
    accepted("ticket-sql-in-address", t, event(t, "ticket-sql-in-address", address="'; DROP TABLE raw_tickets;--"),
             "SQL in the address is text", address="'; DROP TABLE raw_tickets;--")
    accepted("ticket-control-chars", t, event(t, "ticket-control-chars", text="井盖\u0000缺失\t\u202e🚧\u3000"),
             "NUL, bidi override, emoji and ideographic space survive", text="井盖\u0000缺失\t\u202e🚧\u3000")
    accepted("ticket-max-text", t, event(t, "ticket-max-text", text="噪" * 4000), "4000 chars is the limit",
             text="噪" * 4000)
    dead("ticket-text-too-long", t, js(event(t, "ticket-text-too-long", text="噪" * 4001)), "schema",
         "4001 chars of text")
    dead("ticket-unknown-status", t, js(event(t, "ticket-unknown-status", status="teleported")), "schema",
         "a status the closed loop does not have")
    dead("ticket-dispatch-no-dept", t, js(event(t, "ticket-dispatch-no-dept", status="dispatched")), "schema",
         "dispatched without a department")
    dead("ticket-unknown-satisfaction", t,
         js(event(t, "ticket-unknown-satisfaction", status="return_visit", satisfaction="超级满意")), "schema",
         "a satisfaction level that does not exist")
    dead("ticket-unknown-channel", t, js(event(t, "ticket-unknown-channel", channel="pigeon")), "schema",
         "an unknown intake channel")
    dead("ticket-id-with-sql", t, js(event(t, "x", ticket_id="RX'; DROP TABLE--")), "schema",
         "SQL in an id field fails its pattern")
    dead("ticket-id-as-number", t, js(event(t, "x", ticket_id=20260715000042)), "schema", "a number for an id")
    dead("ticket-empty-text", t, js(event(t, "ticket-empty-text", text="")), "schema", "a created ticket with no text")


def sensor() -> None:
    t = "sensor.events"
    dead("sensor-unknown-kind", t, js(event(t, "sensor-unknown-kind", kind="radiation")), "schema",
         "a sensor kind the city does not have")
    dead("sensor-unknown-event", t, js(event(t, "sensor-unknown-event", event="explosion")), "schema",
         "an event type other than reading/alert")
    dead("sensor-value-word", t, js(event(t, "sensor-value-word", value="high")), "schema", "a word for a reading")
    dead("sensor-value-nan", t, js(event(t, "sensor-value-nan", value=float("nan"))), ["schema", "invalid_json"],
         "NaN (not JSON, but some encoders write it)")
    dead("sensor-value-infinity", t, js(event(t, "sensor-value-infinity", value=float("inf"))),
         ["schema", "invalid_json"], "Infinity")
    dead("sensor-device-with-space", t, js(event(t, "x", device_id="fume 42; rm -rf /")), "schema",
         "shell in the device id fails its pattern")
    accepted("sensor-unknown-alert-code", t,
             event(t, "sensor-unknown-alert-code", event="alert", alert_code="E-UNKNOWN-77"),
             "a device's own alert code is free text")


def app_report() -> None:
    t = "app.reports"
    accepted("report-script-injection", t, event(t, "report-script-injection", text=f"小广告又贴满了{SCRIPT}"),
             "script in the description is text", text=f"小广告又贴满了{SCRIPT}")
    accepted("report-sql-injection", t, event(t, "report-sql-injection", text=f"共享单车乱停{SQL}"),
             "SQL in the description is text", text=f"共享单车乱停{SQL}")
    accepted("report-unknown-service-code", t, event(t, "report-unknown-service-code", service_code="ZZ99"),
             "an unknown service code: the report is kept and classified from its text")
    dead("report-javascript-url", t, js(event(t, "report-javascript-url", photo_url="javascript:alert(1)")),
         "schema", "a javascript: URL for the photo")
    dead("report-no-location", t, js(event(t, "report-no-location", lat=None, lon=None)), "schema",
         "neither coordinates nor an address")
    dead("report-unknown-role", t, js(event(t, "report-unknown-role", reporter_role="mayor")), "schema",
         "an unknown reporter role")
    dead("report-empty-text", t, js(event(t, "report-empty-text", text="")), "schema", "an empty description")


if __name__ == "__main__":
    for topic in BASES:
        common(topic)
    hotline()
    sensor()
    app_report()
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    OUT.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases))
    print(f"{len(cases)} cases → {OUT}")
