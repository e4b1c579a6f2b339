"""Bytes from a topic → its model, or a dead letter saying why not: the one rule for what is accepted, applied
by the streams worker to its sources and by the sink to what it stores (docs/streams.md, bad input)."""
from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ValidationError

from cityops.models.deadletters import DeadLetter
from cityops.topics import MAX_MESSAGE_BYTES

_TIME_FIELDS = {"occurred_at", "received_at"}
InCity = Callable[[float, float], bool]


def admit(model: type[BaseModel], payload: bytes | None, *, topic: str, partition: int, offset: int,
          key: bytes | None = None, in_city: InCity | None = None, limit: int = MAX_MESSAGE_BYTES
          ) -> BaseModel | DeadLetter:
    """`payload` as `model`, or its dead letter. `in_city`: where an event with coordinates may be; `limit`: the
    topic's largest message (`Topic.max_message_bytes`, a source event's by default)."""
    def dead(reason: str, detail: str) -> DeadLetter:
        return DeadLetter.of(topic, partition, offset, reason, detail, payload, key)

    if not payload:
        return dead("empty", "message has no value")
    if len(payload) > limit:
        return dead("oversize", f"{len(payload)} bytes, limit {limit}")
    try:
        event = model.model_validate_json(payload)
    except ValidationError as e:
        return dead(*reason_of(e, payload))
    if in_city is not None and (why := implausible_point(getattr(event, "lat", None), getattr(event, "lon", None),
                                                         in_city)):
        return dead("coordinates", why)
    return event


def reason_of(e: ValidationError, payload: bytes) -> tuple[str, str]:
    """(reason, detail) of a message the model refused; the detail names fields and rules, never values."""
    errors = e.errors(include_url=False, include_input=False)
    if errors[0]["type"] == "json_invalid":
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError as u:
            return "encoding", f"not UTF-8 at byte {u.start} (GBK? re-encode as UTF-8)"
        return "invalid_json", errors[0]["msg"]
    timed = any(err["loc"] and err["loc"][0] in _TIME_FIELDS and err["type"] != "missing" for err in errors)
    return "timestamp" if timed else "schema", describe(e)


def describe(e: ValidationError, most: int = 5) -> str:
    """What the model refused, as fields and rules: never the values, which may quote a citizen."""
    return "; ".join(f"{'.'.join(map(str, err['loc'])) or '(event)'}: {err['msg']}"
                     for err in e.errors(include_url=False, include_input=False)[:most])


def implausible_point(lat: float | None, lon: float | None, in_city: InCity) -> str | None:
    """Why coordinates cannot be right, or None. (0, 0) is a GPS fix that never happened."""
    if lat is None or lon is None:
        return None
    if abs(lat) < 1e-6 and abs(lon) < 1e-6:
        return "coordinates (0, 0): no GPS fix"
    if not in_city(lat, lon):
        return f"coordinates ({lat}, {lon}) are outside the city"
    return None
