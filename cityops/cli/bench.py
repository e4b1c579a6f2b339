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


@app.command("sink")
def sink(
    messages: int = typer.Option(400_000, min=1000, help="messages through the sink path"),
    batch_rows: int = typer.Option(50_000, min=100),
    out_path: Path = typer.Option(Path("docs/benchmarks-sink.md"), "--out"),
    write: bool = typer.Option(True, "--write/--no-write"),
) -> None:
    """Sink path throughput: message bytes → validated, masked rows → embedded ClickHouse (fresh temp dir)."""
    from bench.sink import append, sink as run

    with out.status("sinking…"):
        md = run(messages, batch_rows)
    out.print(md, markup=False, highlight=False)
    if write:
        append(out_path, md)
        out.print(f"appended to {out_path}")


@app.command("queries")
def queries(
    events: int = typer.Option(10_000_000, min=10_000, help="raw events generated inside ClickHouse"),
    repeat: int = typer.Option(10, min=1),
    out_path: Path = typer.Option(Path("docs/benchmarks-sink.md"), "--out"),
    write: bool = typer.Option(True, "--write/--no-write"),
) -> None:
    """Cockpit query latency (median) over generated events in a fresh embedded warehouse (temp dir)."""
    from bench.sink import append, queries as run

    with out.status(f"generating {events:,} events and timing the cockpit queries…"):
        md = run(events, repeat)
    out.print(md, markup=False, highlight=False)
    if write:
        append(out_path, md)
        out.print(f"appended to {out_path}")


@app.command("panels")
def panels(
    events: int = typer.Option(10_000_000, min=10_000, help="raw events generated inside ClickHouse"),
    repeat: int = typer.Option(10, min=1, help="timed runs per query (median reported)"),
    out_path: Path = typer.Option(Path("docs/dashboards.md"), "--out", help="figures replace the previous ones here"),
    write: bool = typer.Option(True, "--write/--no-write"),
) -> None:
    """Every cockpit panel's and alert rule's query: median latency over generated events (fresh temp dir)."""
    from bench.panels import report, write as save

    with out.status("benchmarking the cockpit panels…") as status:
        md = report(events, repeat, progress=lambda msg: status.update(msg))
    out.print(md, markup=False, highlight=False)
    if write:
        save(out_path, md)
        out.print(f"figures written to {out_path}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="bench")
