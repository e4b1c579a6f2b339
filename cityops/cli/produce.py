"""`cityops produce simulate|replay`: realistic or recorded events onto the source topics."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cityops.errors import UserError

out = Console()


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="Produce events: a simulated city, or a recorded file replayed.", no_args_is_help=True)

    @app.command()
    def simulate(rate: float = typer.Option(500.0, min=1, help="events per wall-clock second"),
                 duration: float = typer.Option(60.0, min=0.1, help="seconds to run"),
                 seed: int = typer.Option(0, help="same seed and start: same events"),
                 speed: float = typer.Option(600.0, min=1, help="simulated seconds per wall second"),
                 start: datetime | None = typer.Option(None, help="simulated clock's start, ISO with zone "
                                                       "(default: duration×speed before now, so it ends now)")) -> None:
        """Send a simulated city's hotline, sensor and app events at --rate for --duration."""
        from producers.simulator import TZ, Simulator

        if start is not None and start.tzinfo is None:
            raise UserError("--start needs a time zone, e.g. 2026-07-01T08:00:00+08:00")
        begin = start or datetime.now(TZ) - timedelta(seconds=duration * speed)
        sim = Simulator(seed=seed, start=begin, density=rate / speed)
        _run(sim, rate=rate, duration=duration, label=f"simulating from {sim.start:%Y-%m-%d %H:%M} (+08:00)")

    @app.command()
    def replay(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL or CSV of events"),
               speed: float = typer.Option(1.0, min=0.0001, help="times faster than recorded"),
               as_fast_as_possible: bool = typer.Option(False, "--as-fast-as-possible", help="ignore the recorded pace"),
               topic: str | None = typer.Option(None, help="topic for every line (default: from each event's source)")) -> None:
        """Validate every line; send the valid ones; report bad lines (line, field, reason); exit 1 if any."""
        from producers import replay as rp

        bad: list[rp.BadLine] = []
        events = rp.read(file, topic, bad)
        if not as_fast_as_possible:
            events = rp.paced(events, speed)
        _run(events, label=f"replaying {file.name}")
        for b in bad[:100]:
            out.print(f"[red]{file}: {b}[/]", highlight=False, soft_wrap=True)
        if bad:
            out.print(f"[red]{len(bad)} bad line(s) not sent[/]")
            raise typer.Exit(1)

    root.add_typer(app, name="produce")


def _run(events, rate: float | None = None, duration: float | None = None, label: str = "") -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from producers.pump import pump
    from producers.publisher import Publisher

    from kafka.errors import KafkaError

    try:
        sink = Publisher()
    except KafkaError as e:
        raise UserError(f"cannot reach Kafka ({type(e).__name__}: {e}): run `cityops stack up` "
                        "or set CITYOPS_BOOTSTRAP_SERVERS") from None
    cols = [TextColumn(label), BarColumn() if duration else TextColumn(""),
            TextColumn("{task.completed:>10,.0f} events  {task.fields[rate]:>8,.0f}/s"), TimeElapsedColumn()]
    try:
        with Progress(*cols, console=out, transient=False) as bar:
            task = bar.add_task(label, total=duration, rate=0.0)

            def progress(n: int, elapsed: float) -> None:
                bar.update(task, completed=elapsed if duration else n, rate=n / elapsed if elapsed else 0.0)
            s = pump(events, sink, rate=rate, duration=duration, progress=progress)
            bar.update(task, completed=duration if duration else s.total)
    finally:
        sink.close()
    t = Table("topic", "events", title="sent")
    for name, n in sorted(s.counts.items()):
        t.add_row(name, f"{n:,}")
    t.add_row("[bold]total", f"[bold]{s.total:,}")
    out.print(t)
    out.print(f"{s.total:,} events in {s.elapsed:.1f} s = [bold]{s.rate:,.0f} events/s[/]"
              + (f" (target {rate:,.0f}/s)" if rate else "")
              + f"; producer CPU {s.cpu_user + s.cpu_sys:.1f} s ({s.cpu_share:.0%} of one core)")
    if s.failed:
        raise UserError(f"{s.failed} event(s) were not acknowledged by Kafka: {s.last_error}")
