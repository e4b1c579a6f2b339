"""`cityops worker`: the Faust streams worker (run several for more partitions' worth of throughput)."""
from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    @root.command()
    def worker(loglevel: str = typer.Option("warning", help="debug | info | warning | error")) -> None:
        """Run the streams worker: validate, classify, place, dispatch, follow cases, aggregate, alert."""
        from streams.worker import main

        main(loglevel)
