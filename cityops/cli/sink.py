"""`cityops sink`: Kafka topics → ClickHouse warehouse (foreground; `cityops stack` may run it in background)."""
from __future__ import annotations

import logging
import os
import signal
import threading

import typer
from rich.console import Console

from cityops.settings import get_settings
from sinks.config import SinkConfig

out = Console(stderr=True)


def register(root: typer.Typer) -> None:
    @root.command()
    def sink(batch_rows: int = typer.Option(SinkConfig.batch_rows, min=1, help="flush after this many messages"),
             linger: float = typer.Option(SinkConfig.linger_s, min=0.01,
                                          help="…or after the oldest waited this many seconds"),
             group: str = typer.Option(SinkConfig.group_id, help="Kafka group id its committed offsets (the lag) are kept under"),
             verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
        """Store every source and output topic in the warehouse: batched, idempotent, offsets committed after insert."""
        from cityops.cli.cockpit import start_web
        from cityops.errors import UserError
        from cityops.stack.process import Managed
        from cityops.warehouse import connect
        from sinks import faults
        from sinks.service import run
        from sinks.store import Store, Stopped

        s = get_settings()
        logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("kafka").setLevel(logging.WARNING)
        for fault in faults.install(Store):
            logging.getLogger("cityops.sink").warning("test fault injected: %s", fault)
        me = Managed("sink", s.data_dir / "run")
        other = me.pid()
        if other and other != os.getpid():
            raise UserError(f"a sink already runs (pid {other}); stop it first (kill {other})")
        me.run_dir.mkdir(parents=True, exist_ok=True)
        me.pidfile.write_text(str(os.getpid()))
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        web = None
        try:
            wh = connect(s)
            if wh.embedded:   # this process holds the warehouse: the web cockpit and `cityops query` go through it
                web = start_web(s, wh, say=logging.getLogger("cityops.sink").info)
            stats = run(s, stop, client=wh, config=SinkConfig(batch_rows=batch_rows, linger_s=linger, group_id=group))
            out.print(f"sink stopped: {stats.messages} messages, {stats.rows} rows, "
                      f"{stats.dead_letters} dead letters, {stats.batches} batches")
        except Stopped as e:
            out.print(f"sink stopped while the warehouse was unreachable ({e}); nothing uncommitted was lost")
        finally:
            if web:
                web.stop()
            if me.pidfile.exists() and me.pidfile.read_text().strip() == str(os.getpid()):
                me.pidfile.unlink()
