"""Bounds on what one client can make the intake do: the body it reads, the JSON it parses, how often."""
from __future__ import annotations

import json
import math
import threading
import time
from urllib.parse import parse_qsl

from starlette.requests import Request

from producers.intake.open311 import Open311Error

MAX_BODY = 64 * 1024   # 4,000 Chinese characters form-encoded take ~36 KB
MAX_FIELDS = 100


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The body, refused as soon as it passes `limit` bytes: a chunked body has no length to check first."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise Open311Error(400, f"request body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Open311Error(400, f"request body is larger than {limit} bytes")
    return bytes(body)


def parse_fields(body: bytes, content_type: str) -> dict[str, str]:
    """A form-encoded body, or a JSON object of text and numbers (one level: Open311 fields are flat)."""
    try:
        if "json" not in content_type:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=False, max_num_fields=MAX_FIELDS)
            return dict(pairs)
        try:
            doc = json.loads(body or b"{}")
        except RecursionError:   # json's C scanner stops at the interpreter's recursion limit (~1,000)
            raise Open311Error(400, "request body cannot be read: JSON nested too deeply; send one flat "
                                    "object of fields") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise Open311Error(400, f"request body cannot be read: {e}") from None
    if not isinstance(doc, dict):
        raise Open311Error(400, "request body cannot be read: expected a JSON object of fields")
    if len(doc) > MAX_FIELDS:
        raise Open311Error(400, f"request body has more than {MAX_FIELDS} fields")
    for name, value in doc.items():
        if isinstance(value, (dict, list)):
            raise Open311Error(400, f"{name[:40]} must be text or a number, not a JSON {type(value).__name__}")
    return {k: str(v) for k, v in doc.items() if v is not None}


class RateLimiter:
    """A token bucket per name: `per_minute` requests a minute, in bursts of up to that many."""

    MAX_NAMES = 100_000

    def __init__(self, per_minute: int, what: str):
        self.capacity, self.per_second, self.what = float(per_minute), per_minute / 60.0, what
        self._buckets: dict[str, tuple[float, float]] = {}   # name -> (tokens, when counted)
        self._lock = threading.Lock()

    def charge(self, name: str) -> None:
        """Take one request from `name`'s bucket; 429 with Retry-After when it is empty."""
        with self._lock:
            now = time.monotonic()
            if len(self._buckets) > self.MAX_NAMES:
                self._drop_full(now)
            tokens, at = self._buckets.get(name, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.per_second)
            if tokens >= 1:
                self._buckets[name] = (tokens - 1, now)
                return
            self._buckets[name] = (tokens, now)
            wait = math.ceil((1 - tokens) / self.per_second)
        raise Open311Error(429, f"too many requests {self.what} (at most {int(self.capacity)} a minute): "
                                f"try again in {wait} s", headers={"Retry-After": str(wait)})

    def _drop_full(self, now: float) -> None:
        """Forget names whose bucket has refilled: they are where a new name would start."""
        full = [n for n, (t, at) in self._buckets.items() if t + (now - at) * self.per_second >= self.capacity]
        for n in full:
            del self._buckets[n]
