"""Hotline tickets: validate and route lifecycle events; new tickets become case candidates."""
