"""Pure case logic: fold a ticket event into the case's previous state. No Faust here, so it unit-tests plainly."""
from __future__ import annotations

from cityops.models import CaseUpdate, TicketEvent
from cityops.models.tickets import TicketStatus
from cityops.pii import caller_hash, mask_text
from streams.classify import Classifier


def apply(prev: CaseUpdate | None, ev: TicketEvent, *, pii_key: str, classifier: Classifier) -> CaseUpdate:
    if prev is None:
        c = classifier.classify(ev.text or "")
        base = dict(case_id=ev.ticket_id, version=0, source=ev.source, label=c.label, code=c.code,
                    department=c.department, tier=c.tier, time_limit_minutes=c.time_limit_minutes,
                    confidence=c.confidence, text=mask_text(ev.text or ""), address=ev.address or "",
                    lat=ev.lat, lon=ev.lon, caller_hash=caller_hash(ev.caller_phone, pii_key),
                    grid_code=ev.grid_code, district_code=ev.district_code)
    else:
        base = prev.model_dump()
    base.update(version=base["version"] + 1, event_id=ev.event_id, status=ev.status,
                occurred_at=ev.occurred_at, received_at=ev.received_at)
    base.pop("processed_at", None)
    if ev.department:
        base["department"] = ev.department
    if ev.tier:
        base["tier"] = ev.tier
    if ev.resolution_mode:
        base["resolution_mode"] = ev.resolution_mode
    if ev.satisfaction:
        base["satisfaction"] = ev.satisfaction
    if ev.status == TicketStatus.reopened:
        base["reopen_count"] += 1
    return CaseUpdate.model_validate(base)
