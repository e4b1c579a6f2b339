"""`cityops dashboards build|publish|check`: the Grafana cockpit as code (see docs/dashboards.md)."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cityops.settings import get_settings

out = Console()


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="Grafana cockpit (智慧驾驶舱) as code: build provisioning files, publish, type-check.",
                      no_args_is_help=True)

    @app.command()
    def build(directory: Path = typer.Argument(Path("dashboards"), help="writes DIR/provisioning/… (mount it at "
                                               "/etc/grafana/provisioning)"),
              clickhouse_host: str = typer.Option("clickhouse", help="ClickHouse host as Grafana sees it"),
              clickhouse_port: int = typer.Option(9000, help="native (9000) or HTTP (8123) port"),
              protocol: str = typer.Option("native", help="native | http"),
              reader: str = typer.Option("cityops_reader", help="read-only ClickHouse user")) -> None:
        """Write the dashboards' JSON, the datasource, the alert rules, contact points and policy."""
        from cityops.errors import UserError
        from dashboards.provisioning import Target, build as write
        from dashboards.units import Units

        if protocol not in ("native", "http"):
            raise UserError(f"--protocol must be native or http, got {protocol!r}")
        files = write(directory, Units.of(get_settings()), Target(clickhouse_host, clickhouse_port, protocol, reader))
        out.print(f"wrote {len(files)} files under {directory / 'provisioning'}")

    @app.command()
    def publish(url: str = typer.Option(..., "--url", help="Grafana base URL, e.g. http://127.0.0.1:3000 "
                                        "(user:password@ allowed; or a token in GRAFANA_TOKEN)"),
                timeout: float = typer.Option(10, help="seconds per request")) -> None:
        """Upsert folder, datasource, dashboards, alert rules, contact points and policy (idempotent)."""
        from cityops.errors import UserError
        from dashboards.publish import PublishError, publish as push
        from dashboards.units import Units

        try:
            report = push(url, Units.of(get_settings()), timeout=timeout)
        except PublishError as e:
            raise UserError(str(e)) from e
        out.print(f"[green]published[/]: {len(report.created)} created, {len(report.updated)} updated")

    @app.command()
    def check() -> None:
        """Type-check the generated dashboards against @grafana/schema (needs `npm ci --prefix tests/tsc`)."""
        from cityops.errors import UserError
        from dashboards import grafana, typecheck
        from dashboards.units import Units

        if not typecheck.available():
            raise UserError(f"{typecheck.TSC} is missing: run `npm ci --prefix tests/tsc`")
        result = typecheck.check(grafana.dashboards(Units.of(get_settings())))
        if not result.ok:
            raise UserError("dashboards do not match @grafana/schema:\n" + result.output)
        out.print("[green]dashboards match @grafana/schema[/]")

    root.add_typer(app, name="dashboards")
