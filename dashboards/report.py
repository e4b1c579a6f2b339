"""The 考核通报 for a month or an ISO week: one self-contained Chinese HTML page (inline CSS and SVG, nothing fetched),
printable from a browser. Its ranks, scores and movement are the cockpit's ranking panels' own rows for the
period (the same SQL, the period as the time range); each unit's indicators against the previous period come
from the same rollup (cityops/warehouse/evaluation.py); the worst overdue cases are masked again."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from html import escape

from cityops.evaluation import DEFINITIONS, UNIT_KINDS, Period, Rules, UnitResult, boards, evaluate
from cityops.pii import mask_text
from cityops.warehouse.evaluation import period_sums
from dashboards.macros import ALL, QueryContext, expand
from dashboards.panels import by_key
from dashboards.units import Units

SHANGHAI = timezone(timedelta(hours=8))
BOARDS = {"department": "department_evaluation", "district": "district_evaluation", "street": "street_evaluation"}
WORST = 10
LEVELS = {"grid": "网格", "community": "社区", "street": "街道", "district": "区县", "city": "市"}
STATUSES = {"created": "已受理", "dispatched": "已派单未签收", "accepted": "已签收办理中", "returned": "退回待派",
            "reopened": "重办中", "resolved": "已办结", "verified": "核查通过", "return_visit": "已回访", "closed": "已结案"}


@dataclass(frozen=True)
class Section:
    kind: str
    board: list[tuple]                 # the panel's rows: rank, unit name, score, previous rank, movement
    results: list[UnitResult]          # every unit: indicators now
    previous: dict[str, UnitResult]    # the same units in the previous period
    red: list[UnitResult]
    black: list[UnitResult]


def context(period: Period) -> QueryContext:
    """The period as a dashboard time range: its first to its last day, Asia/Shanghai."""
    last = period.end - timedelta(days=1)
    return QueryContext(datetime.combine(period.start, time(0), SHANGHAI),
                        datetime.combine(last, time(23, 59, 59), SHANGHAI), variables={"district": ALL, "street": ALL})


def sections(wh, rules: Rules, period: Period, units: Units) -> list[Section]:
    out = []
    for kind in UNIT_KINDS:
        board = []
        if kind in BOARDS:
            sql = expand(by_key(BOARDS[kind]).render(units), context(period))
            board = [tuple(r) for r in wh.query(sql).result_rows]
        before = period.previous()
        results = evaluate(rules, period_sums(wh, kind, period), period_sums(wh, kind, before))
        previous = {r.unit: r for r in evaluate(rules, period_sums(wh, kind, before))}
        red, black = boards(rules, results)
        out.append(Section(kind, board, results, previous, red, black))
    return out


def worst_overdue(wh, period: Period, limit: int = WORST) -> list[tuple]:
    """Cases overdue during the period, most escalated and longest past due first; text masked again."""
    rows = wh.query(
        "SELECT case_id, label, department, district_code, street_code, tier, escalations, status, due_at, text "
        "FROM case_current FINAL WHERE overdue AND duplicate_of = '' AND due_at < %(end)s "
        "AND (resolved_at IS NULL OR resolved_at >= %(start)s) "
        "ORDER BY escalations DESC, due_at LIMIT %(limit)s",
        parameters={"start": datetime.combine(period.start, time(0), SHANGHAI),
                    "end": datetime.combine(period.end, time(0), SHANGHAI), "limit": limit}).result_rows
    return [(*r[:9], mask_text(r[9] or "")) for r in rows]


def _name(kind: str, unit: str, units: Units) -> str:
    return {"district": units.districts, "street": units.streets}.get(kind, {}).get(unit, unit)


def _fmt(d, value) -> str:
    if value is None:
        return "—"
    if d.kind == "rate":
        return f"{value * 100:.1f}%"
    return f"{value:.1f}" if d.kind == "hours" else f"{value:.0f}"


def bars(items: list[tuple[str, float]], width: int = 640) -> str:
    """A horizontal bar chart of scores (0–100) as inline SVG."""
    row, left = 22, 150
    h = row * len(items) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" viewBox="0 0 {width} {h}" '
             f'role="img" font-size="12">']
    for i, (label, value) in enumerate(items):
        y = 5 + i * row
        w = max(0.0, min(100.0, value)) / 100 * (width - left - 60)
        colour = "#2e7d32" if value >= 90 else "#ef6c00" if value >= 75 else "#c62828"
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{escape(label[:12])}</text>'
                     f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{colour}"/>'
                     f'<text x="{left + w + 4:.1f}" y="{y + 14}">{value:.2f}</text>')
    return "".join(parts) + "</svg>"


def district_map(centres: dict[str, tuple[float, float]], section: Section, units: Units, size: int = 420) -> str:
    """Districts at their centres (lat, lon), coloured by score as the bars are; unranked ones grey (SVG)."""
    scores = {r.unit: r.score for r in section.results}
    if not centres:
        return ""
    lats, lons = [c[0] for c in centres.values()], [c[1] for c in centres.values()]
    span = max(max(lats) - min(lats), max(lons) - min(lons)) or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}" '
             f'role="img" font-size="12"><rect width="{size}" height="{size}" fill="#f7f7f7"/>']
    for code, (lat, lon) in sorted(centres.items()):
        x = 40 + (lon - min(lons)) / span * (size - 80)
        y = size - 40 - (lat - min(lats)) / span * (size - 80)
        score = scores.get(code)
        colour = ("#9e9e9e" if score is None else "#2e7d32" if score >= 90 else "#ef6c00" if score >= 75
                  else "#c62828")
        shown = "—" if score is None else f"{score:.1f}"
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="16" fill="{colour}"/>'
                     f'<text x="{x:.1f}" y="{y + 30:.1f}" text-anchor="middle">'
                     f"{escape(units.districts.get(code, code))} {shown}</text>")
    return "".join(parts) + "</svg>"


def centres(grids: list[tuple[str, float, float]]) -> dict[str, tuple[float, float]]:
    """Each district's centre: the mean of its grids' centroids ((grid code, lat, lon) of the registry)."""
    sums: dict[str, list[float]] = {}
    for code, lat, lon in grids:
        acc = sums.setdefault(code[:6], [0.0, 0.0, 0])
        acc[0], acc[1], acc[2] = acc[0] + lat, acc[1] + lon, acc[2] + 1
    return {d: (a / n, b / n) for d, (a, b, n) in sums.items()}


def _board_table(section: Section) -> str:
    rows = "".join(
        f'<tr data-unit="{escape(str(name))}"><td>{rank}</td><td>{escape(str(name))}</td><td>{score:.2f}</td>'
        f'<td>{"—" if prev is None else prev}</td><td class="{_move_class(move)}">{escape(move)}</td></tr>'
        for rank, name, score, prev, move in section.board)
    return ("<table><thead><tr><th>排名</th><th>单位</th><th>考核得分</th><th>上期排名</th><th>名次变化</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _move_class(move: str) -> str:
    return "up" if move.startswith("提升") else "down" if move.startswith("下降") else ""


def _indicator_table(section: Section, units: Units) -> str:
    head = "".join(f"<th>{escape(d.name)}</th>" for d in DEFINITIONS)
    body = []
    for r in section.results:
        before = section.previous.get(r.unit)
        cells = []
        for d in DEFINITIONS:
            now = r.indicators[d.key]
            was = before.indicators[d.key].value if before else None
            arrow = ""
            if now.value is not None and was is not None and now.value != was:
                better = (now.value > was) == d.higher_is_better
                arrow = f' <span class="{"up" if better else "down"}">{"↑" if now.value > was else "↓"}</span>'
            fail = ' class="fail"' if now.passed is False else ""
            cells.append(f"<td{fail}>{_fmt(d, now.value)}{arrow}<br><small>上期 {_fmt(d, was)}</small></td>")
        score = "—" if r.score is None else f"{r.score:.2f}"
        body.append(f"<tr><td>{escape(_name(section.kind, r.unit, units))}</td><td>{score}</td>{''.join(cells)}</tr>")
    return (f"<table class=\"wide\"><thead><tr><th>单位</th><th>考核得分</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _boards_html(section: Section, units: Units) -> str:
    def names(rs):
        return "、".join(f"{escape(_name(section.kind, r.unit, units))}（{r.score:.2f}）" for r in rs) or "—"

    label = UNIT_KINDS[section.kind]
    return (f'<p><span class="red">红榜</span>（{label}）：{names(section.red)}</p>'
            f'<p><span class="black">黑榜</span>（{label}）：{names(section.black)}</p>')


CSS = """
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; margin: 2em; color: #222; }
h1 { text-align: center; font-size: 24px; margin-bottom: 0; } .sub { text-align: center; color: #555; }
h2 { border-left: 6px solid #b71c1c; padding-left: 8px; margin-top: 1.6em; font-size: 18px; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 12px; } th, td { border: 1px solid #bbb;
padding: 3px 6px; text-align: center; } th { background: #f2f2f2; } td small { color: #777; }
.up { color: #2e7d32; } .down { color: #c62828; } .fail { background: #fdecea; }
.red { background: #c62828; color: #fff; padding: 1px 6px; } .black { background: #222; color: #fff; padding: 1px 6px; }
@media print { body { margin: 0; } h2 { page-break-after: avoid; } section { page-break-inside: avoid; }
  .wide { font-size: 9px; } @page { size: A4; margin: 15mm; } }
"""


def render(period: Period, secs: list[Section], overdue: list[tuple], units: Units, generated: datetime,
           where: dict[str, tuple[float, float]] | None = None) -> str:
    title = f"城市运行管理考核通报（{_period_text(period)}）"
    parts = [f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)}</title>'
             f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>"
             f'<p class="sub">{period.start.isoformat()} 至 {(period.end - timedelta(days=1)).isoformat()} · 对比上期 '
             f"{escape(_period_text(period.previous()))} · 生成于 {generated:%Y-%m-%d %H:%M}</p>"]
    parts.append("<section><h2>一、红榜与黑榜</h2>" + "".join(_boards_html(s, units) for s in secs if s.board) + "</section>")
    parts.append("<section><h2>二、考核排名</h2>")
    districts = next((sec for sec in secs if sec.kind == "district"), None)
    if where and districts:
        parts.append("<h3>区县考核得分分布</h3>" + district_map(where, districts, units))
    for s in secs:
        if s.board:
            parts.append(f"<h3>{UNIT_KINDS[s.kind]}考核排名</h3>"
                         + bars([(str(name), score) for _, name, score, _, _ in s.board[:30]]) + _board_table(s))
    parts.append("</section><section><h2>三、各单位指标（与上期对比）</h2>")
    for s in secs:
        parts.append(f"<h3>{UNIT_KINDS[s.kind]}</h3>" + _indicator_table(s, units))
    parts.append("</section><section><h2>四、超期最久的案件</h2><table><thead><tr><th>案件</th><th>问题类型</th>"
                 "<th>部门</th><th>区县</th><th>街道</th><th>层级</th><th>升级次数</th><th>状态</th><th>时限</th>"
                 "<th>描述（已脱敏）</th></tr></thead><tbody>")
    for case_id, label, dept, district, street, tier, esc, status, due, text in overdue:
        due_text = "" if due is None else f"{due:%m-%d %H:%M}"
        parts.append(f"<tr><td>{escape(case_id)}</td><td>{escape(label)}</td><td>{escape(dept)}</td>"
                     f"<td>{escape(units.districts.get(district, district))}</td>"
                     f"<td>{escape(units.streets.get(street, street))}</td><td>{LEVELS.get(tier, tier)}</td>"
                     f"<td>{esc}</td><td>{escape(STATUSES.get(status, status))}</td><td>{due_text}</td><td>{escape(text[:60])}</td></tr>")
    parts.append("</tbody></table></section><footer><p><small>指标口径：docs/warehouse.md “考核”一节；考核办法："
                 "evaluation.yaml（权重、达标线、最少案件数）。红色底纹为未达标。</small></p></footer></body></html>")
    return "".join(parts)


def _period_text(period: Period) -> str:
    if period.kind == "month":
        return f"{period.start.year}年{period.start.month}月"
    if period.kind == "week":
        y, w = period.label.split("-W")
        return f"{y}年第{int(w)}周"
    return period.label


def build(wh, rules: Rules, period: Period, units: Units, generated: datetime | None = None,
          where: dict[str, tuple[float, float]] | None = None) -> str:
    """The page; `where`: district centres for the map (none: no map)."""
    secs = sections(wh, rules, period, units)
    return render(period, secs, worst_overdue(wh, period), units, generated or datetime.now(SHANGHAI), where)
