"""GeoReport v2 shapes: errors, services, receipts and requests as a reader sees them, with where their case is."""
from __future__ import annotations

import sqlite3

from fastapi.responses import JSONResponse

from cityops.models.tickets import CaseStatus
from cityops.pii import mask_text
from cityops.taxonomy import load_taxonomy
from producers.intake.privacy import public_address, rounded


_S = CaseStatus
STATUS_NAMES = {_S.created: "受理", _S.dispatched: "派单", _S.accepted: "签收", _S.returned: "退回", _S.resolved: "办结",
                _S.verified: "核查通过", _S.return_visit: "回访", _S.reopened: "重办", _S.closed: "结案"}
DONE = {_S.resolved, _S.verified, _S.return_visit, _S.closed}
LEVELS = {"grid": "网格", "community": "社区", "street": "街道", "district": "区县", "city": "市"}
_NOTES = {_S.created: "已受理", _S.returned: "已退回，重新派单中", _S.verified: "核查通过", _S.return_visit: "已回访",
          _S.closed: "已结案", _S.reopened: "重办中"}


class Open311Error(Exception):
    def __init__(self, code: int, description: str, headers: dict[str, str] | None = None, **extra: str):
        self.code, self.description, self.headers, self.extra = code, description, headers, extra


def error(code: int, description: str, headers: dict[str, str] | None = None, **extra: str) -> JSONResponse:
    return JSONResponse([{"code": code, "description": description, **extra}], status_code=code, headers=headers)


def services() -> list[dict]:
    return [{"service_code": c.code, "service_name": c.label, "description": f"{c.major} · {c.label}（{c.department}）",
             "metadata": False, "type": "realtime", "keywords": c.major, "group": c.major}
            for c in load_taxonomy().categories]


def receipt(request_id: str) -> dict:
    return {"service_request_id": request_id, "service_notice": "已受理，将由所在网格处置", "account_id": None}


def as_open311(row: sqlite3.Row, codes: dict, exact: bool, case: sqlite3.Row | None = None) -> dict:
    """A stored request for a reader, with its `case` (casebook.py) once the intake has seen it. Public: masked
    text and address, ~100 m. A read key (`exact`) adds the address and the place as given, which the departments
    sent there need; no view has the reporter's contact."""
    place = (row["lat"], row["lon"], row["address"]) if exact else \
        (rounded(row["lat"]), rounded(row["lon"]), public_address(row["address"]))
    return {"service_request_id": row["service_request_id"], "status": open_or_closed(case),
            "status_notes": status_notes(case),
            "service_name": codes.get(row["service_code"], {}).get("service_name", ""),
            "service_code": row["service_code"], "description": mask_text(row["description"]),
            "requested_datetime": row["requested_at"],
            "updated_datetime": case["occurred_at"] if case else row["requested_at"],
            "address": place[2] or "", "lat": place[0], "long": place[1], "media_url": row["media_url"] or ""}


def open_or_closed(case: sqlite3.Row | None) -> str:
    """Open311's two statuses: closed once the case is done (办结 and after), open before and when reopened."""
    return "closed" if case and case["status"] in DONE else "open"


def status_notes(case: sqlite3.Row | None) -> str:
    """What the reporter is told of the newest version of the case; a request whose case is not seen yet: 已受理."""
    if case is None:
        return _NOTES[_S.created]
    status, department = case["status"], case["department"]
    if status == _S.dispatched:
        return f"已派单至{department}（{LEVELS.get(case['tier'], case['tier'])}）"
    if status == _S.accepted:
        return f"{department}已签收"
    if status == _S.resolved:
        return f"已办结：{mask_text(case['note']) or case['resolution_mode'] or ''}".rstrip("：")
    return _NOTES.get(status, STATUS_NAMES.get(status, status))
