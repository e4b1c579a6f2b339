"""What the streams could not accept: the reason, where it came from, and a masked copy of what it said.

The original bytes stay on their source topic for its retention (`CITYOPS_SOURCE_RETENTION_HOURS`), found by
topic, partition and offset and checked by the sha256: a dead letter itself never carries personal data or an
unbounded payload, so it can always be sent, stored and shown."""
from __future__ import annotations

import base64
import hashlib
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from cityops.models.envelope import utcnow
from cityops.pii import mask_payload, mask_text

# What a dead letter keeps of a message: enough to see what is wrong with it, far below every topic's limit.
EXCERPT_BYTES = 16 * 1024
KEY_EXCERPT_BYTES = 256
DETAIL_CHARS = 2000


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str
    partition: int
    offset: int
    reason: str = Field(description="machine-readable class, e.g. invalid_json, schema, encoding, oversize")
    detail: str = Field(description="what is wrong, for a person: field and message (masked)")
    payload_b64: str = Field(description="the message as masked UTF-8 text, at most 16 KiB, base64; empty when "
                                         "its bytes are not text")
    payload_size: int = Field(0, ge=0, description="bytes of the original message")
    payload_sha256: str = Field("", description="sha256 of the original message, hex")
    payload_encoding: str = Field("", description="how its bytes were read: utf-8, gb18030, utf-16-le, "
                                                  "…-lenient (broken bytes replaced) or undecodable")
    key_b64: str = Field("", description="the message key as masked UTF-8 text, base64")
    failed_at: datetime = Field(default_factory=utcnow)

    @classmethod
    def of(cls, topic: str, partition: int, offset: int, reason: str, detail: str,
           payload: bytes | None, key: bytes | None = None) -> DeadLetter:
        payload = payload or b""
        text, encoding = mask_payload(payload, EXCERPT_BYTES) if payload else ("", "")
        key_text = mask_payload(key, KEY_EXCERPT_BYTES)[0] if key else ""
        return cls(topic=topic, partition=partition, offset=offset, reason=reason,
                   detail=mask_text(detail[:DETAIL_CHARS]), payload_b64=_b64(text, EXCERPT_BYTES),
                   payload_size=len(payload), payload_sha256=hashlib.sha256(payload).hexdigest() if payload else "",
                   payload_encoding=encoding, key_b64=_b64(key_text, KEY_EXCERPT_BYTES))

    @property
    def excerpt(self) -> str:
        return base64.b64decode(self.payload_b64).decode()


def _b64(text: str | None, limit: int) -> str:
    """UTF-8 of `text` cut to `limit` bytes on a character boundary, base64."""
    data = (text or "").encode()[:limit]
    return base64.b64encode(data.decode(errors="ignore").encode()).decode()
