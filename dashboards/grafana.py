"""Grafana dashboards from the panel definitions (grafana-foundation-sdk, Grafana 11.6 schema): the main
cockpit with district/street variables, and one drill-down dashboard per district."""
from __future__ import annotations

import json

from grafana_foundation_sdk.builders import bargauge, common as cb, dashboard as db, geomap, piechart, stat, table, \
    timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common, dashboard as dm, geomap as gm

from dashboards import clickhouse as ch
from dashboards.panels import HEADERS, PANELS, Kind, PanelDef
from dashboards.units import Units, pairs

MAIN_UID = "cityops-cockpit"
DISTRICT_TAG = "cityops-district"
REFRESH = "5s"
# The cockpit's map opens on Zhangdian (the city centre) at a zoom that shows the whole city.
MAP_CENTRE = (36.75, 118.05, 9)
# The base map is Zibo's district boundaries (the web cockpit's vendored GeoJSON, mounted into Grafana's public
# maps by docker-compose), not an online tile server a government intranet cannot reach.
BOUNDARIES = cb.MapLayerOptions().type("geojson").name("区县边界").config({
    "src": "public/maps/zibo.geojson", "rules": [],
    "style": {"color": {"fixed": "#1f4a8a"}, "opacity": 0.4, "lineWidth": 1}})


def district_uid(code: str) -> str:
    return f"cityops-district-{code}"


def _thresholds(p: PanelDef) -> db.ThresholdsConfig:
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=v, color=c) for v, c in p.thresholds])


def _rename() -> dm.DataTransformerConfig:
    return dm.DataTransformerConfig(id_val="organize", options={"renameByName": HEADERS})


def _reduce_rows() -> cb.ReduceDataOptions:
    """Table-shaped results (one row per name) shown row by row, as rankings and pies need."""
    return cb.ReduceDataOptions().values(True).calcs([]).limit(50)


def _markers(p: PanelDef, value_field: str) -> cb.MapLayerOptions:
    style = {"color": {"field": value_field, "fixed": "dark-green"}, "opacity": 0.7,
             "size": {"field": value_field, "fixed": 5, "min": 4, "max": 16},
             "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"}}
    return (cb.MapLayerOptions().type("markers").name(p.title).tooltip(True)
            .config({"showLegend": True, "style": style})
            .location(cb.FrameGeometrySource().mode(common.FrameGeometrySourceMode.COORDS)
                      .latitude("latitude").longitude("longitude")))


def _value_column(p: PanelDef) -> str:
    return {"events_map": "cases", "smoke_map": "peak_mg_m3", "district_score_map": "score"}.get(p.key, "value")


def panel(p: PanelDef, units: Units):
    """One Grafana panel builder for a definition."""
    target = ch.Query(p.render(units), ch.Format(p.format))
    match p.kind:
        case Kind.stat:
            b = (stat.Panel().reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
                 .graph_mode(common.BigValueGraphMode.NONE).color_mode(common.BigValueColorMode.VALUE)
                 .text_mode(common.BigValueTextMode.VALUE).no_value("0"))
        case Kind.timeseries:
            b = (timeseries.Panel().draw_style(common.GraphDrawStyle.LINE).line_width(2).fill_opacity(12)
                 .show_points(common.VisibilityMode.NEVER).display_name("${__field.labels.source_name}")
                 .legend(cb.VizLegendOptions().show_legend(True).display_mode(common.LegendDisplayMode.LIST)
                         .placement(common.LegendPlacement.BOTTOM))
                 .stacking(cb.StackingConfig().mode(common.StackingMode.NORMAL)))
        case Kind.piechart:
            b = (piechart.Panel().pie_type("donut").reduce_options(_reduce_rows())
                 .display_labels(["name", "percent"])
                 .legend(piechart.PieChartLegendOptions().show_legend(True).display_mode(common.LegendDisplayMode.TABLE)
                         .placement(common.LegendPlacement.RIGHT).values(["value", "percent"])))
        case Kind.bargauge:
            b = (bargauge.Panel().reduce_options(_reduce_rows()).orientation(common.VizOrientation.HORIZONTAL)
                 .display_mode(common.BarGaugeDisplayMode.GRADIENT).show_unfilled(True)
                 .value_mode(common.BarGaugeValueMode.COLOR).name_placement(common.BarGaugeNamePlacement.LEFT))
        case Kind.table:
            b = table.Panel().show_header(True).cell_height(common.TableCellHeight.SM)
        case Kind.geomap:
            lat, lon, zoom = MAP_CENTRE
            b = (geomap.Panel().view(geomap.MapViewConfig().id("coords").lat(lat).lon(lon).zoom(zoom))
                 .basemap(BOUNDARIES)
                 .layers([_markers(p, _value_column(p))])
                 .controls(geomap.ControlsOptions().show_zoom(True).mouse_wheel_zoom(True).show_scale(True))
                 .tooltip(geomap.TooltipOptions().mode(gm.TooltipMode.DETAILS)))
        case _:
            raise ValueError(f"no Grafana panel for {p.kind}")
    b = (b.title(p.title).description(p.description).datasource(ch.DATASOURCE).with_target(target)
         .unit(p.unit).thresholds(_thresholds(p)).span(p.size[0]).height(p.size[1]))
    if p.kind is not Kind.stat:
        b = b.with_transformation(_rename())
    if p.decimals is not None:
        b = b.decimals(p.decimals)
    if p.kind in (Kind.bargauge, Kind.geomap):
        b = b.color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
    elif p.kind is Kind.piechart:
        b = b.color_scheme(db.FieldColor().mode(dm.FieldColorModeId.PALETTE_CLASSIC))
    return b


