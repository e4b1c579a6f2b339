"""What the streams could not accept: kept with the original bytes, the reason and where it came from."""
from __future__ import annotations

import base64
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from cityops.models.envelope import utcnow


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str
    partition: int
    offset: int
    reason: str = Field(description="machine-readable class, e.g. invalid_json, schema, encoding, oversize")
    detail: str = Field(description="what is wrong, for a person: field and message")
    payload_b64: str = Field(description="the original message bytes, base64")
    key_b64: str = ""
    failed_at: datetime = Field(default_factory=utcnow)

    @classmethod
    def of(cls, topic: str, partition: int, offset: int, reason: str, detail: str,
           payload: bytes | None, key: bytes | None = None) -> DeadLetter:
        return cls(topic=topic, partition=partition, offset=offset, reason=reason, detail=detail[:2000],
                   payload_b64=base64.b64encode(payload or b"").decode(),
                   key_b64=base64.b64encode(key or b"").decode())

    @property
    def payload(self) -> bytes:
        return base64.b64decode(self.payload_b64)
