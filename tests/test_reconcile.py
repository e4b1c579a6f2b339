"""Rollups a crash left short are topped up from the tables (sinks/reconcile.py), on the real embedded
engine: rows are stored while views are detached, which is what a SIGKILL between a table's part and its
views' parts leaves behind."""
from __future__ import annotations

import pytest

from sinks.reconcile import top_up, views_of
from tests.simulated import sim_database

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wh(stack_env):
    return sim_database("reconcile_sim", 3000)


def gaps(wh, table: str) -> dict[str, int]:
    """Per view of `table`: keys whose rollup differs from the view's SELECT over the whole table."""
    out = {}
    for v in views_of(wh, table):
        keys = ", ".join(v.keys)
        if v.replacing:
            q = (f"SELECT count() FROM (SELECT {keys}, max(version) AS version FROM ({v.select}) GROUP BY {keys}) AS e "
                 f"LEFT JOIN (SELECT {keys}, max(version) AS version FROM {v.target} GROUP BY {keys}) AS a "
                 f"USING ({keys}) WHERE e.version != a.version")
        else:
            have = ", ".join(f"{f}({c}) AS {c}" for c, f in v.values.items())
            differ = " OR ".join(f"abs(e.{c} - a.{c}) > 1e-9 * abs(e.{c})" if f == "sum" else f"e.{c} != a.{c}"
                                 for c, f in v.values.items())
            q = (f"SELECT count() FROM ({v.select}) AS e LEFT JOIN (SELECT {keys}, {have} FROM {v.target} "
                 f"GROUP BY {keys}) AS a USING ({keys}) WHERE {differ}")
        out[v.name] = wh.query(q).result_rows[0][0]
    return out


def store_without(wh, table: str, views: list[str], rows: int, shift: int) -> None:
    """Rows of a batch stored in `table` while `views` missed them (case updates as later versions)."""
    later = ""
    if table == "case_history":   # later versions of the cases, or (for the hot spots) new cases
        later = (f", concat(case_id, '-{shift}') AS case_id" if "hotspot_monthly_mv" in views
                 else ", version + 1000 AS version")
    for v in views:
        wh.command(f"DETACH TABLE {v}")
    try:
        wh.command(f"INSERT INTO {table} SELECT * REPLACE (kafka_offset + {shift} AS kafka_offset{later}) "
                   f"FROM {table} ORDER BY kafka_offset LIMIT {rows}",
                   settings={"insert_deduplication_token": f"{table} {shift} {views}"})  # a batch's, as the sink's
    finally:
        for v in views:
            wh.command(f"ATTACH TABLE {v}")


@pytest.mark.parametrize("table, missed", [
    ("sensor_events", ["events_per_minute_sensors", "sensor_hourly_mv"]),
    ("sensor_events", ["sensor_hourly_mv"]),               # the kill fell between two views
    ("raw_tickets", ["events_per_minute_tickets"]),
    ("case_history", ["case_daily_mv", "case_open_mv"]),   # hotspot_monthly counts first versions only
    ("case_history", ["hotspot_monthly_mv"]),              # a day mask (OR) and day counts
    ("case_history", ["evaluation_daily_mv", "hotspot_monthly_mv"]),   # 考核 sums per unit and day, new cases
])
def test_views_short_of_uncommitted_rows_are_topped_up_once(wh, table, missed):
    assert not any(gaps(wh, table).values()), "the simulated warehouse starts consistent"
    shift = 10_000_000 + 1_000_000 * len(missed)
    store_without(wh, table, missed, 200, shift)
    short = gaps(wh, table)
    assert {v for v, n in short.items() if n} == set(missed), short
    where = f"kafka_offset >= {shift}"
    added = top_up(wh, table, where)
    assert not any(gaps(wh, table).values()), gaps(wh, table)
    summed = {v.target for v in views_of(wh, table) if v.name in missed and not v.replacing}
    assert set(added) == summed and all(added.values())
    assert top_up(wh, table, where) == {}                  # again: nothing more to add
    assert not any(gaps(wh, table).values())


def test_a_top_up_like_an_earlier_one_is_not_taken_for_a_replay(wh):
    """Two crashes can leave equal shortfalls (other cases, same grid, label and day): the second top-up's rows
    equal the first's, yet they are missing now, and the rollup's deduplication window must not drop them."""
    for shift in (30_000_000, 31_000_000):
        store_without(wh, "case_history", ["hotspot_monthly_mv"], 50, shift)
        assert top_up(wh, "case_history", f"kafka_offset >= {shift}")
        assert not any(gaps(wh, "case_history").values()), gaps(wh, "case_history")
