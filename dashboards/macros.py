"""Expands a panel's SQL the way Grafana and grafana-clickhouse-datasource do, so the queries can run without
Grafana (query checks, the terminal cockpit, the benchmark).

Order and forms as the plugin implements them:
1. frontend, `applyConditionalAll`: `$__conditionalAll(cond, $var)` → `1=1` when the variable is '' or
   All (`$__all`), else `cond`;
2. frontend, template variables: `${var}` / `$var` → the value (a multi-value list → `'a','b'`);
3. backend (pkg/macros/macros.go), with the time range in Unix seconds:
   `$__timeFilter(c)` → `c >= toDateTime(from) AND c <= toDateTime(to)`,
   `$__timeFilter_ms(c)` → the same with `fromUnixTimestamp64Milli(ms)`,
   `$__dateFilter(c)` → `c >= toDate('YYYY-MM-DD') AND c <= toDate(…)` (UTC dates),
   `$__fromTime` / `$__toTime` → `toDateTime(s)`, `$__fromTime_ms` / `$__toTime_ms` → `fromUnixTimestamp64Milli(ms)`,
   `$__timeInterval(c)` → `toStartOfInterval(toDateTime(c), INTERVAL n second)`, `$__interval_s` → `n`
   (n = the panel interval, at least 1 s).
The backend finds a macro's arguments up to the first `)`, so arguments must be plain column names."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

ALL = "$__all"


class MacroError(ValueError):
    pass


@dataclass(frozen=True)
class QueryContext:
    """What Grafana sends with a query: the time range, the interval and the variables' current values."""

    start: datetime
    end: datetime
    interval_s: int = 60
    variables: dict[str, str | list[str]] = field(default_factory=dict)

    @classmethod
    def last(cls, span: timedelta, interval_s: int = 60, now: datetime | None = None, **variables) -> QueryContext:
        end = now or datetime.now(timezone.utc)
        return cls(end - span, end, interval_s, variables)


def expand(sql: str, ctx: QueryContext) -> str:
    return _backend(_variables(_conditional_all(sql, ctx), ctx), ctx)


def _macro_args(sql: str, open_paren: int) -> tuple[list[str], int]:
    """Arguments of the macro whose `(` is at `open_paren` (nesting counted), and the index after `)`."""
    depth, start, args = 0, open_paren + 1, []
    for i in range(open_paren, len(sql)):
        c = sql[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i])
                return args, i + 1
        elif c == "," and depth == 1:
            args.append(sql[start:i])
            start = i + 1
    raise MacroError(f"unclosed macro at: {sql[open_paren - 20:open_paren + 20]!r}")


_VAR_NAME = re.compile(r"\$\{?(\w+)\}?")


def _conditional_all(sql: str, ctx: QueryContext) -> str:
    macro = "$__conditionalAll("
    while (i := sql.rfind(macro)) != -1:
        args, end = _macro_args(sql, i + len(macro) - 1)
        if len(args) != 2:
            raise MacroError(f"$__conditionalAll takes (condition, $variable), got {len(args)} arguments")
        m = _VAR_NAME.search(args[1].strip())
        value = ctx.variables.get(m.group(1), "") if m else "x"
        value = ",".join(value) if isinstance(value, list) else value
        sql = sql[:i] + ("1=1" if value in ("", ALL) else args[0]) + sql[end:]
    return sql


def _variables(sql: str, ctx: QueryContext) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        if name.startswith("__") or name not in ctx.variables:
            return m.group(0)
        v = ctx.variables[name]
        return "'" + "','".join(v) + "'" if isinstance(v, list) else v

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, sql)


def _dt(t: datetime) -> str:
    return f"toDateTime({int(t.timestamp())})"


def _dt64(t: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(t.timestamp() * 1000)})"


def _date(t: datetime) -> str:
    return f"toDate('{t.astimezone(timezone.utc):%Y-%m-%d}')"


def _backend(sql: str, ctx: QueryContext) -> str:
    n = max(int(ctx.interval_s), 1)
    with_arg = {
        "timeFilter": lambda c: f"{c} >= {_dt(ctx.start)} AND {c} <= {_dt(ctx.end)}",
        "timeFilter_ms": lambda c: f"{c} >= {_dt64(ctx.start)} AND {c} <= {_dt64(ctx.end)}",
        "dateFilter": lambda c: f"{c} >= {_date(ctx.start)} AND {c} <= {_date(ctx.end)}",
        "timeInterval": lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {n} second)",
        "timeInterval_ms": lambda c: f"toStartOfInterval(toDateTime64({c}, 3), INTERVAL {n * 1000} millisecond)",
    }
    plain = {
        "fromTime_ms": _dt64(ctx.start), "toTime_ms": _dt64(ctx.end),
        "fromTime": _dt(ctx.start), "toTime": _dt(ctx.end), "interval_s": str(n),
    }

    def sub(m: re.Match) -> str:
        name, arg = m.group(1), m.group(2)
        if name in with_arg:
            if arg is None or not arg.strip() or "(" in arg:
                raise MacroError(f"$__{name} needs one plain column argument, got {arg!r}")
            return with_arg[name](arg.strip())
        if name in plain:
            return plain[name] + (f"({arg})" if arg is not None else "")
        raise MacroError(f"unknown macro $__{name}")

    out = re.sub(r"\$__(\w+?)(?:\(([^)]*)\))?(?!\w)", sub, sql)
    if re.search(r"\$\{?\w", out):
        raise MacroError(f"unexpanded variable or macro left in: {out[:200]}")
    return out
