"""The cockpit in a terminal (rich), for a machine without Grafana: the same panel definitions and SQL,
expanded as the plugin would, against the warehouse client the caller owns (only one process may open an
embedded chdb directory, so the demo passes its own client in)."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from dashboards.macros import ALL, QueryContext, expand
from dashboards.panels import HEADERS, PANELS, Kind, PanelDef
from dashboards.units import Units

SPAN = timedelta(hours=6)       # the Grafana cockpit's default time range
SPARK = "▁▂▃▄▅▆▇█"
COLOURS = {"green": "green", "orange": "dark_orange", "red": "red", "blue": "deep_sky_blue1"}
SHANGHAI = timezone(timedelta(hours=8))


@lru_cache(maxsize=1)
def _units() -> Units:
    from cityops.settings import get_settings

    return Units.of(get_settings())


def fmt(value, unit: str, decimals: int | None = None) -> str:
    if value is None:
        return "—"
    if unit == "percentunit":
        return f"{value * 100:.{1 if decimals is None else decimals}f}%"
    if isinstance(value, float):
        value = round(value, 2 if decimals is None else decimals)
    if unit.startswith("suffix:"):
        return f"{value:,}{unit[7:]}" if isinstance(value, int) else f"{value}{unit[7:]}"
    return f"{value}" if unit == "none" else f"{value} {unit}"


def colour(p: PanelDef, value) -> str:
    chosen = p.thresholds[0][1]
    for at, c in p.thresholds[1:]:
        if value is not None and at is not None and value >= at:
            chosen = c
    return COLOURS.get(chosen, chosen)


def _stat(p: PanelDef, rows) -> RenderableType:
    value = rows[0][0] if rows else None
    return Panel(Text(fmt(value, p.unit, p.decimals), style=f"bold {colour(p, value)}", justify="center"),
                 title=p.title, box=box.ROUNDED, padding=(0, 1))


def _spark(values: list[float], width: int = 48) -> str:
    values = values[-width:]
    top = max(values, default=0) or 1
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1)))] for v in values)


def _series(p: PanelDef, rows) -> RenderableType:
    by_source: dict[str, list[float]] = {}
    for _, name, v in rows:
        by_source.setdefault(name, []).append(v)
    t = Table.grid(padding=(0, 1))
    for name, values in sorted(by_source.items()):
        t.add_row(Text(name, style="bold"), Text(_spark(values), style="cyan"), fmt(int(values[-1]), p.unit))
    return Panel(t if by_source else Text("无数据", style="dim"), title=p.title, box=box.ROUNDED)


def _bars(p: PanelDef, rows, width: int = 20) -> RenderableType:
    top = max((r[-1] or 0 for r in rows), default=0) or 1
    t = Table.grid(padding=(0, 1))
    for *names, v in rows:
        bar = "█" * max(1, round((v or 0) / top * width))
        t.add_row(" ".join(str(n) for n in names), Text(bar, style=colour(p, v) if len(p.thresholds) > 1 else "cyan"),
                  fmt(v, p.unit, p.decimals))
    return Panel(t if rows else Text("无数据", style="dim"), title=p.title, box=box.ROUNDED)


def _table(p: PanelDef, columns: list[str], rows, limit: int = 10) -> RenderableType:
    if not rows:
        return Panel(Text("无数据", style="dim"), title=p.title, box=box.ROUNDED)
    t = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    for c in columns:
        header = HEADERS.get(c, c)
        # Headers are CJK (two cells a character): keep them whole; free text takes what is left.
        t.add_column(header, overflow="ellipsis", no_wrap=True, min_width=2 * len(header),
                     ratio=3 if c == "title" else 1)
    for r in rows[:limit]:
        t.add_row(*(v.astimezone(SHANGHAI).strftime("%H:%M:%S") if isinstance(v, datetime) else str(v) for v in r))
    return Panel(t, title=p.title, box=box.ROUNDED)


def panel_view(p: PanelDef, client, ctx: QueryContext, units: Units) -> RenderableType:
    try:
        result = client.query(expand(p.render(units), ctx))
    except Exception as e:  # noqa: BLE001 — one broken panel must not blank the wall screen
        return Panel(Text(str(e).splitlines()[0][:160], style="red"), title=p.title, box=box.ROUNDED)
    rows = result.result_rows
    match p.kind:
        case Kind.stat:
            return _stat(p, rows)
        case Kind.timeseries:
            return _series(p, rows)
        case Kind.bargauge | Kind.piechart:
            return _bars(p, rows)
        case _:
            return _table(p, list(result.column_names), rows)


def render(client, ctx: QueryContext | None = None, units: Units | None = None) -> RenderableType:
    """One frame of the cockpit: every panel marked `in_terminal`, queried now."""
    units = units or _units()
    ctx = ctx or QueryContext.last(SPAN, district=ALL, street=ALL)
    views = {p.key: panel_view(p, client, ctx, units) for p in PANELS if p.in_terminal}
    stats = [v for p, v in ((by, views[by.key]) for by in PANELS if by.key in views) if p.kind is Kind.stat]
    place = units.districts.get(str(ctx.variables.get("district")), "全市")
    now = ctx.end.astimezone(SHANGHAI)
    header = Text.assemble(("城市运行智慧驾驶舱", "bold white on dark_blue"), "  ", (place, "bold"),
                           f"  {now:%Y-%m-%d %H:%M:%S}  （近 {int(SPAN.total_seconds() // 3600)} 小时）")
    rest = [views[k] for k in views if k not in {p.key for p in PANELS if p.kind is Kind.stat}]
    grid = Table.grid(expand=True)
    grid.add_column(ratio=1)
    grid.add_column(ratio=1)
    for i in range(0, len(rest), 2):
        grid.add_row(*rest[i:i + 2], *([""] if len(rest[i:i + 2]) == 1 else []))
    row = Table.grid(expand=True)
    for _ in stats:
        row.add_column(ratio=1)
    row.add_row(*stats)
    return Group(header, row, grid)


def run(client, stop_event: threading.Event, refresh_s: float = 5, console: Console | None = None,
        ctx_factory=None) -> None:
    """Redraws the cockpit every `refresh_s` seconds until `stop_event` is set."""
    frame = ctx_factory or (lambda: QueryContext.last(SPAN, district=ALL, street=ALL))
    with Live(render(client, frame()), console=console, screen=False, auto_refresh=False) as live:
        while not stop_event.wait(refresh_s):
            live.update(render(client, frame()), refresh=True)
