"""Source: hotline tickets → case candidates (created) or case commands (lifecycle), minute counts (or dead letters)."""
from __future__ import annotations

from cityops.topics import HOTLINE_TICKETS
from streams.runtime import source

source(HOTLINE_TICKETS.name, lambda run: run.hotline)
