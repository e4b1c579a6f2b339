"""Source: sensor readings and device alerts → incidents, cases, minute counts (or dead letters)."""
from __future__ import annotations

from cityops.topics import SENSOR_EVENTS
from streams.runtime import source

source(SENSOR_EVENTS.name, lambda run: run.sensor)
