"""`cityops demo`: the main job on the embedded default — broker, worker, sink, simulator, pager, live counts.

The demo process owns the embedded ClickHouse directory (only one process may open it), so the sink runs
here in a thread and the live view reads through the same client. A part that stops (a crash, a kill) is
started again after a backoff and the screen says so (cityops/stack/supervise.py); one that keeps crashing
right away is reported with its log's end and left down. Ctrl-C or SIGTERM stops everything it started.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cityops.settings import Settings, get_settings
from cityops.topics import SOURCE_TOPICS
from cityops.warehouse.schema import TABLES

out = Console()


def register(root: typer.Typer) -> None:
    @root.command()
    def demo(rate: int = typer.Option(200, help="simulated events per second"),
             seed: int = typer.Option(7, help="simulator seed"),
             refresh: float = typer.Option(2.0, help="seconds between screen updates")) -> None:
        """Run the whole pipeline locally and watch events arrive, until Ctrl-C."""
        from cityops.stack.process import Managed

        s = get_settings()
        with Managed("demo", s.data_dir / "run").held():
            run_demo(s, rate=rate, seed=seed, refresh=refresh)


def run_demo(s: Settings, *, rate: int, seed: int, refresh: float) -> None:
    from cityops.cli.cockpit import start_web
    from cityops.stack.cluster import Cluster
    from cityops.stack.supervise import Interrupts, Supervisor
    from cityops.warehouse import connect, migrate

    interrupts = Interrupts()
    interrupts.install()
    started = time.monotonic()
    # CITYOPS_KAFKA_BROKERS=3: the demo on a replicated cluster of its own (`cityops stack up --brokers 3`).
    broker = Cluster(s)
    ours = all(b.process.pid() is None for b in broker.brokers)
    logs = s.data_dir / "logs"
    supervisor: Supervisor | None = None
    web = None
    try:
        with out.status("starting Kafka (first start downloads its jars)…"):
            broker.up()
        with out.status("opening the warehouse…"):
            client = connect(s)
            migrate(client)
        web = start_web(s, client, say=lambda text: out.print(text, style="bold", markup=False, soft_wrap=True))
        _log_to(logs / "sink.log", {"cityops.sink": logging.INFO, "kafka": logging.WARNING})
        supervisor = Supervisor(parts(s, client, rate=rate, seed=seed), say, starting=interrupts.held)
        supervisor.start()
        where = ", ".join(f"{name} {at}" for name, at, _, _ in supervisor.status())
        out.print(f"[green]running[/]: Kafka {s.bootstrap_servers}, {where}, warehouse {s.warehouse_url}. "
                  f"Logs in {logs}. The pager records the simulated alerts and sends them nowhere. Ctrl-C stops.",
                  soft_wrap=True)
        view = DemoView(client, supervisor)
        # A log, not a terminal: Live would print once at the end; plain lines instead.
        screen = Live(view.render(), console=out, refresh_per_second=4, screen=False) if out.is_terminal \
            else nullcontext()
        with screen as live:
            shown = 0.0
            while True:
                supervisor.check()
                if time.monotonic() - shown >= refresh:
                    shown = time.monotonic()
                    if live:
                        live.update(view.render())
                    else:
                        out.print(view.lines(), markup=False, highlight=False, soft_wrap=True)
                    if view.flowing and started:
                        out.print(f"events flowing: the first stored in ClickHouse {time.monotonic() - started:.0f} s "
                                  "after the demo started")
                        started = 0.0
                time.sleep(0.2)
    except KeyboardInterrupt:
        out.print("stopping…")
    finally:
        interrupts.stopping()
        if web:
            web.stop()
        if supervisor:
            supervisor.stop()
        if ours:
            broker.down()
        out.print("stopped: no broker, worker, sink, producer or pager left running" if ours else
                  "stopped worker, sink, producer and pager (the broker was already running before the demo: left up)")


def parts(s: Settings, client, *, rate: int, seed: int) -> list:
    """What the demo runs and keeps running, in start order: worker, sink, simulator, pager."""
    from cityops.stack.supervise import Child, Inside
    from sinks.service import run as run_sink

    run_dir, logs = s.data_dir / "run", s.data_dir / "logs"
    cli = [sys.executable, "-m", "cityops"]

    def simulate(restarts: int) -> list[str]:
        # Simulated clock = wall clock (speed 1 from now): the cockpit's "today" and "last hour" fill live. A
        # restart goes on from now with another seed: the same seed would send the event ids it sent before.
        return [*cli, "produce", "simulate", "--rate", str(rate), "--duration", str(7 * 86400), "--speed", "1",
                "--start", datetime.now(timezone.utc).isoformat(), "--seed", str(seed + restarts)]

    # Simulated alerts must not page a real duty officer through webhooks set for the real pager.
    quiet = {k: v for k, v in os.environ.items() if k not in ("CITYOPS_PAGER_WEBHOOKS", "CITYOPS_PAGER_PORT")}
    return [Child("worker", lambda _: [*cli, "worker"], run_dir, logs / "worker.log"),
            Inside("sink", lambda stop: run_sink(s, stop, client=client), logs / "sink.log"),
            Child("producer", simulate, run_dir, logs / "producer.log"),
            Child("pager", lambda _: [*cli, "pager"], run_dir, logs / "pager.log", env=quiet)]


STYLES = {logging.INFO: "green", logging.WARNING: "yellow", logging.ERROR: "bold red"}


def say(level: int, text: str) -> None:
    out.print(text, style=STYLES.get(level), markup=False, highlight=False, soft_wrap=True)


def _log_to(path: Path, loggers: dict[str, int]) -> None:
    """The sink thread's messages (and its Kafka client's) into its own log, as the standalone sink writes
    them, instead of across the live view."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name, level in loggers.items():
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False


