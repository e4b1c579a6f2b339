"""Hotline tickets: validate lifecycle events and keep each case's state."""
