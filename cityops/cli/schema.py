"""`cityops schema export DIR`: one JSON Schema per topic, derived from the topic catalogue."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

out = Console()


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="JSON Schemas of the topics (for any Kafka client).", no_args_is_help=True)

    @app.command()
    def export(directory: Path = typer.Argument(..., file_okay=False, help="where to write <topic>.schema.json")) -> None:
        """Write <topic>.schema.json for every topic in the catalogue."""
        from producers.schema import export as write

        for p in write(directory):
            out.print(f"wrote {p}")

    root.add_typer(app, name="schema")
