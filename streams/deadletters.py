"""Decode raw messages into models; anything that fails becomes a DeadLetter with the reason."""
from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from cityops.models.deadletters import DeadLetter
from cityops.topics import MAX_MESSAGE_BYTES as MAX_BYTES  # declared once, shared with the sink

M = TypeVar("M", bound=BaseModel)
_TIME_FIELDS = {"occurred_at", "received_at"}


def decode(model: type[M], payload: bytes | None, *, topic: str, partition: int, offset: int,
           key: bytes | None = None) -> M | DeadLetter:
    def dead(reason: str, detail: str) -> DeadLetter:
        return DeadLetter.of(topic, partition, offset, reason, detail, payload, key)

    if not payload:
        return dead("empty", "message has no value")
    if len(payload) > MAX_BYTES:
        return dead("oversize", f"{len(payload)} bytes, limit {MAX_BYTES}")
    try:
        return model.model_validate_json(payload)
    except ValidationError as e:
        first = e.errors()[0]
        if first["type"] == "json_invalid":
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError as u:
                return dead("encoding", f"not UTF-8 at byte {u.start} (GBK? re-encode as UTF-8)")
            return dead("invalid_json", first["msg"])
        if any(err["loc"] and err["loc"][0] in _TIME_FIELDS and err["type"] != "missing" for err in e.errors()):
            reason = "timestamp"
        else:
            reason = "schema"
        return dead(reason, "; ".join(f"{'.'.join(map(str, err['loc'])) or '(event)'}: {err['msg']}"
                                      for err in e.errors()[:5]))


def implausible_point(lat: float | None, lon: float | None, in_city) -> str | None:
    """Why coordinates cannot be right, or None. (0, 0) is a GPS fix that never happened."""
    if lat is None or lon is None:
        return None
    if abs(lat) < 1e-6 and abs(lon) < 1e-6:
        return "coordinates (0, 0): no GPS fix"
    if not in_city(lat, lon):
        return f"coordinates ({lat}, {lon}) are outside the city"
    return None