def _layout(panels: list) -> list:
    """Left to right, wrapping at 24 columns; the last panel of a row widens to fill it (no gaps on a wall)."""
    built, row, x, y = [], [], 0, 0
    for b in panels:
        p = b.build()
        w, h = p.grid_pos.w, p.grid_pos.h
        if x + w > 24 and row:
            row[-1].grid_pos.w += 24 - x
            y += max(r.grid_pos.h for r in row)
            row, x = [], 0
        p.grid_pos = dm.GridPos(h=h, w=w, x=x, y=y)
        p.id_val = len(built) + 1
        row.append(p)
        built.append(p)
        x += w
    if row:
        row[-1].grid_pos.w += 24 - x
    return built


class _Built(db.Panel):
    """Wraps an already built panel so the dashboard builder takes it as is."""

    def __init__(self, p: dm.Panel):
        self._internal = p


def _street_variable(units: Units) -> db.QueryVariable:
    sql = pairs(units.streets) + " WHERE $__conditionalAll(startsWith(code, '${district}'), $district) ORDER BY code"
    return (db.QueryVariable("street").label("街道").datasource(ch.DATASOURCE).query(sql)
            .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD).include_all(True)
            .current(dm.VariableOption(selected=True, text="全部", value="$__all")))


def _base(uid: str, title: str, tags: list[str]) -> db.Dashboard:
    return (db.Dashboard(title).uid(uid).tags(tags).refresh(REFRESH).time("now-6h", "now")
            .timezone("Asia/Shanghai").readonly().tooltip(dm.DashboardCursorSync.CROSSHAIR)
            .timepicker(db.TimePicker().refresh_intervals(["5s", "10s", "30s", "1m", "5m"]))
            .link(db.DashboardLink("区县下钻").type(dm.DashboardLinkType.DASHBOARDS).tags([DISTRICT_TAG])
                  .as_dropdown(True).include_vars(False).keep_time(True)))


def _with_panels(d: db.Dashboard, panels: list) -> db.Dashboard:
    for p in _layout(panels):
        d = d.with_panel(_Built(p))
    return d


def cockpit(units: Units) -> db.Dashboard:
    district = (db.CustomVariable("district").label("区县").include_all(True)
                .values(", ".join(f"{name} : {code}" for code, name in units.districts.items()))
                .current(dm.VariableOption(selected=True, text="全部", value="$__all")))
    d = (_base(MAIN_UID, "城市运行智慧驾驶舱", ["cityops", "智慧驾驶舱"])
         .description("城市运行管理：12345热线、感知设备、随手拍实时汇聚；5 秒刷新")
         .with_variable(district).with_variable(_street_variable(units)))
    return _with_panels(d, [panel(p, units) for p in PANELS])


def district(units: Units, code: str) -> db.Dashboard:
    name = units.districts[code]
    d = (_base(district_uid(code), f"{name} · 区县驾驶舱", ["cityops", DISTRICT_TAG])
         .description(f"{name}（{code}）的下钻视图：只看本区县的受理、办结、超期与多发点位")
         .with_variable(db.ConstantVariable("district").value(code).label("区县"))
         .with_variable(_street_variable(units)))
    return _with_panels(d, [panel(p, units) for p in PANELS if p.in_district])


def dashboards(units: Units) -> dict[str, dict]:
    """uid → dashboard JSON (as Grafana stores it), main cockpit first."""
    out = {MAIN_UID: to_json(cockpit(units))}
    for code in units.districts:
        out[district_uid(code)] = to_json(district(units, code))
    return out


def to_json(d: db.Dashboard) -> dict:
    out = json.loads(JSONEncoder(sort_keys=True).encode(d.build()))
    # The SDK writes interval-variable settings on every variable; the schema has them nowhere else.
    for v in out.get("templating", {}).get("list", []):
        if v.get("type") != "interval":
            for k in ("auto", "auto_count", "auto_min"):
                v.pop(k, None)
    return out
