"""The department endpoint: a department reports on the cases dispatched to it — 签收 (accept), 办结 (resolve),
退回 (return) — with its own key, and the intake publishes each report as a CaseEvent (system "department-api")
on `case.events`, for the streams to apply.

`POST /departments/v1/cases/{case_id}/events`, key in `X-API-Key`, body `{"action": "accept"|"resolve"|"return",
"resolution_mode": "服务"|"管理"|"执法", "note": "…", "photo_url": "https://…"}`.
Checked in this order: the key (401), the case known from `cases` (404), dispatched to the key's department
(403), the body (400), the action allowed in the case's status (409). Then 202 with the event's id once Kafka
acknowledged it, or a bounded 503 with that id: the event is then published once, under it, when Kafka is back
(delivery.py). A repeat — the same Idempotency-Key, the same body on the same version of the case, or the body
of the event the case's newest version came from — gets the first event's answer and is not published again.
The note is never logged: it may name someone.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError

from cityops.models import CaseEvent
from cityops.models.tickets import CaseStatus, ResolutionMode
from cityops.topics import CASE_EVENTS
from producers.errors import InvalidEvent
from producers.intake.casebook import CaseBook
from producers.intake.delivery import Courier, acknowledged
from producers.intake.keys import SETTING, department_of, sign
from producers.intake.limits import RateLimiter, read_body
from producers.intake.open311 import STATUS_NAMES, Open311Error, error
from producers.intake.store import TZ
from producers.serde import encode, validate

PREFIX = "/departments/v1"
SYSTEM = "department-api"
MAX_BODY = 16 * 1024          # a 2,000-character note as JSON escapes is 12 KB
MAX_IDEMPOTENCY_KEY = 200
_S = CaseStatus
ACTIONS: dict[str, tuple[CaseStatus, tuple[CaseStatus, ...]]] = {   # action → (status it reports, allowed in)
    "accept": (_S.accepted, (_S.dispatched, _S.reopened)),
    "resolve": (_S.resolved, (_S.dispatched, _S.accepted, _S.reopened)),
    "return": (_S.returned, (_S.dispatched, _S.accepted)),
}


class DepartmentReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["accept", "resolve", "return"]
    resolution_mode: ResolutionMode | None = None
    note: str | None = Field(None, max_length=2000)
    photo_url: HttpUrl | None = None


def department_router(book: CaseBook, courier: Courier, keys: dict[str, str], per_key: RateLimiter,
                      ack_timeout: float, secret: bytes) -> APIRouter:
    router = APIRouter(prefix=PREFIX)

    @router.post("/cases/{case_id}/events", status_code=202)
    async def report(case_id: str, request: Request):
        key = request.headers.get("x-api-key")
        department = department_of(key, keys)
        if department is None:
            raise Open311Error(401, _unauthorised(key, keys))
        per_key.charge(key)
        body = await read_body(request, MAX_BODY)
        row, created, event = await anyio.to_thread.run_sync(
            _decide, case_id, department, body, request.headers.get("idempotency-key"))
        answer = {"event_id": row["event_id"], "case_id": case_id, "status": row["status"]}
        if row["sent"]:
            return JSONResponse(answer, status_code=200)
        if not created:   # resend what was kept, as it was first sent
            event = CaseEvent.model_validate_json(row["event"])
        why = await acknowledged(courier, event, created, ack_timeout)
        if why is None:
            return JSONResponse(answer, status_code=202)
        return error(503, f"event {event.event_id} is kept but not yet stored: {why}. It will be stored once, "
                          "under this id, when Kafka is back; send the same report again for its answer",
                     headers={"Retry-After": "10"}, event_id=event.event_id)

    def _decide(case_id: str, department: str, body: bytes, header: str | None):
        """The stored event this report is (a repeat's) or a new one: (row, whether new, the event if new)."""
        case = book.case(case_id)
        if case is None:
            raise Open311Error(404, f"case {case_id} is not known: it is not on the cases topic yet (a case just "
                                    "dispatched appears within seconds: try again), or it was closed and forgotten")
        if case["department"] != department:
            raise Open311Error(403, f"case {case_id} is {case['department']}'s, not {department}'s: report on it "
                                    f"with {case['department']}'s key, or have it dispatched again")
        wanted = _parse(body)
        if header is not None and not 0 < len(header) <= MAX_IDEMPOTENCY_KEY:
            raise Open311Error(400, f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
        sig = sign(secret, json.dumps([department, case_id, wanted.model_dump(mode="json", exclude_none=True)],
                                      ensure_ascii=False, sort_keys=True))
        ident = sign(secret, f"key\0{department}\0{header}") if header else \
            sign(secret, f"case\0{department}\0{case_id}\0{case['version']}\0{sig}")
        row = book.by_key(ident) or (None if header else book.produced(case["event_id"], sig))
        if row is None:
            event = _event(case_id, case["status"], department, wanted)
            row, created = book.register({
                "event_id": event.event_id, "idempotency_key": ident, "body_sig": sig, "case_id": case_id,
                "department": department, "status": event.status, "requested_at": datetime.now(TZ).isoformat(),
                "event": event.model_dump_json(exclude_none=True)})
            if created:
                return row, True, event
        if row["body_sig"] != sig:
            raise Open311Error(409, "this Idempotency-Key was already used for another report: send a new key for "
                                    "a new report, or the same body to repeat it")
        return row, False, None

    return router


def _unauthorised(key: str | None, keys: dict[str, str]) -> str:
    if not keys:
        return f"this intake has no department keys: set {SETTING} to a file of department → key"
    if not key:
        return "the X-API-Key header is missing: each department reports with its own key"
    return "X-API-Key is not a department's key: use the key the city issued to your department"


def _parse(body: bytes) -> DepartmentReport:
    try:
        wanted = DepartmentReport.model_validate_json(body)
    except ValidationError as e:
        first = e.errors(include_input=False)[0]   # never the input: a note may name someone
        where = ".".join(str(p) for p in first["loc"])
        if first["type"] == "json_invalid":
            raise Open311Error(400, f"the body is not valid JSON ({first['msg']})") from None
        if not where:
            raise Open311Error(400, 'the body must be a JSON object, e.g. {"action": "accept"}') from None
        if first["type"] == "extra_forbidden":
            raise Open311Error(400, f"{where} is not a field of a report: send action, resolution_mode, note and "
                                    "photo_url (the department is the key's)") from None
        raise Open311Error(400, f"{where}: {first['msg']}") from None
    modes = ", ".join(ResolutionMode)
    if wanted.action == "resolve" and wanted.resolution_mode is None:
        raise Open311Error(400, f"resolution_mode is required to resolve: one of {modes}")
    if wanted.action != "resolve" and wanted.resolution_mode is not None:
        raise Open311Error(400, f"resolution_mode is only for resolve, not {wanted.action}")
    return wanted


def _event(case_id: str, status: str, department: str, wanted: DepartmentReport) -> CaseEvent:
    reports, allowed = ACTIONS[wanted.action]
    if status not in allowed:
        names = [s.value for s in allowed]
        raise Open311Error(409, f"case {case_id} is {status} ({STATUS_NAMES.get(status, '?')}): {wanted.action} "
                                f"is allowed when it is {', '.join(names[:-1])} or {names[-1]}")
    now = datetime.now(TZ)
    raw = {"case_id": case_id, "status": reports.value, "system": SYSTEM, "occurred_at": now, "received_at": now,
           "department": department, "resolution_mode": wanted.resolution_mode, "note": wanted.note,
           "photo_url": str(wanted.photo_url) if wanted.photo_url else None}
    try:
        event = validate(CASE_EVENTS, {k: v for k, v in raw.items() if v is not None})
        encode(CASE_EVENTS, event)   # refuses what the topic would not take
    except InvalidEvent as e:
        raise Open311Error(400, str(e)) from None
    return event
