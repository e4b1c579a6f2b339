"""Raw input → validated model → bytes on the wire (UTF-8 JSON any Kafka client can read)."""
from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from cityops.models import Source
from cityops.topics import APP_REPORTS, CASE_EVENTS, HOTLINE_TICKETS, MAX_MESSAGE_BYTES, SENSOR_EVENTS, Topic, by_name
from producers.errors import InvalidEvent

TOPIC_OF_SOURCE: dict[str, Topic] = {Source.hotline: HOTLINE_TICKETS, Source.sensor: SENSOR_EVENTS,
                                     Source.app: APP_REPORTS}


def encode(topic: Topic, event: BaseModel) -> tuple[bytes | None, bytes]:
    """(key, value). Serialised by pydantic-core (no dict round trip); None fields left out."""
    value = event.__pydantic_serializer__.to_json(event, exclude_none=True)
    check_size(topic, value)
    return topic.key_of(event), value


def check_size(topic: Topic, value: bytes) -> None:
    """Refuse what the topic's readers would refuse (cityops/topics.py): a clear error, not a broker's."""
    if len(value) > topic.max_message_bytes:
        raise InvalidEvent("(message)", f"{len(value):,} bytes, larger than the {topic.max_message_bytes:,} bytes "
                                        f"{topic.name} accepts: shorten its text or send the photo as a URL")


def topic_for(raw: dict[str, Any], topic: str | None = None) -> Topic:
    if topic:
        return by_name(topic)
    src = raw.get("source")
    if src is None and "case_id" in raw:   # a case's status event: from a case-handling system, not a source
        return CASE_EVENTS
    if src not in TOPIC_OF_SOURCE:
        raise InvalidEvent("source", f"must be one of {', '.join(TOPIC_OF_SOURCE)}, or a case event with a case_id "
                                     f"(or give --topic), got {src!r}")
    return TOPIC_OF_SOURCE[src]


def validate(topic: Topic, raw: dict[str, Any], where: str = "") -> BaseModel:
    try:
        return topic.value.model_validate(raw)
    except ValidationError as e:
        raise InvalidEvent.of(e, where) from None


def decode_json(line: bytes | str, where: str = "") -> dict[str, Any]:
    if len(line) > MAX_MESSAGE_BYTES:
        raise InvalidEvent("(line)", f"{len(line):,} bytes, larger than the {MAX_MESSAGE_BYTES:,} bytes an event may "
                                     "be", where)
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise InvalidEvent("(line)", f"not valid JSON: {e}", where) from None
    if not isinstance(raw, dict):
        raise InvalidEvent("(line)", f"expected a JSON object, got {type(raw).__name__}", where)
    return raw
