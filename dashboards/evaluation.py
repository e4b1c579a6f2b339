"""考核 panels: the ranking boards (rank, 考核得分, the previous period's rank, 提升 / 下降 N 位) and the department ×
indicator matrix, from the `evaluation_daily` rollup and the operator's `evaluation.yaml` (cityops/evaluation.py).

The period is the dashboard's time range in whole days (Asia/Shanghai); the previous period is the same number of
calendar months before when the range is whole months (so November's board moves against October, as the monthly
report does), else the same number of days before."""
from __future__ import annotations

from cityops.evaluation import DEFINITIONS, SUMS, Rules, score_sql

PERIODS = """toDate($__fromTime, 'Asia/Shanghai') AS first_day, toDate($__toTime, 'Asia/Shanghai') AS last_day,
     toStartOfMonth(first_day) = first_day AND toStartOfMonth(last_day + 1) = last_day + 1 AS whole_months,
     if(whole_months, first_day - toIntervalMonth(dateDiff('month', first_day, last_day + 1)),
        first_day - (last_day - first_day + 1)) AS previous_first"""


def _sums(unit_kind: str, where: str) -> str:
    """Each unit's sums in this period (current = 1) and the previous one (current = 0)."""
    return ("SELECT unit, day >= first_day AS current, " + ", ".join(f"sum({c}) AS {c}" for c in SUMS)
            + f"\n    FROM evaluation_daily\n    WHERE unit_kind = '{unit_kind}' AND day BETWEEN previous_first AND "
            f"last_day AND unit != '' AND {where}\n    GROUP BY unit, current")


def ranking_sql(rules: Rules, unit_kind: str, name: str, where: str = "1 = 1") -> str:
    """Ranked units, best first: rank, unit (named by `name`, an expression of `unit`), score, previous rank,
    movement. Ranks are 1, 2, 2, 4 on ties, among the units with a score (enough 办结) in that period; both
    periods are ranked in one pass over the rollup."""
    return f"""WITH {PERIODS}
SELECT rank, {name} AS unit_name, now_score AS score, if(before = 0, NULL, before) AS previous_rank,
       multiIf(before = 0, '新进排名', before > rank, concat('提升 ', toString(before - rank), ' 位'),
               before < rank, concat('下降 ', toString(rank - before), ' 位'), '持平') AS movement
FROM (
    SELECT unit, maxIf(place, current) AS rank, maxIf(score, current) AS now_score, maxIf(place, NOT current) AS before
    FROM (
        SELECT unit, current, score, rank() OVER (PARTITION BY current ORDER BY score DESC) AS place
        FROM (SELECT unit, current, {score_sql(rules)} AS score
              FROM ({_sums(unit_kind, where)}))
        WHERE score IS NOT NULL
    )
    GROUP BY unit
    HAVING countIf(current) > 0
)
ORDER BY rank, unit"""


def _value(d) -> str:
    """The indicator as shown: rates in per cent, hours and counts as they are, 1 decimal; NULL without cases."""
    if d.kind == "count":
        return d.numerator
    num = f"{d.numerator} / 3600" if d.kind == "hours" else f"100 * {d.numerator}"
    return f"if({d.denominator} = 0, NULL, round({num} / {d.denominator}, 1))"


def matrix_sql(rules: Rules) -> str:
    """Every department with a case step in the period: each indicator's value and the 考核得分."""
    values = ",\n       ".join(f"{_value(d)} AS {d.key}_value" for d in DEFINITIONS)   # not a sum's name
    return f"""WITH {PERIODS}
SELECT unit AS department,
       {values},
       {score_sql(rules)} AS score
FROM ({_sums("department", "1 = 1")})
WHERE current = 1
ORDER BY score IS NULL, score DESC, department"""


# 考核得分 (0–100) as the map colours it.
SCORE_STEPS = ((None, "red"), (60, "orange"), (80, "green"))
HEADERS = {"rank": "排名", "unit_name": "单位", "score": "考核得分", "previous_rank": "上期排名",
           "movement": "名次变化",
           **{f"{d.key}_value": f"{d.name}（{'%' if d.kind == 'rate' else '小时' if d.kind == 'hours' else '件'}）"
              for d in DEFINITIONS}}


def panels(panel, kind, rules: Rules, in_district: str) -> tuple:
    """The 考核 panels (`panel` is PanelDef, `kind` its Kind: passed in, as panels.py imports this module)."""
    why = ("所选时段（整月则与上月、否则与等长的上一时段相比）按考核办法（evaluation.yaml）计算的考核得分与排名；"
           "办结数不足的单位不排名")
    return (
        panel("department_evaluation", "部门考核排名", kind.table,
              ranking_sql(rules, "department", "unit"), size=(8, 10), in_district=False, description=why),
        panel("district_evaluation", "区县考核排名", kind.table,
              ranking_sql(rules, "district", "{{district_name(unit)}}"), size=(8, 10), in_district=False,
              description=why),
        panel("district_score_map", "区县考核得分一张图", kind.geomap, f"""
SELECT {{{{district_name(unit_name)}}}} AS district, toFloat64OrNull({{{{district_lat(unit_name)}}}}) AS latitude,
       toFloat64OrNull({{{{district_lon(unit_name)}}}}) AS longitude, score, rank
FROM ({ranking_sql(rules, "district", "unit")})""", unit="none", thresholds=SCORE_STEPS, size=(12, 12),
              in_terminal=False, in_district=False, description=why + "；点的颜色：60分以下红、80分以下橙、其上绿"),
        panel("street_evaluation", "街道考核排名", kind.table,
              ranking_sql(rules, "street", "{{street_name(unit)}}", in_district), size=(8, 10), description=why),
        panel("department_indicators", "部门考核指标（部门 × 指标）", kind.table, matrix_sql(rules), size=(24, 10),
              in_district=False,
              description="各部门所选时段的按期办结率、签收及时率、满意率、重办率、主动发现率、小事不出社区率、回潮率、"
                          "平均办结时长与虚假办结数，及考核得分；分子分母见 docs/warehouse.md 考核一节"),
    )
