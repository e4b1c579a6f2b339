"""A batch the sink inserts again after a crash (the same insert_deduplication_token) is dropped by the raw table,
and must be dropped by every rollup a materialized view feeds from it too: chdb runs the views for a deduplicated
block, so a rollup without its own deduplication window would count the batch twice (the cockpit's counts inflated
after every sink restart)."""
from __future__ import annotations

import re

import pytest

from tests.simulated import sim_database


@pytest.fixture(scope="module")
def warehouse(stack_env):
    return sim_database("rollup_replay", 20_000)


def views(client) -> list[tuple[str, str, str]]:
    """(view, source table, target table) of every materialized view."""
    rows = client.query("SELECT name, create_table_query FROM system.tables "
                        "WHERE database = currentDatabase() AND engine = 'MaterializedView'").result_rows
    return [(name, re.search(r"\bFROM (?:\w+\.)?(\w+)", q).group(1), re.search(r" TO (?:\w+\.)?(\w+)", q).group(1))
            for name, q in rows]


def contents(client, table: str) -> list:
    return client.query(f"SELECT * FROM {table} FINAL ORDER BY ALL").result_rows


def test_every_rollup_drops_a_replayed_batch(warehouse):
    found = views(warehouse)
    assert {v for v, _, _ in found} >= {"case_daily_mv", "events_per_minute_tickets", "hotspot_monthly_mv"}
    counted_twice = []
    for source in sorted({s for _, s, _ in found}):
        targets = sorted({t for _, s, t in found if s == source})
        replay = f"INSERT INTO {source} SELECT * FROM {source} ORDER BY ALL LIMIT 50"
        warehouse.command(replay, settings={"insert_deduplication_token": f"replay-{source}"})
        once = {t: contents(warehouse, t) for t in targets}
        warehouse.command(replay, settings={"insert_deduplication_token": f"replay-{source}"})
        counted_twice += [f"{source} → {t}" for t in targets if contents(warehouse, t) != once[t]]
    assert counted_twice == []
