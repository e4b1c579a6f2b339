"""`cityops demo`: the main job on the embedded default (filled in by the foundation)."""
from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    pass
