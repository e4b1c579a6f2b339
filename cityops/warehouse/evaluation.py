"""考核 sums for a period: the days of `evaluation_daily` added up per unit, never case_history (docs/warehouse.md)."""
from __future__ import annotations

from cityops.evaluation import SUMS, UNIT_KINDS, Period, Rules, UnitResult, evaluate

PERIOD_SUMS = (
    "SELECT unit, " + ", ".join(f"sum({c}) AS {c}" for c in SUMS) + " FROM evaluation_daily "
    "WHERE unit_kind = %(kind)s AND day >= %(start)s AND day < %(end)s AND unit != '' "
    "GROUP BY unit ORDER BY unit"
)


def period_sums(wh, unit_kind: str, period: Period) -> dict[str, dict[str, int]]:
    """unit → {sum column → value} for the units with any case step in the period."""
    if unit_kind not in UNIT_KINDS:
        raise ValueError(f"unit kind {unit_kind!r}: one of {', '.join(UNIT_KINDS)}")
    rows = wh.query(PERIOD_SUMS, parameters={"kind": unit_kind, "start": period.start, "end": period.end})
    return {r[0]: dict(zip(SUMS, map(int, r[1:]))) for r in rows.result_rows}


def ranking(wh, rules: Rules, unit_kind: str, period: Period) -> list[UnitResult]:
    """Every unit's indicators, score and rank for the period, with its rank in the previous one."""
    return evaluate(rules, period_sums(wh, unit_kind, period), period_sums(wh, unit_kind, period.previous()))
