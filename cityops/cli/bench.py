"""`cityops bench …`: measured figures, printed and written under docs/. One subcommand per measured part;
each imports its `bench/<name>.py` lazily so `cityops --help` stays fast."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

out = Console()
app = typer.Typer(help="Benchmarks: measure throughput and write the figures to docs/benchmarks-*.md.",
                  no_args_is_help=True)


@app.command("classify")
def classify(
    repeat: int = typer.Option(50, min=1, help="how many times the labelled set (~420 complaints) is repeated"),
    out_path: Path = typer.Option(Path("docs/benchmarks-classify.md"), "--out", help="Markdown file the figures are appended to"),
    write: bool = typer.Option(True, "--write/--no-write", help="append the figures to --out"),
) -> None:
    """Complaint classifier throughput: in process and through `cityops classify` (one core)."""
    from bench.classify import append, report

    with out.status("classifying…"):
        _, md = report(repeat)
    out.print(md, markup=False, highlight=False)
    if write:
        append(out_path, md)
        out.print(f"appended to {out_path}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="bench")
