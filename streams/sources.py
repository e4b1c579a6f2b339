"""Source handlers: one raw message from a source topic → outputs (dead letter, case candidate or command, incident,
alert) plus a minute count. Pure apart from the state it is given; the handlers send what it returns.

Outputs are (topic name, key, value bytes) triples so a handler sends a batch's worth at once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from cityops.admit import admit
from cityops.models import AppReport, CaseEvent, Discovery, ReporterRole, SensorEvent, TicketEvent
from cityops.models.cases import ApplyTicket, CaseCandidate, DeviceCheck
from cityops.models.deadletters import DeadLetter
from cityops.models.incidents import Incident
from cityops.models.sensors import UNITS
from cityops.models.tickets import TicketStatus
from cityops.pii import caller_hash, mask_text
from cityops.taxonomy import Taxonomy
from cityops.topics import ALERTS, CASE_CANDIDATES, CASE_COMMANDS, DEADLETTERS, INCIDENTS, SENSOR_EVENTS
from streams.aggregates.windows import MinuteCounts
from streams.alerts import rules as alert_rules
from streams.dispatch import dispatch_tier, due_at
from streams.placement import Place, Placer
from streams.sensors import incidents
from streams.sensors.limits import VERIFY_HOLD_S, Limits
from streams.state import KV

Out = tuple[str, bytes | None, bytes]
SENT_KEPT = 4  # a device remembers the outputs of its last transitions, to re-emit them when replayed


def dead_out(dl: DeadLetter) -> Out:
    return DEADLETTERS.name, None, dl.model_dump_json().encode()


def alert_out(alert) -> Out:
    return ALERTS.name, alert.department.encode(), alert.model_dump_json().encode()


@dataclass
class Sources:
    placer: Placer
    classifier: object          # streams.classify.Classifier (classify(text), for_sensor(kind))
    taxonomy: Taxonomy
    counts: MinuteCounts
    devices: KV                 # hysteresis state by device id
    limits: Limits
    pii_key: str
    _sensor_class: dict = field(default_factory=dict)

    # -- shared steps -------------------------------------------------------------------------------
    def _decode(self, model, raw, key, topic, partition, offset):
        ev = admit(model, raw, topic=topic, partition=partition, offset=offset, key=key, in_city=self.placer.in_city)
        if isinstance(ev, DeadLetter):
            return None, [dead_out(ev)]
        return ev, []

    def _draft(self, *, case_id: str, ev, label_of, text: str, address: str | None, place: Place | None,
               confidence: float, caller: str = "", discovered_by: Discovery = Discovery.citizen,
               device_id: str | None = None) -> dict:
        """The first version of a case, classified, placed and dispatched (CaseUpdate fields as JSON)."""
        cat = self.taxonomy.by_label(label_of.label)
        received = ev.received_at
        return {
            "case_id": case_id, "event_id": ev.event_id, "source": ev.source, "status": "created",
            "occurred_at": ev.occurred_at.isoformat(), "received_at": received.isoformat(),
            "text": mask_text(text), "address": mask_text(address or ""),
            "lat": place.lat if place else getattr(ev, "lat", None),
            "lon": place.lon if place else getattr(ev, "lon", None),
            "placed": place is not None,
            "grid_code": place.grid_code if place else ev.grid_code,
            "district_code": place.district_code if place else ev.district_code,
            "street_code": place.street_code if place else None,
            "label": cat.label, "code": cat.code, "department": cat.department,
            "tier": dispatch_tier(cat).value, "time_limit_minutes": cat.time_limit, "confidence": confidence,
            "due_at": due_at(received, cat.time_limit, self.taxonomy.working_hours, clock=cat.clock).isoformat(),
            "caller_hash": caller, "discovered_by": discovered_by.value, "device_id": device_id,
        }

    def _candidate(self, draft: dict) -> Out:
        key = f"{draft['district_code'] or 'unplaced'}|{draft['label']}"
        return CASE_CANDIDATES.name, key.encode(), CaseCandidate(dedup_key=key, case=draft).model_dump_json().encode()

    def _count(self, topic, partition, offset, ev, place: Place | None, source: str, label: str,
               arrived: float | None) -> None:
        # An event cannot have happened after the broker took it: a later timestamp is its source's clock running
        # fast (docs/streams.md, clocks), so it counts in the minute it arrived and cannot run the windows ahead.
        t = ev.occurred_at.timestamp()
        self.counts.add(topic, partition, offset, t if arrived is None or t <= arrived else arrived,
                        place.district_code if place else (ev.district_code or ""),
                        place.street_code if place else "", source, label)

    # -- sources ------------------------------------------------------------------------------------
    def hotline(self, raw: bytes, key: bytes | None, topic: str, partition: int, offset: int,
                arrived: float | None = None) -> list[Out]:
        ev, outs = self._decode(TicketEvent, raw, key, topic, partition, offset)
        if ev is None:
            return outs
        if ev.status != TicketStatus.created:
            event = ev.model_dump(mode="json", exclude={"caller_phone", "caller_name", "text", "note", "address"})
            cmd = ApplyTicket(case_id=ev.ticket_id, event=event, source_offset=offset)
            return [(CASE_COMMANDS.name, ev.ticket_id.encode(), cmd.model_dump_json().encode())]
        place = self.placer.place(ev.lat, ev.lon, ev.address)
        c = self.classifier.classify(ev.text or "")
        draft = self._draft(case_id=ev.ticket_id, ev=ev, label_of=c, text=ev.text or "", address=ev.address,
                            place=place, confidence=c.confidence, caller=caller_hash(ev.caller_phone, self.pii_key))
        self._count(topic, partition, offset, ev, place, "hotline", c.label, arrived)
        return [self._candidate(draft)]

    def app(self, raw: bytes, key: bytes | None, topic: str, partition: int, offset: int,
               arrived: float | None = None) -> list[Out]:
        ev, outs = self._decode(AppReport, raw, key, topic, partition, offset)
        if ev is None:
            return outs
        place = self.placer.place(ev.lat, ev.lon, ev.address)
        c = self.classifier.classify(ev.text)
        confidence = c.confidence
        if ev.service_code:  # the reporter chose a category (Open311 service_code): trust a known one
            try:
                cat = self.taxonomy.by_code(ev.service_code)
                c, confidence = _Chosen(cat.label), 1.0
            except KeyError:
                pass
        found = Discovery.patrol if ev.reporter_role == ReporterRole.grid_worker else Discovery.citizen
        draft = self._draft(case_id=ev.report_id, ev=ev, label_of=c, text=ev.text, address=ev.address,
                            place=place, confidence=confidence, caller=caller_hash(ev.reporter_phone, self.pii_key),
                            discovered_by=found)
        self._count(topic, partition, offset, ev, place, "app", c.label, arrived)
        return [self._candidate(draft)]

    def sensor(self, raw: bytes, key: bytes | None, topic: str, partition: int, offset: int,
               arrived: float | None = None) -> list[Out]:
        ev, outs = self._decode(SensorEvent, raw, key, topic, partition, offset)
        if ev is None:
            return outs
        place = self.placer.place(ev.lat, ev.lon, None)
        c = self._sensor_class.get(ev.kind)
        if c is None:
            c = self._sensor_class[ev.kind] = self.classifier.for_sensor(ev.kind)
        self._count(topic, partition, offset, ev, place, "sensor", c.label, arrived)
        state = self.devices.get(ev.device_id)
        if state is not None and offset <= state.get("off", -1):
            # Applied before a restart. Its changelog write may have reached the broker while the outputs sent
            # with it did not (SIGKILL before the commit): re-emit them; incidents, alerts, commands keep their ids.
            sent = [(t, k.encode(), v.encode()) for off, outs in state.get("sent", []) if off == offset
                    for t, k, v in outs]
            if sent or ev.event != "alert":
                return sent
            return [self._candidate(self._alarm_draft(ev, c, place))]   # an alarm's case again: idempotent by id
        verify = state.get("verify") if state else None
        t = ev.occurred_at.timestamp()
        if ev.event == "alert":
            if verify:   # the device alarming again reopens its resolved case (虚假办结): no second case
                outs, verify = self._verified(ev, verify, offset, alarming=True, normal=False)
                if outs:
                    return self._save(ev, partition, offset, state, state, outs, verify)
            # A device's own alarm (cover missing, lamp fault) is a case; repeats merge as duplicates. When it
            # alarmed is noted: a check of its earlier case coming later sees it.
            self._save(ev, partition, offset, state, {**(state or {}), "alarmed": t}, [], verify)
            return [self._candidate(self._alarm_draft(ev, c, place))]
        k = self.limits.kinds.get(ev.kind)
        bounds = self.limits.bounds(ev.kind, ev.occurred_at) if k else None
        new, what = incidents.step(state, t, ev.value, bounds, k.sustain_s if k else 0, k.clear_s if k else 0)
        if what:
            outs += self._transition(ev, place, c, new, state, what)
        if what == "open":   # sustained over its limit: when, so that a check coming later sees it
            new = {**new, "alarmed": t}
        if verify:   # still in alarm after the repair, or back to normal long enough
            s_now = (new or {}).get("s")
            more, verify = self._verified(ev, verify, offset, alarming=s_now == "open", normal=s_now is None)
            outs += more
        if new is state and not outs and verify == (state or {}).get("verify"):
            return []
        return self._save(ev, partition, offset, state, new, outs, verify)

    def _alarm_draft(self, ev: SensorEvent, c, place: Place | None) -> dict:
        return self._draft(case_id=f"S-{ev.event_id}"[:64], ev=ev, label_of=c,
                           text=f"设备 {ev.device_id} 告警 {ev.alert_code or ''}：{ev.value:g}{UNITS[ev.kind]}",
                           address=None, place=place, confidence=1.0, discovered_by=Discovery.sensor,
                           device_id=ev.device_id)

    def check(self, raw: bytes, topic: str, partition: int, offset: int) -> list[Out]:
        """A device's case was resolved (streams.device-checks): its next readings verify the repair; an alarm
        it raised after the resolution, before this check came, reopens the case at once."""
        chk = DeviceCheck.model_validate_json(raw)
        state = self.devices.get(chk.device_id) or {}
        pending = state.get("verify")
        if pending and pending["version"] >= chk.version:
            return []   # a replay, or an older resolution
        since = chk.resolved_at.timestamp()
        if state.get("alarmed", 0) >= since:
            at = datetime.fromtimestamp(state["alarmed"], timezone.utc).isoformat()
            return [_reopen(chk.case_id, chk.version, at, "设备办结后仍告警", topic, offset)]
        self.devices.put(partition, chk.device_id, {**state, "verify": {
            "case_id": chk.case_id, "version": chk.version, "since": since}})
        return []

    def _verified(self, ev: SensorEvent, verify: dict, offset: int, *, alarming: bool, normal: bool
                  ) -> tuple[list[Out], dict | None]:
        """A device whose case awaits verification: still in alarm (an alert, or an incident open: over its limit
        for the kind's sustain time) → the case reopened as a false closure; normal for the kind's hold time →
        核查通过 and closed. The pending check, or None once decided."""
        t = ev.occurred_at.timestamp()
        if t < verify["since"]:
            return [], verify
        k = self.limits.kinds.get(ev.kind)
        if not alarming and not (normal and t - verify["since"] >= (k.verify_hold_s if k else VERIFY_HOLD_S)):
            return [], verify
        cid, version, at = verify["case_id"], verify["version"], ev.occurred_at.isoformat()
        if alarming:
            return [_reopen(cid, version, at, f"设备办结后仍告警：{ev.value:g}{UNITS[ev.kind]}", SENSOR_EVENTS.name,
                            offset)], None
        event = {"event_id": f"{cid}-ok{version}"[-64:], "status": "verified", "then_closed": True,
                 "occurred_at": at, "received_at": at, "system": "device", "note": "设备读数恢复正常，核查通过"}
        cmd = ApplyTicket(case_id=cid, event=event, source_offset=offset, source_topic=SENSOR_EVENTS.name)
        return [(CASE_COMMANDS.name, cid.encode(), cmd.model_dump_json().encode())], None

    def _save(self, ev: SensorEvent, partition: int, offset: int, state: dict | None, new: dict | None,
              outs: list[Out], verify: dict | None) -> list[Out]:
        """The device's new state, remembering this offset's outputs to re-emit them if it is replayed."""
        sent = state.get("sent", []) if state else []
        if outs:
            sent = [*sent, [offset, [[t, k.decode(), v.decode()] for t, k, v in outs]]][-SENT_KEPT:]
        kept = {key: v for key, v in (new or {}).items() if key not in ("off", "sent", "verify")}
        if not kept and not sent and verify is None:
            self.devices.delete(partition, ev.device_id)
        else:
            self.devices.put(partition, ev.device_id, {**kept, "off": offset, "sent": sent,
                                                        **({"verify": verify} if verify else {})})
        return outs

    def case_event(self, raw: bytes, key: bytes | None, topic: str, partition: int, offset: int,
                   arrived: float | None = None) -> list[Out]:
        """A status event of any case (case.events): to the case's lifecycle, with its offset."""
        ev, outs = self._decode(CaseEvent, raw, key, topic, partition, offset)
        if ev is None:
            return outs
        event = ev.model_dump(mode="json", exclude_none=True)
        cmd = ApplyTicket(case_id=ev.case_id, event=event, source_offset=offset, source_topic=topic)
        return [(CASE_COMMANDS.name, ev.case_id.encode(), cmd.model_dump_json().encode())]

    def _transition(self, ev: SensorEvent, place: Place | None, c, new: dict | None, state: dict | None,
                    what: str) -> list[Out]:
        src = new if what == "open" else state
        opened = datetime.fromtimestamp(src.get("opened", src["since"]), timezone.utc)
        inc = Incident(incident_id=f"{ev.device_id}@{int(opened.timestamp())}", version=1 if what == "open" else 2,
                       device_id=ev.device_id, kind=ev.kind, state=what if what == "open" else "closed",
                       opened_at=opened, closed_at=ev.occurred_at if what == "close" else None,
                       peak_value=src["peak"], limit=src["limit"], unit=UNITS[ev.kind], lat=ev.lat, lon=ev.lon,
                       grid_code=place.grid_code if place else None,
                       district_code=place.district_code if place else None,
                       street_code=place.street_code if place else None, label=c.label, department=c.department)
        outs: list[Out] = [(INCIDENTS.name, inc.incident_id.encode(), inc.model_dump_json().encode())]
        if what == "open":
            outs.append(alert_out(alert_rules.incident_opened(inc.model_dump(mode="json"), ev.occurred_at)))
        return outs


def _reopen(cid: str, version: int, at: str, note: str, topic: str, offset: int) -> Out:
    """The command reopening a device case its device found unresolved (虚假办结)."""
    event = {"event_id": f"{cid}-fc{version}"[-64:], "status": "reopened", "false_closure": True,
             "occurred_at": at, "received_at": at, "system": "device", "note": note}
    cmd = ApplyTicket(case_id=cid, event=event, source_offset=offset, source_topic=topic)
    return CASE_COMMANDS.name, cid.encode(), cmd.model_dump_json().encode()


@dataclass(frozen=True)
class _Chosen:
    label: str
