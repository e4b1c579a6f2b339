"""`cityops registry validate|export|show`: the city's grids and standard addresses."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cityops.errors import UserError

out = Console()


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="The city registry: districts → streets → communities → grids, standard addresses.",
                      no_args_is_help=True)

    @app.command()
    def validate(path: Path = typer.Argument(..., help="directory with grids.geojson + addresses.csv, or a .geojson"),
                 addresses: Path | None = typer.Option(None, help="addresses CSV (default: addresses.csv next to the grids)")) -> None:
        """Report overlaps, gaps, bad codes and misplaced addresses; exit 1 when there are errors."""
        from cityops.registry.files import ADDRESSES, GRIDS
        from cityops.registry.validate import validate as check

        grids = path / GRIDS if path.is_dir() else path
        csv = addresses or grids.with_name(ADDRESSES)
        if not grids.exists():
            raise UserError(f"{grids} does not exist: give a registry directory or a grids GeoJSON file")
        issues = check(grids, csv)
        errors = [i for i in issues if i.severity == "error"]
        for i in issues[:200]:
            out.print(f"[{'red' if i.severity == 'error' else 'yellow'}]{i}[/]", highlight=False, soft_wrap=True)
        if len(issues) > 200:
            out.print(f"… and {len(issues) - 200} more")
        out.print(f"{len(errors)} error(s), {len(issues) - len(errors)} warning(s) in {grids} + {csv}")
        if errors:
            raise typer.Exit(1)

    @app.command()
    def export(directory: Path = typer.Argument(..., help="where to write grids.geojson + addresses.csv")) -> None:
        """Write the generated city (or CITYOPS_REGISTRY's) in the loadable format."""
        from cityops.registry import CityRegistry

        r = CityRegistry.default()
        g, a = r.export(directory)
        out.print(f"wrote {len(r.grids)} grids to {g} and {len(r.addresses)} addresses to {a}")

    @app.command()
    def show() -> None:
        """Districts with their street, community and grid counts."""
        from rich.table import Table

        from cityops.registry import CityRegistry

        r = CityRegistry.default()
        t = Table("code", "district", "streets", "communities", "grids", title=r.name)
        for code, d in r.districts.items():
            t.add_row(code, d.name, str(sum(s.startswith(code) for s in r.streets)),
                      str(sum(c.startswith(code) for c in r.communities)), str(len(r.grids_of(code))))
        out.print(t)

    root.add_typer(app, name="registry")
