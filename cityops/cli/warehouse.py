"""`cityops warehouse migrate|status`: the warehouse's schema."""
from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from cityops.settings import get_settings

out = Console()


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="The ClickHouse warehouse: schema migrations and what it holds.", no_args_is_help=True)

    @app.command()
    def migrate() -> None:
        """Apply the numbered migrations not yet applied (the sink also does this on start)."""
        from cityops.warehouse import connect, migrate as run

        names = run(connect(get_settings()))
        out.print(f"applied {', '.join(names)}" if names else "schema is up to date")

    @app.command()
    def status() -> None:
        """Applied migrations and row counts per table."""
        from cityops.warehouse import connect
        from cityops.warehouse.migrate import applied, available

        wh = connect(get_settings())
        done = applied(wh)
        for version, path in available():
            out.print(f"{'✓' if version in done else '✗'} {path.stem}")
        t = Table("table", "engine", "rows", "size")
        for name, engine, rows, size in wh.query(
                "SELECT name, engine, total_rows, formatReadableSize(total_bytes) FROM system.tables "
                "WHERE database = currentDatabase() AND engine NOT IN ('MaterializedView') ORDER BY name").result_rows:
            t.add_row(name, engine, str(rows or 0), size or "")
        out.print(t)

    root.add_typer(app, name="warehouse")
