"""Validation failures as one line a person can act on: where, which field, why."""
from __future__ import annotations

from pydantic import ValidationError


class InvalidEvent(ValueError):
    """An event that must not be sent. `field` and `reason` name the first problem."""

    def __init__(self, field: str, reason: str, where: str = ""):
        self.field, self.reason, self.where = field, reason, where
        super().__init__(f"{where + ': ' if where else ''}{field}: {reason}")

    @classmethod
    def of(cls, e: ValidationError, where: str = "") -> InvalidEvent:
        first = e.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "(event)"
        reason = first["msg"].removeprefix("Value error, ")
        more = len(e.errors()) - 1
        return cls(field, reason + (f" (+{more} more)" if more else ""), where)


class SendFailed(RuntimeError):
    """Kafka did not acknowledge a send."""
