"""Raw input → validated model → bytes on the wire (UTF-8 JSON any Kafka client can read)."""
from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from cityops.models import Source
from cityops.topics import APP_REPORTS, HOTLINE_TICKETS, SENSOR_EVENTS, Topic, by_name
from producers.errors import InvalidEvent

TOPIC_OF_SOURCE: dict[str, Topic] = {Source.hotline: HOTLINE_TICKETS, Source.sensor: SENSOR_EVENTS,
                                     Source.app: APP_REPORTS}


def encode(topic: Topic, event: BaseModel) -> tuple[bytes | None, bytes]:
    """(key, value). Serialised by pydantic-core (no dict round trip); None fields left out."""
    return topic.key_of(event), event.__pydantic_serializer__.to_json(event, exclude_none=True)


def topic_for(raw: dict[str, Any], topic: str | None = None) -> Topic:
    if topic:
        return by_name(topic)
    src = raw.get("source")
    if src not in TOPIC_OF_SOURCE:
        raise InvalidEvent("source", f"must be one of {', '.join(TOPIC_OF_SOURCE)} (or give --topic), got {src!r}")
    return TOPIC_OF_SOURCE[src]


def validate(topic: Topic, raw: dict[str, Any], where: str = "") -> BaseModel:
    try:
        return topic.value.model_validate(raw)
    except ValidationError as e:
        raise InvalidEvent.of(e, where) from None


def decode_json(line: bytes | str, where: str = "") -> dict[str, Any]:
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise InvalidEvent("(line)", f"not valid JSON: {e}", where) from None
    if not isinstance(raw, dict):
        raise InvalidEvent("(line)", f"expected a JSON object, got {type(raw).__name__}", where)
    return raw