class DemoView:
    """The parts with their restarts, live counts of rows in each warehouse table with their rates, and the
    terminal cockpit below.

    Only the warehouse is read: a second Kafka client in this process can stall behind the sink's
    (kafka-python 3.0), and rows in ClickHouse are the proof that events went the whole way."""

    def __init__(self, client, supervisor):
        self.client, self.supervisor = client, supervisor
        self.last: dict[str, tuple[float, int]] = {}
        self.flowing = False  # source events stored already
        self.raw = {t.name for t in TABLES if t.topic in SOURCE_TOPICS}

    def _rate(self, name: str, n: int) -> str:
        now = time.monotonic()
        t0, n0 = self.last.get(name, (now, n))
        self.last[name] = (now, n)
        # Replacing tables shrink when they merge: a rate then says nothing about arrivals.
        return f"{(n - n0) / (now - t0):,.0f}/s" if now > t0 and n >= n0 else ""

    def counts(self) -> list[tuple[str, int]]:
        rows = self.client.query("SELECT name, total_rows FROM system.tables WHERE database = currentDatabase() "
                                 "AND engine LIKE '%MergeTree' AND name NOT LIKE '.inner%' ORDER BY name").result_rows
        self.flowing = any(n for name, n in rows if name in self.raw)
        return [(name, n or 0) for name, n in rows]

    def lines(self) -> str:
        """Rows and parts as two plain lines ("rows: table=n …", "parts: worker pid 1 running (0 restarts); …")."""
        parts = "; ".join(f"{name} {at} {state} ({n} restart{'' if n == 1 else 's'})"
                          for name, at, state, n in self.supervisor.status())
        return "rows: " + " ".join(f"{name}={n}" for name, n in self.counts()) + "\nparts: " + parts

    def render(self):
        from dashboards import cockpit

        running = Table("part", "where", "state", "restarts", box=None)
        for name, at, state, n in self.supervisor.status():
            style = {"running": None, "gave up": "bold red"}.get(state, "yellow")
            running.add_row(name, at, Text(state, style=style), str(n))
        rows = self.counts()
        half = (len(rows) + 1) // 2
        counts = Table.grid(padding=(0, 4))
        tables = []
        for part in (rows[:half], rows[half:]):
            t = Table("ClickHouse table", "rows", "rate", box=None)
            for name, n in part:
                t.add_row(name, f"{n:,}", self._rate(name, n))
            tables.append(t)
        counts.add_row(running, *tables)
        return Group(counts, cockpit.render(self.client))
