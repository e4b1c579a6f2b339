"""Top up the rollups a crash left short.

ClickHouse writes an insert's table part and then each materialized view's part, not atomically: a sink
killed in between leaves rows stored without their rollup rows, and the next sink resumes after what the
table holds (docs/warehouse.md, idempotence). Only rows not yet committed
to Kafka can be in that state, so on resume, for the partitions stored ahead of their committed offset,
each view of the table is recomputed from the table for the keys those rows fall in, and the difference
is inserted: summed columns get what is missing, max columns their maximum, a replacing view its rows
again. Running it twice changes nothing. Views, targets and keys come from `system.tables`, so a new
rollup is covered without code here; a view's target key must be fed by that view alone.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

_TARGET = re.compile(r"\bTO\s+(?:`?\w+`?\.)?`?(\w+)`?")
_SIMPLE = re.compile(r"SimpleAggregateFunction\((\w+),")


@dataclass(frozen=True)
class View:
    name: str
    select: str                  # the view's SELECT over its source table
    target: str
    replacing: bool              # target keeps the latest row per key: re-inserting is enough
    keys: tuple[str, ...]
    values: dict[str, str]       # column → how the target merges it: "sum", "max" or "latest" (replacing)


def views_of(wh, table: str) -> list[View]:
    deps = wh.query("SELECT dependencies_table FROM system.tables WHERE database = currentDatabase() "
                    "AND name = {t:String}", parameters={"t": table}).result_rows
    views = []
    for name in (deps[0][0] if deps else []):
        select, create = wh.query("SELECT as_select, create_table_query FROM system.tables WHERE "
                                  "database = currentDatabase() AND name = {n:String}",
                                  parameters={"n": name}).result_rows[0]
        target = _TARGET.search(create).group(1)
        engine, sorting = wh.query("SELECT engine, sorting_key FROM system.tables WHERE database = currentDatabase() "
                                   "AND name = {n:String}", parameters={"n": target}).result_rows[0]
        keys, replacing = tuple(k.strip() for k in sorting.split(",")), engine.startswith("Replacing")
        columns = wh.query("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                           "AND table = {n:String} ORDER BY position", parameters={"n": target}).result_rows
        values = {c: "latest" if replacing else m.group(1) if (m := _SIMPLE.match(t)) else "sum"
                  for c, t in columns if c not in keys}
        views.append(View(name, select, target, replacing, keys, values))
    return views


# A top-up is what is missing now, never a replay: the rollups' deduplication window (migrations 0010, 0011) must not
# take it for an earlier top-up of the same rows. An INSERT … SELECT turns deduplication off; inserted rows need a
# token of their own, as the embedded engine deduplicates them by content even with insert_deduplicate = 0.
WHOLE = {"insert_deduplicate": 0}


def _fresh() -> dict[str, str]:
    return {"insert_deduplication_token": f"top-up {uuid.uuid4()}"}


def top_up(wh, table: str, uncommitted: str) -> dict[str, int]:
    """Make every view of `table` whole again for the rows `uncommitted` (a WHERE condition) selects.
    Returns the rows added per summed target (a replacing target just gets its rows again)."""
    added = {}
    for v in views_of(wh, table):
        def over(cond: str) -> str:  # the view's SELECT over the rows matching `cond` only
            return re.sub(rf"\bFROM\s+(?:`?\w+`?\.)?`?{table}`?(?=\s|$)",
                          f"FROM (SELECT * FROM {table} WHERE {cond}) AS {table}", v.select, count=1)

        if v.replacing:
            cols = ", ".join([*v.keys, *v.values])
            wh.command(f"INSERT INTO {v.target} ({cols}) SELECT {cols} FROM ({over(uncommitted)})", settings=WHOLE)
            continue
        keys = ", ".join(v.keys)
        touched = f"({keys}) IN (SELECT {keys} FROM ({over(uncommitted)}))"
        # Every bucket a view groups by (minute, hour, day) lies within the rows' whole days.
        days = (f"occurred_at >= (SELECT toStartOfDay(min(occurred_at)) FROM {table} WHERE {uncommitted}) AND "
                f"occurred_at < (SELECT toStartOfDay(max(occurred_at)) + INTERVAL 1 DAY FROM {table} "
                f"WHERE {uncommitted})")
        have = ", ".join(f"{f}({c}) AS {c}" for c, f in v.values.items())
        diff = ", ".join(f"if(e.{c} > a.{c}, e.{c} - a.{c}, 0)" if f == "sum" else f"e.{c}"
                         for c, f in v.values.items())
        # Float sums differ in the last bits when added in another order: that is not a missing row. A max or
        # a bitwise OR is exact, and a bit missing from a mask can be worth less than that tolerance.
        short = " OR ".join(f"e.{c} > a.{c} + 1e-9 * abs(e.{c})" if f == "sum" else f"e.{c} != a.{c}"
                            for c, f in v.values.items())
        missing = (f"SELECT {keys}, {diff} FROM (SELECT * FROM ({over(days)}) WHERE {touched}) AS e "
                   f"LEFT JOIN (SELECT {keys}, {have} FROM {v.target} WHERE {touched} GROUP BY {keys}) AS a "
                   f"USING ({keys}) WHERE {short}")
        rows = wh.query(missing).result_rows    # a batch's worth of keys at most: read once, insert those
        if rows:
            wh.insert(v.target, rows, column_names=[*v.keys, *v.values], settings=_fresh())
            added[v.target] = added.get(v.target, 0) + len(rows)
    return added
