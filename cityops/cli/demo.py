"""`cityops demo`: the main job on the embedded default — broker, worker, sink, simulator, live counts.

The demo process owns the embedded ClickHouse directory (only one process may open it), so the sink runs
here in a thread and the live view reads through the same client. Ctrl-C stops everything it started.
"""
from __future__ import annotations

import signal
import sys
import threading
import time

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from cityops.settings import Settings, get_settings

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
        producer.start([*cli, "produce", "simulate", "--rate", str(rate), "--duration", "0", "--seed", str(seed),
                        "--quiet"], logs / "producer.log")
        out.print(f"[green]running[/]: Kafka {s.bootstrap_servers}, worker pid {worker.pid()}, "
                  f"producer pid {producer.pid()}, warehouse {s.warehouse_url}. Logs in {logs}. Ctrl-C stops.")
        view = DemoView(s, client)
        with Live(view.render(), console=out, refresh_per_second=4, screen=False) as live:
            while True:
                time.sleep(refresh)
                for p, name in ((worker, "worker"), (producer, "producer")):
                    if p.pid() is None:
                        raise RuntimeError(f"the {name} stopped; see {logs / (name + '.log')}")
                if sink_thread and not sink_thread.is_alive():
                    raise RuntimeError("the sink stopped; see the messages above")
                live.update(view.render())
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
    """Live counts: messages on each topic and rows in each warehouse table, with rates."""

    def __init__(self, s: Settings, client):
        from kafka import KafkaConsumer

        from cityops.topics import CATALOGUE

        self.client = client
        self.topics = [t.name for t in CATALOGUE]
        self.consumer = KafkaConsumer(bootstrap_servers=s.bootstrap_servers, client_id="cityops-demo-view")
        self.last: dict[str, tuple[float, int]] = {}

    def _rate(self, name: str, n: int) -> str:
        now = time.monotonic()
        t0, n0 = self.last.get(name, (now, n))
        self.last[name] = (now, n)
        return f"{(n - n0) / (now - t0):,.0f}/s" if now > t0 else ""

    def render(self):
        from kafka import TopicPartition

        kt = Table("topic", "messages", "rate", title="Kafka", title_justify="left")
        for name in self.topics:
            parts = self.consumer.partitions_for_topic(name) or set()
            ends = self.consumer.end_offsets([TopicPartition(name, p) for p in parts]) if parts else {}
            n = sum(ends.values())
            kt.add_row(name, f"{n:,}", self._rate("k:" + name, n))
        wt = Table("table", "rows", "rate", title="ClickHouse", title_justify="left")
        rows = self.client.query("SELECT name, total_rows FROM system.tables WHERE database = currentDatabase() "
                                 "AND engine LIKE '%MergeTree' AND name NOT LIKE '.inner%' ORDER BY name").result_rows
        for name, n in rows:
            wt.add_row(name, f"{n or 0:,}", self._rate("w:" + name, n or 0))
        return Group(kt, wt)
