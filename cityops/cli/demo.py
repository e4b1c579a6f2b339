"""`cityops demo`: the main job on the embedded default — broker, worker, sink, simulator, live counts.

The demo process owns the embedded ClickHouse directory (only one process may open it), so the sink runs
here in a thread and the live view reads through the same client. Ctrl-C stops everything it started.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from datetime import datetime, timezone

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from cityops.cli.errors import UserError
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
    from cityops.stack.kafka import Broker
    from cityops.stack.process import Managed
    from cityops.warehouse import connect, migrate
    from sinks.service import run as run_sink

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    started = time.monotonic()
    broker = Broker(s)
    ours = broker.process.pid() is None
    run_dir, logs = s.data_dir / "run", s.data_dir / "logs"
    worker, producer = Managed("worker", run_dir), Managed("producer", run_dir)
    stop = threading.Event()
    sink_thread: threading.Thread | None = None
    cli = [sys.executable, "-m", "cityops"]
    try:
        with out.status("starting Kafka (first start downloads its jars)…"):
            broker.up()
        with out.status("opening the warehouse…"):
            client = connect(s)
            migrate(client)
        worker.start([*cli, "worker"], logs / "worker.log")
        sink_thread = threading.Thread(target=run_sink, args=(s, stop), kwargs={"client": client},
                                       name="sink", daemon=True)
        sink_thread.start()
        # Simulated clock = wall clock (speed 1 from now): the cockpit's "today" and "last hour" fill live.
        producer.start([*cli, "produce", "simulate", "--rate", str(rate), "--duration", str(7 * 86400),
                        "--speed", "1", "--start", datetime.now(timezone.utc).isoformat(), "--seed", str(seed)],
                       logs / "producer.log")
        out.print(f"[green]running[/]: Kafka {s.bootstrap_servers}, worker pid {worker.pid()}, "
                  f"producer pid {producer.pid()}, warehouse {s.warehouse_url}. Logs in {logs}. Ctrl-C stops.")
        view = DemoView(client)
        with Live(view.render(), console=out, refresh_per_second=4, screen=False) as live:
            while True:
                time.sleep(refresh)
                for p, name in ((worker, "worker"), (producer, "producer")):
                    if p.pid() is None:
                        raise UserError(f"the {name} stopped; see {logs / (name + '.log')}")
                if sink_thread and not sink_thread.is_alive():
                    raise UserError("the sink stopped; see the messages above")
                live.update(view.render())
                if view.flowing and started:
                    out.print(f"events flowing: the first stored in ClickHouse {time.monotonic() - started:.0f} s "
                              "after the demo started")
                    started = 0.0
    except KeyboardInterrupt:
        out.print("stopping…")
    finally:
        producer.stop()
        stop.set()
        if sink_thread:
            sink_thread.join(timeout=30)
        worker.stop()
        if ours:
            broker.down()
        out.print("stopped: no broker, worker, producer or sink left running" if ours else
                  "stopped worker, producer and sink (the broker was already running before the demo: left up)")


class DemoView:
    """Live counts of rows in each warehouse table with their rates, above the terminal cockpit.

    Only the warehouse is read: a second Kafka client in this process can stall behind the sink's
    (kafka-python 3.0), and rows in ClickHouse are the proof that events went the whole way."""

    def __init__(self, client):
        self.client = client
        self.last: dict[str, tuple[float, int]] = {}
        self.flowing = False  # source events stored already
        self.raw = {t.name for t in TABLES if t.topic in SOURCE_TOPICS}

    def _rate(self, name: str, n: int) -> str:
        now = time.monotonic()
        t0, n0 = self.last.get(name, (now, n))
        self.last[name] = (now, n)
        # Replacing tables shrink when they merge: a rate then says nothing about arrivals.
        return f"{(n - n0) / (now - t0):,.0f}/s" if now > t0 and n >= n0 else ""

    def render(self):
        from dashboards import cockpit

        rows = self.client.query("SELECT name, total_rows FROM system.tables WHERE database = currentDatabase() "
                                 "AND engine LIKE '%MergeTree' AND name NOT LIKE '.inner%' ORDER BY name").result_rows
        self.flowing = any(n for name, n in rows if name in self.raw)
        half = (len(rows) + 1) // 2
        counts = Table.grid(padding=(0, 4))
        tables = []
        for part in (rows[:half], rows[half:]):
            t = Table("ClickHouse table", "rows", "rate", box=None)
            for name, n in part:
                t.add_row(name, f"{n or 0:,}", self._rate(name, n or 0))
            tables.append(t)
        counts.add_row(*tables)
        return Group(counts, cockpit.render(self.client))
