"""`cityops stack up|down|status`: the local Kafka broker, or a cluster of them (`up --brokers 3`)."""
from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from cityops.settings import Settings, get_settings

out = Console()


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="Run the local stack: a real Kafka broker (KRaft) on loopback, or a cluster of them.",
                      no_args_is_help=True)

    @app.command()
    def fetch() -> None:
        """Download the broker's jars from Maven Central into the cache (nothing when cached)."""
        from cityops.stack.kafka import Broker

        with out.status("fetching Kafka jars from Maven Central…"):
            libs = Broker(get_settings()).fetch()
        out.print(f"Kafka jars in {libs}")

    @app.command()
    def up(brokers: int = typer.Option(None, min=1, max=9, help="brokers to start (default: "
                                       "CITYOPS_KAFKA_BROKERS, 1); 3 or more: every topic three times replicated")
           ) -> None:
        """Fetch the jars (once), format storage (once), start the broker(s), create every topic."""
        from cityops.stack.cluster import Cluster

        s = _with_brokers(get_settings(), brokers)
        with out.status(f"starting Kafka ({s.kafka_brokers} broker{'s' * (s.kafka_brokers > 1)})…"):
            pids = Cluster(s).up()
        out.print(f"[green]Kafka is up[/] (pid {', '.join(map(str, pids))}) on {s.bootstrap_servers}, "
                  f"replication factor {s.replication_factor}")

    @app.command()
    def topics() -> None:
        """Create the catalogue's topics on the configured broker (e.g. a docker-compose one)."""
        from cityops.stack.kafka import ensure_topics
        from cityops.topics import CATALOGUE

        s = get_settings()
        created = ensure_topics(s.bootstrap_servers, CATALOGUE, s.replication_factor)
        out.print(f"created {', '.join(created)}" if created else "every topic exists")

    @app.command()
    def down() -> None:
        """Stop the broker(s); nothing is left running."""
        from cityops.stack.cluster import Cluster

        s = _started(get_settings())
        stopped = Cluster(s).down()
        out.print("Kafka stopped" if stopped else "Kafka was not running")

    @app.command()
    def status() -> None:
        """What runs where: pid, port, data directory."""
        from cityops.stack.process import Managed

        s = get_settings()
        t = Table("service", "pid", "where", "data / log")
        for b in _brokers(_started(s)):
            k = b.status()
            t.add_row(k["service"], str(k["pid"] or "-"), k["listening"] or "not running", k["data_dir"])
        for name in ("worker", "sink", "producer"):
            pid = Managed(name, s.data_dir / "run").pid()
            t.add_row(name, str(pid or "-"), "running" if pid else "not running", str(s.data_dir / "logs" / f"{name}.log"))
        t.add_row("clickhouse", "-", "embedded (chdb)" if s.embedded_warehouse else "server", _redact(s.warehouse_url))
        out.print(t)

    root.add_typer(app, name="stack")


def _with_brokers(s: Settings, brokers: int | None) -> Settings:
    """The settings with `brokers` brokers (their addresses completed as CITYOPS_KAFKA_BROKERS would)."""
    if brokers is None or brokers == s.kafka_brokers:
        return s
    return Settings.model_validate({**s.model_dump(), "kafka_brokers": brokers})


def _started(s: Settings) -> Settings:
    """The settings of the cluster `up --brokers N` started, if larger than configured (its pid files say N)."""
    started = len(list((s.data_dir / "run").glob("broker-*.pid")))
    return _with_brokers(s, max(s.kafka_brokers, started))


def _brokers(s: Settings) -> list:
    from cityops.stack.cluster import Cluster

    return Cluster(s).brokers


def _redact(url: str) -> str:
    from urllib.parse import urlparse

    u = urlparse(url)
    return url.replace(f":{u.password}@", ":***@") if u.password else url
