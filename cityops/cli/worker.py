"""`cityops worker`: the Faust streams worker (run several for more partitions' worth of throughput)."""
from __future__ import annotations

import sys

import typer


def register(root: typer.Typer) -> None:
    @root.command()
    def worker(loglevel: str = typer.Option("warning", help="debug | info | warning | error")) -> None:
        """Run the streams worker: validate, classify, place, dispatch, follow cases, aggregate, alert."""
        from streams.app import app, settings

        # No web server (nothing serves it), and never Faust's default port: other stacks share the host.
        level = {"warning": "warn", "critical": "crit"}.get(loglevel, loglevel)  # Faust's spelling
        sys.argv = ["cityops worker", "worker", "--loglevel", level, "--without-web",
                    "--web-port", str(settings.worker_port)]
        app.main()
