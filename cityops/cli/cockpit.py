"""`cityops cockpit`: the cockpit panels live in the terminal; `cityops cockpit serve`: the web cockpit (大屏)."""
from __future__ import annotations

import threading
from pathlib import Path

import typer

from cityops.settings import get_settings


def start_web(settings, client, say=print):
    """The web cockpit in this process, which holds the warehouse (`cityops demo`, `cityops sink`): its URL
    said, or why not (the pipeline runs on without it). Returns what to `stop()` before the process exits
    (None when off)."""
    from dashboards.units import Units
    from dashboards.web.server import check_bind, create_app, serve_in_thread

    host, port = settings.cockpit_addr.rsplit(":", 1)
    try:
        check_bind(host, settings.cockpit_token)
        served = serve_in_thread(create_app(client, Units.of(settings), settings.cockpit_token), host, int(port))
    except (ValueError, OSError) as e:
        say(f"web cockpit off: {e} (set CITYOPS_COCKPIT_ADDR)")
        return None
    say(f"web cockpit (大屏) on http://{settings.cockpit_addr}/")
    return served


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="智慧驾驶舱: in the terminal (no command) or on the web (`serve`).")

    @app.callback(invoke_without_command=True)
    def cockpit(ctx: typer.Context,
                refresh: float = typer.Option(5.0, min=0.5, help="seconds between redraws"),
                district: str = typer.Option("", help="a district code (e.g. 370303) to show only that district"),
                street: str = typer.Option("", help="a 9-digit street code"),
                once: bool = typer.Option(False, help="draw one frame and exit"),
                simulate: int = typer.Option(0, help="show N simulated events in a fresh temporary warehouse "
                                             "instead of the configured one (try the cockpit without the pipeline)"),
                save_svg: Path = typer.Option(None, help="with --once: also save the frame as SVG")) -> None:
        """智慧驾驶舱 in the terminal: today's figures, rankings, open cases, alerts, hot spots (Ctrl-C quits)."""
        if ctx.invoked_subcommand:
            return
        from rich.console import Console

        from cityops.errors import UserError
        from cityops.warehouse import connect, migrate
        from dashboards import cockpit as view
        from dashboards.macros import ALL, QueryContext

        settings = get_settings()
        if district and district not in view._units().districts:
            raise UserError(f"unknown district code {district!r}; known: {', '.join(view._units().districts)}")
        if simulate:
            import tempfile

            from dashboards import simdata

            settings = settings.model_copy(update={"clickhouse_url": f"chdb://{tempfile.mkdtemp(prefix='cockpit-')}"})
            wh = connect(settings)
            migrate(wh)
            simdata.fill(wh, simdata.Mix.of(simulate), simdata.registry_grids(settings))
        else:
            wh = connect(settings)
            if wh.embedded:
                migrate(wh)   # a fresh data directory shows an empty cockpit rather than an error per panel

        def ctx() -> QueryContext:
            return QueryContext.last(view.SPAN, district=district or ALL, street=street or ALL)

        if once:
            console = Console(record=save_svg is not None, width=200 if save_svg else None)
            console.print(view.render(wh, ctx()))
            if save_svg:
                console.save_svg(str(save_svg), title="cityops cockpit — 城市运行智慧驾驶舱")
            return
        stop = threading.Event()
        try:
            view.run(wh, stop, refresh, ctx_factory=ctx)
        except KeyboardInterrupt:
            stop.set()

    @app.command()
    def serve(simulate: int = typer.Option(0, help="serve N simulated events in a fresh temporary warehouse")) -> None:
        """The web cockpit at CITYOPS_COCKPIT_ADDR, on its own: with a server warehouse, or an embedded one no
        other process holds (while `cityops demo` or `cityops sink` runs, they serve it)."""
        import uvicorn

        from cityops.errors import UserError
        from cityops.warehouse import connect, migrate
        from dashboards.units import Units
        from dashboards.web.server import check_bind, create_app

        settings = get_settings()
        host, port = settings.cockpit_addr.rsplit(":", 1)
        try:
            check_bind(host, settings.cockpit_token)
        except ValueError as e:
            raise UserError(str(e)) from None
        if simulate:
            import tempfile

            from dashboards import simdata

            settings = settings.model_copy(update={"clickhouse_url": f"chdb://{tempfile.mkdtemp(prefix='cockpit-')}"})
        wh = connect(settings)
        if wh.embedded:
            migrate(wh)
        if simulate:
            simdata.fill(wh, simdata.Mix.of(simulate), simdata.registry_grids(settings))
        print(f"web cockpit on http://{settings.cockpit_addr}/", flush=True)
        uvicorn.run(create_app(wh, Units.of(settings), settings.cockpit_token), host=host, port=int(port),
                    log_level="warning")

    root.add_typer(app, name="cockpit")
