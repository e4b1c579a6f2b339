"""`cityops bench …`: measured figures, printed and written under docs/. One subcommand per measured part;
each imports its `bench/<name>.py` lazily so `cityops --help` stays fast."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

out = Console()
app = typer.Typer(help="Benchmarks: measure throughput and write the figures to docs/benchmarks-*.md.",
                  no_args_is_help=True)


def _show(status: str, measure, write: bool, save, out_path: Path, said: str = "appended to") -> None:
    """Run one benchmark under a spinner, print its Markdown, and save it to `out_path` unless --no-write."""
    with out.status(status) as spinner:
        md = measure(spinner)
    out.print(md, markup=False, highlight=False)
    if write:
        save(out_path, md)
        out.print(f"{said} {out_path}")


@app.command("classify")
def classify(
    repeat: int = typer.Option(50, min=1, help="how many times the labelled complaints under tests/data (~2,100) are repeated"),
    out_path: Path = typer.Option(Path("docs/benchmarks-classify.md"), "--out", help="Markdown file the figures are appended to"),
    write: bool = typer.Option(True, "--write/--no-write", help="append the figures to --out"),
) -> None:
    """Complaint classifier throughput: in process and through `cityops classify` (one core)."""
    from bench.classify import append, report

    _show("classifying…", lambda _: report(repeat)[1], write, append, out_path)


@app.command("sink")
def sink(
    messages: int = typer.Option(400_000, min=1000, help="messages through the sink path"),
    batch_rows: int = typer.Option(50_000, min=100),
    out_path: Path = typer.Option(Path("docs/benchmarks-sink.md"), "--out"),
    write: bool = typer.Option(True, "--write/--no-write"),
) -> None:
    """Sink path throughput: message bytes → validated, masked rows → embedded ClickHouse (fresh temp dir)."""
    from bench.sink import append, sink as run

    _show("sinking…", lambda _: run(messages, batch_rows), write, append, out_path)


@app.command("queries")
def queries(
    events: int = typer.Option(10_000_000, min=10_000, help="raw events generated inside ClickHouse"),
    repeat: int = typer.Option(10, min=1),
    out_path: Path = typer.Option(Path("docs/benchmarks-sink.md"), "--out"),
    write: bool = typer.Option(True, "--write/--no-write"),
) -> None:
    """Cockpit query latency (median) over generated events in a fresh embedded warehouse (temp dir)."""
    from bench.sink import append, queries as run

    _show(f"generating {events:,} events and timing the cockpit queries…", lambda _: run(events, repeat), write,
          append, out_path)


@app.command("panels")
def panels(
    events: int = typer.Option(10_000_000, min=10_000, help="raw events generated inside ClickHouse"),
    repeat: int = typer.Option(10, min=1, help="timed runs per query (median reported)"),
    out_path: Path = typer.Option(Path("docs/dashboards.md"), "--out", help="figures replace the previous ones here"),
    write: bool = typer.Option(True, "--write/--no-write"),
) -> None:
    """Every cockpit panel's and alert rule's query: median latency over generated events (fresh temp dir)."""
    from bench.panels import report, write as save

    _show("benchmarking the cockpit panels…", lambda spinner: report(events, repeat, progress=spinner.update),
          write, save, out_path, "figures written to")


@app.command("e2e")
def e2e(
    quick: bool = typer.Option(False, "--quick", help="small N (about a minute): a smoke run, not a measurement"),
    events: int = typer.Option(0, min=0, help="events per drain (0: 100,000, or 6,000 with --quick)"),
    latency_seconds: float = typer.Option(0, min=0, help="paced latency run length (0: 60 s, 8 s with --quick)"),
    two_workers: bool = typer.Option(True, "--two-workers/--one-worker", help="also drain with 2 workers"),
    brokers: int = typer.Option(1, min=1, max=9, help="Kafka brokers of the bench's own stack (3: replication "
                                "factor 3, two in sync)"),
    as_json: bool = typer.Option(False, "--json", help="print the figures as JSON (nothing else on stdout)"),
    write: bool = typer.Option(True, "--write/--no-write", help="write docs/benchmarks.md and docs/benchmarks.png"),
    docs: Path = typer.Option(Path("docs"), help="where benchmarks.md/.png go"),
) -> None:
    """Whole pipeline on a stack of its own: throughput, latency to queryable and to alert, memory, baseline, scaling."""
    import sys

    from bench.e2e import run
    from bench.e2e_report import markdown
    from bench.e2e_report import write as write_docs
    from bench.e2e_result import to_json

    err = Console(stderr=True)
    r = run(quick=quick, events=events or None, latency_s=latency_seconds or None, two_workers=two_workers,
            brokers=brokers, progress=lambda m: err.print(m, highlight=False))
    command = "cityops bench e2e" + "".join(f" {a}" for a in sys.argv[3:])
    if write:
        write_docs(r, command, docs / "benchmarks.md", docs / "benchmarks.png")
        err.print(f"wrote {docs / 'benchmarks.md'} and {docs / 'benchmarks.png'}")
    if as_json:
        print(to_json(r))
    else:
        out.print(markdown(r, command), markup=False, highlight=False)


@app.command("all")
def run_all(quick: bool = typer.Option(False, "--quick", help="pass --quick to the benchmarks that have it")) -> None:
    """Every benchmark in turn, each in its own process (the end-to-end one last)."""
    import subprocess
    import sys

    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    order = [n for n in names if n not in ("all", "e2e")] + ["e2e"]
    failed = []
    for name in order:
        out.print(f"[bold]cityops bench {name}[/]")
        argv = [sys.executable, "-m", "cityops", "bench", name] + (["--quick"] if quick and name == "e2e" else [])
        if subprocess.run(argv).returncode:
            failed.append(name)
    if failed:
        from cityops.errors import UserError

        raise UserError(f"benchmarks failed: {', '.join(failed)} (see their output above)")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="bench")


@app.command("streams")
def streams(
    events: int = typer.Option(200_000, min=1000, help="simulator events pre-loaded onto the source topics"),
    out_path: Path = typer.Option(Path("docs/benchmarks-streams.md"), "--out"),
    write: bool = typer.Option(True, "--write/--no-write"),
) -> None:
    """One streams worker draining pre-loaded simulator events (its own temporary broker on free ports)."""
    from bench.streams import append, run

    _show(f"pre-loading {events:,} events and timing one worker…", lambda _: run(events), write, append, out_path)
