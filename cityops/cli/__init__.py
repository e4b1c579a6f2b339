"""The `cityops` command. Each feature adds a module here exposing `app` (a typer.Typer) or
`register(root)`; the composition root imports stages lazily so `cityops --help` stays fast."""
from __future__ import annotations

import importlib
import sys

import typer

from cityops.cli.errors import fail

root = typer.Typer(name="cityops", help="城市运行管理 — city operations pipeline: Kafka → Faust → ClickHouse → Grafana.",
                   no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)

# Feature modules; each registers its commands on `root`.
FEATURES = ["stack", "demo", "worker", "sink", "warehouse", "query", "classify", "bench", "registry", "produce", "schema", "intake", "dashboards", "cockpit", "pager", "report"]

for name in FEATURES:
    importlib.import_module(f"cityops.cli.{name}").register(root)


def main() -> None:
    try:
        root()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 — one line saying what to fix, never a traceback
        from cityops.errors import UserError
        if isinstance(e, UserError):
            fail(str(e))
        raise
