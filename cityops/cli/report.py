"""`cityops report monthly|weekly`: the 考核通报 as one self-contained HTML file (dashboards/report.py)."""
from __future__ import annotations

from pathlib import Path

import typer

from cityops.settings import get_settings

app = typer.Typer(help="考核通报: rankings, 红榜/黑榜, every unit's indicators, the worst overdue cases (HTML).",
                  no_args_is_help=True)


def _write(period, output: Path) -> None:
    from cityops.errors import UserError
    from cityops.evaluation import load_rules
    from cityops.warehouse import connect, migrate
    from dashboards import report
    from dashboards.units import Units

    settings = get_settings()
    rules = load_rules()
    wh = connect(settings)
    if wh.embedded:
        migrate(wh)
    from dashboards.simdata import registry_grids

    html = report.build(wh, rules, period, Units.of(settings), where=report.centres(registry_grids(settings)))
    try:
        output.write_text(html, encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write {output}: {e.strerror}") from e
    typer.echo(f"wrote {output} ({period.label})")


@app.command()
def monthly(month: str = typer.Option(..., help="the month, YYYY-MM (e.g. 2026-11)"),
            output: Path = typer.Option(..., "--output", "-o", help="the HTML file to write")) -> None:
    """The monthly 考核通报, against the month before."""
    from cityops.evaluation import month as parse

    _write(parse(month), output)


@app.command()
def weekly(week: str = typer.Option(..., help="the ISO week, YYYY-Www (e.g. 2026-W45)"),
           output: Path = typer.Option(..., "--output", "-o", help="the HTML file to write")) -> None:
    """The weekly 考核通报, against the week before."""
    from cityops.evaluation import week as parse

    _write(parse(week), output)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="report")
