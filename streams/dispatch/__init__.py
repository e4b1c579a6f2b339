"""Dispatch: tier and department from the taxonomy, raised by severity; due time on the working calendar."""
from streams.dispatch.calendar import due_at, working_minutes_between
from streams.dispatch.rules import dispatch_tier

__all__ = ["dispatch_tier", "due_at", "working_minutes_between"]
