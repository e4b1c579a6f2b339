"""考核: indicators of departments, districts, streets and communities for a period, the composite 考核得分,
ranks, movement against the previous period (提升 / 下降 N 位), 红榜 and 黑榜.

Indicator names follow GB/T 30428.4 where they fit. Sums per unit come from the `evaluation_daily` rollup
(cityops/warehouse/evaluation.py); weights, pass lines and minimum case counts from `data/evaluation.yaml`."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cityops.errors import UserError

DEFAULT_PATH = Path(__file__).parent / "data" / "evaluation.yaml"
UNIT_KINDS = {"department": "部门", "district": "区县", "street": "街道", "community": "社区"}

# The rollup's sums (one column each in evaluation_daily).
SUMS = ("received", "found_active", "recurring", "resolved", "resolved_on_time", "resolved_local",
        "dispatched_resolved", "accepted_in_time", "resolve_seconds", "reopened", "false_closures", "visited",
        "satisfied")


@dataclass(frozen=True)
class Definition:
    key: str
    name: str
    numerator: str
    denominator: str
    higher_is_better: bool
    kind: str = "rate"          # rate (numerator / denominator), hours (mean), count (numerator alone)


DEFINITIONS = (
    Definition("on_time", "按期办结率", "resolved_on_time", "resolved", True),
    Definition("accepted_in_time", "签收及时率", "accepted_in_time", "dispatched_resolved", True),
    Definition("satisfaction", "满意率", "satisfied", "visited", True),
    Definition("reopen", "重办率", "reopened", "resolved", False),
    Definition("active_discovery", "主动发现率", "found_active", "received", True),
    Definition("local_resolution", "小事不出社区率", "resolved_local", "resolved", True),
    Definition("recurrence", "回潮率", "recurring", "received", False),
    Definition("resolve_hours", "平均办结时长", "resolve_seconds", "dispatched_resolved", False, "hours"),
    Definition("false_closures", "虚假办结数", "false_closures", "resolved", False, "count"),
)
BY_KEY = {d.key: d for d in DEFINITIONS}


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weight: float = Field(ge=0)
    pass_line: float = Field(ge=0)
    min_cases: int = Field(1, ge=1)
    penalty: float = Field(20, ge=0, le=100)


class Rules(BaseModel):
    """The operator's 考核办法."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    board_size: int = Field(3, ge=1)
    min_resolved: int = Field(1, ge=0)
    indicators: dict[str, Rule]

    @model_validator(mode="after")
    def _every_indicator_once(self) -> Rules:
        unknown = sorted(set(self.indicators) - set(BY_KEY))
        if unknown:
            raise ValueError(f"unknown indicator {unknown[0]!r}; known: {', '.join(BY_KEY)}")
        missing = [k for k in BY_KEY if k not in self.indicators]
        if missing:
            raise ValueError(f"indicator {missing[0]!r} has no rule")
        if not any(r.weight for r in self.indicators.values()):
            raise ValueError("every weight is 0: at least one indicator must count")
        return self


