"""Decode raw messages into models; anything that fails becomes a DeadLetter with the reason."""
from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from cityops.models.deadletters import DeadLetter

M = TypeVar("M", bound=BaseModel)
MAX_BYTES = 64 * 1024


def decode(model: type[M], payload: bytes | None, *, topic: str, partition: int, offset: int,
           key: bytes | None = None) -> M | DeadLetter:
    def dead(reason: str, detail: str) -> DeadLetter:
        return DeadLetter.of(topic, partition, offset, reason, detail, payload, key)

    if not payload:
        return dead("empty", "message has no value")
    if len(payload) > MAX_BYTES:
        return dead("oversize", f"{len(payload)} bytes, limit {MAX_BYTES}")
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as e:
        return dead("encoding", f"not UTF-8 at byte {e.start} (GBK? re-encode as UTF-8)")
    try:
        return model.model_validate_json(payload)
    except ValidationError as e:
        first = e.errors()[0]
        if first["type"] == "json_invalid":
            return dead("invalid_json", first["msg"])
        return dead("schema", "; ".join(f"{'.'.join(map(str, err['loc'])) or '(event)'}: {err['msg']}"
                                        for err in e.errors()[:5]))
