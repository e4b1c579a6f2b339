"""GeoReport v2 shapes: errors, services, receipts and requests as a reader sees them."""
from __future__ import annotations

import sqlite3

from fastapi.responses import JSONResponse

from cityops.pii import mask_text
from cityops.taxonomy import load_taxonomy
from producers.intake.privacy import public_address, rounded


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


def as_open311(row: sqlite3.Row, codes: dict, exact: bool) -> dict:
    """A stored request for a reader. Public: masked text and address, ~100 m. A read key (`exact`) adds the
    address and the place as given, which the departments sent there need; no view has the reporter's contact."""
    place = (row["lat"], row["lon"], row["address"]) if exact else \
        (rounded(row["lat"]), rounded(row["lon"]), public_address(row["address"]))
    return {"service_request_id": row["service_request_id"], "status": "open",
            "service_name": codes.get(row["service_code"], {}).get("service_name", ""),
            "service_code": row["service_code"], "description": mask_text(row["description"]),
            "requested_datetime": row["requested_at"], "updated_datetime": row["requested_at"],
            "address": place[2] or "", "lat": place[0], "long": place[1], "media_url": row["media_url"] or ""}