def load_rules(path: Path | str = DEFAULT_PATH) -> Rules:
    """The rules in `path`; UserError with one line saying what to fix."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror})") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{where} not valid YAML ({getattr(e, 'problem', None) or e})") from e
    try:
        return Rules.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "top level"
        raise UserError(f"{path}: {where}: {err['msg']}") from e


@dataclass(frozen=True)
class Period:
    """Days [start, end) with the text they were asked as: 2026-11-05, 2026-W45, 2026-11 or 30d:2026-11-30."""

    kind: str
    start: date
    end: date
    label: str

    def previous(self) -> Period:
        if self.kind == "month":
            prior = self.start - timedelta(days=1)
            return month(f"{prior.year:04d}-{prior.month:02d}")
        span = self.end - self.start
        return _of(self.kind, self.start - span, self.start)


def _of(kind: str, start: date, end: date) -> Period:
    if kind == "day":
        return Period(kind, start, end, start.isoformat())
    if kind == "week":
        y, w, _ = start.isocalendar()
        return Period(kind, start, end, f"{y:04d}-W{w:02d}")
    return Period(kind, start, end, f"30d:{(end - timedelta(days=1)).isoformat()}")


def day(text: str) -> Period:
    try:
        d = date.fromisoformat(text)
    except ValueError:
        raise UserError(f"day {text!r}: write it as YYYY-MM-DD, e.g. 2026-11-05") from None
    return _of("day", d, d + timedelta(days=1))


def week(text: str) -> Period:
    m = re.fullmatch(r"(\d{4})-W(\d{2})", text)
    try:
        start = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1) if m else None
    except ValueError:
        start = None
    if start is None:
        raise UserError(f"week {text!r}: write it as an ISO week YYYY-Www, e.g. 2026-W45")
    return _of("week", start, start + timedelta(days=7))


def month(text: str) -> Period:
    m = re.fullmatch(r"(\d{4})-(\d{2})", text)
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise UserError(f"month {text!r}: write it as YYYY-MM, e.g. 2026-11")
    y, mo = int(m.group(1)), int(m.group(2))
    end = date(y + mo // 12, mo % 12 + 1, 1)
    return Period("month", date(y, mo, 1), end, text)


def rolling30(last_day: str) -> Period:
    end = day(last_day).end
    return _of("rolling30", end - timedelta(days=30), end)


@dataclass(frozen=True)
class Indicator:
    key: str
    name: str
    numerator: float
    denominator: int
    value: float | None          # None: no case to measure it on
    score: float | None          # None: left out (below min_cases or weight 0)
    passed: bool | None


@dataclass(frozen=True)
class UnitResult:
    unit: str
    indicators: dict[str, Indicator]
    score: float | None          # 考核得分, 0–100; None: not ranked (too few 办结)
    rank: int | None
    previous_rank: int | None

    @property
    def movement(self) -> int | None:
        """Places gained since the previous period (negative: lost); None when not ranked in both."""
        if self.rank is None or self.previous_rank is None:
            return None
        return self.previous_rank - self.rank

    def movement_text(self) -> str:
        if self.rank is None:
            return "未排名"
        if self.previous_rank is None:
            return "新进排名"
        m = self.movement
        return f"提升 {m} 位" if m > 0 else f"下降 {-m} 位" if m < 0 else "持平"


def indicator(d: Definition, rule: Rule, sums: dict[str, int]) -> Indicator:
    num, den = sums.get(d.numerator, 0), sums.get(d.denominator, 0)
    if d.kind == "count":
        value: float | None = float(num)
    elif d.kind == "hours":
        num = num / 3600
        value = num / den if den else None
    else:
        value = num / den if den else None
    if value is None:
        return Indicator(d.key, d.name, num, den, None, None, None)
    passed = value >= rule.pass_line if d.higher_is_better else value <= rule.pass_line
    if d.kind == "count":
        score = max(0.0, 100 - rule.penalty * value)
    elif d.kind == "hours":
        score = 100.0 if value <= rule.pass_line else 100 * rule.pass_line / value
    else:
        score = 100 * (value if d.higher_is_better else 1 - value)
    counted = rule.weight > 0 and den >= rule.min_cases
    return Indicator(d.key, d.name, num, den, value, score if counted else None, passed)


def score_of(rules: Rules, indicators: dict[str, Indicator]) -> float | None:
    """Weighted mean of the indicators that count, to 2 decimals; None when none does. Added in DEFINITIONS
    order, as `score_sql` adds them, so both give the same float."""
    total, weight = 0.0, 0.0
    for d in DEFINITIONS:
        i = indicators[d.key]
        if i.score is not None:
            total += rules.indicators[d.key].weight * i.score
            weight += rules.indicators[d.key].weight
    return round(total / weight, 2) if weight else None


def score_sql(rules: Rules) -> str:
    """`score_of` as a ClickHouse expression over columns named as SUMS (a unit's sums for the period): what
    the cockpit's ranking panels compute, so they and the report agree."""
    terms, weights = [], []
    for d in DEFINITIONS:
        r = rules.indicators[d.key]
        if not r.weight:
            continue
        num, den = d.numerator, d.denominator
        if d.kind == "count":
            score = f"greatest(0, 100 - {r.penalty!r} * {num})"
        elif d.kind == "hours":
            hours = f"({num} / 3600 / {den})"
            score = f"if({hours} <= {r.pass_line!r}, 100, 100 * {r.pass_line!r} / {hours})"
        else:
            score = f"100 * ({num} / {den})" if d.higher_is_better else f"100 * (1 - {num} / {den})"
        counted = f"{den} >= {r.min_cases}"
        terms.append(f"if({counted}, {r.weight!r} * {score}, 0)")
        weights.append(f"if({counted}, {r.weight!r}, 0)")
    total, weight = " + ".join(terms), " + ".join(weights)
    return (f"if(resolved >= {rules.min_resolved} AND ({weight}) > 0, "
            f"round(({total}) / ({weight}), 2), NULL)")


def _scored(rules: Rules, sums: dict[str, dict[str, int]]) -> dict[str, tuple[dict[str, Indicator], float | None]]:
    out = {}
    for unit, s in sums.items():
        inds = {d.key: indicator(d, rules.indicators[d.key], s) for d in DEFINITIONS}
        ranked = s.get("resolved", 0) >= rules.min_resolved
        out[unit] = (inds, score_of(rules, inds) if ranked else None)
    return out


def _ranks(scored: dict[str, tuple[dict, float | None]]) -> dict[str, int]:
    """Competition ranking (1, 2, 2, 4) by score, highest first."""
    order = sorted((-s, u) for u, (_, s) in scored.items() if s is not None)
    ranks, prev, rank = {}, None, 0
    for i, (neg, unit) in enumerate(order, 1):
        if neg != prev:
            rank, prev = i, neg
        ranks[unit] = rank
    return ranks


def evaluate(rules: Rules, sums: dict[str, dict[str, int]], previous: dict[str, dict[str, int]] | None = None
             ) -> list[UnitResult]:
    """Every unit of `sums` with its indicators, score and rank, best first (unranked last, by unit)."""
    now = _scored(rules, sums)
    ranks = _ranks(now)
    before = _ranks(_scored(rules, previous or {}))
    results = [UnitResult(u, inds, score, ranks.get(u), before.get(u)) for u, (inds, score) in now.items()]
    return sorted(results, key=lambda r: (r.rank is None, r.rank or 0, r.unit))


def boards(rules: Rules, results: list[UnitResult]) -> tuple[list[UnitResult], list[UnitResult]]:
    """红榜 (the best `board_size` ranked units) and 黑榜 (the worst, worst first), never sharing a unit."""
    ranked = [r for r in results if r.rank is not None]
    n = min(rules.board_size, len(ranked) // 2 or len(ranked))
    red = ranked[:n]
    black = [r for r in reversed(ranked) if r not in red][:n] if len(ranked) > 1 else []
    return red, black
