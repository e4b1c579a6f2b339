"""Source: citizen app reports → case candidates, minute counts (or dead letters)."""
from __future__ import annotations

from cityops.topics import APP_REPORTS
from streams.runtime import source

source(APP_REPORTS.name, lambda run: run.app)
