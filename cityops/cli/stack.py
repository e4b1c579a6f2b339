"""`cityops stack up|down|status`: the local Kafka broker."""
from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from cityops.settings import get_settings

out = Console()


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="Run the local stack: a real single-node Kafka broker (KRaft) on loopback.",
                      no_args_is_help=True)

    @app.command()
    def fetch() -> None:
        """Download the broker's jars from Maven Central into the cache (nothing when cached)."""
        from cityops.stack.kafka import Broker

        with out.status("fetching Kafka jars from Maven Central…"):
            libs = Broker(get_settings()).fetch()
        out.print(f"Kafka jars in {libs}")

    @app.command()
    def up() -> None:
        """Fetch the jars (once), format storage (once), start the broker, create every topic."""
        from cityops.stack.kafka import Broker

        b = Broker(get_settings())
        with out.status("starting Kafka…"):
            pid = b.up()
        out.print(f"[green]Kafka is up[/] (pid {pid}) on {get_settings().bootstrap_servers}")

    @app.command()
    def topics() -> None:
        """Create the catalogue's topics on the configured broker (e.g. a docker-compose one)."""
        from cityops.stack.kafka import ensure_topics
        from cityops.topics import CATALOGUE

        created = ensure_topics(get_settings().bootstrap_servers, CATALOGUE)
        out.print(f"created {', '.join(created)}" if created else "every topic exists")

    @app.command()
    def down() -> None:
        """Stop the broker; nothing is left running."""
        from cityops.stack.kafka import Broker

        out.print("Kafka stopped" if Broker(get_settings()).down() else "Kafka was not running")

    @app.command()
    def status() -> None:
        """What runs where: pid, port, data directory."""
        from cityops.stack.kafka import Broker
        from cityops.stack.process import Managed

        s = get_settings()
        t = Table("service", "pid", "where", "data / log")
        k = Broker(s).status()
        t.add_row("kafka", str(k["pid"] or "-"), k["listening"] or "not running", k["data_dir"])
        for name in ("worker", "sink", "producer"):
            pid = Managed(name, s.data_dir / "run").pid()
            t.add_row(name, str(pid or "-"), "running" if pid else "not running", str(s.data_dir / "logs" / f"{name}.log"))
        t.add_row("clickhouse", "-", "embedded (chdb)" if s.embedded_warehouse else "server", _redact(s.warehouse_url))
        out.print(t)

    root.add_typer(app, name="stack")


def _redact(url: str) -> str:
    from urllib.parse import urlparse

    u = urlparse(url)
    return url.replace(f":{u.password}@", ":***@") if u.password else url
