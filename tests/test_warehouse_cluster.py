"""The migrations rendered for a ClickHouse cluster (CITYOPS_CLICKHOUSE_CLUSTER): every statement parses in the
embedded engine (EXPLAIN AST: no cluster runs here), every table is a replicated local one behind a Distributed
one of the old name, every view reads and writes local tables, and without a cluster nothing changes."""
from __future__ import annotations

import re

import pytest

from cityops.warehouse.cluster import Renderer
from cityops.warehouse.migrate import LEDGER, available, planned, statements

CLUSTER = "cityops_province"


def _rendered() -> list[str]:
    return Renderer(CLUSTER).render(LEDGER) + [s for _, _, stmts in planned(CLUSTER) for s in stmts]


@pytest.fixture(scope="module")
def engine(stack_env):
    """The run's embedded engine: chdb serves one data path per process, whichever test opened it first."""
    from cityops.settings import get_settings
    from cityops.warehouse import connect

    return connect(get_settings())


def test_every_rendered_statement_parses(engine):
    failures = {}
    for stmt in _rendered():
        try:
            engine.query(f"EXPLAIN AST {stmt}")
        except Exception as e:  # noqa: BLE001 — collected, reported together
            failures[stmt[:100]] = str(e).splitlines()[0][:200]
    assert not failures, failures


def test_the_parse_check_can_fail(engine):
    with pytest.raises(Exception, match="Syntax error"):
        engine.query(f"EXPLAIN AST CREATE TABLE t ON CLUSTER {CLUSTER} AS t_local ENGINE = Distributed(x")


def test_each_table_is_replicated_and_distributed_and_each_view_local():
    rendered = _rendered()
    tables = {m.group(1) for s in rendered
              if (m := re.match(r"CREATE TABLE IF NOT EXISTS (\w+)_local ON CLUSTER", s))}
    assert {"raw_tickets", "case_history", "case_open", "alerts", "schema_migrations"} <= tables
    for t in tables:
        local = next(s for s in rendered if s.startswith(f"CREATE TABLE IF NOT EXISTS {t}_local "))
        assert re.search(rf"ENGINE = Replicated\w*MergeTree\('/clickhouse/tables/{{shard}}/{{database}}/{t}_local', "
                         r"'\{replica\}'", local), local[:300]
    distributed = [s for s in rendered if "ENGINE = Distributed(" in s]
    # A case's versions on one shard: case_open (from case_history) keeps one row per case there.
    for t in ("case_history", "case_current", "case_open"):
        assert any(s.startswith(f"CREATE TABLE IF NOT EXISTS {t} ON CLUSTER") and f"{t}_local, cityHash64(case_id))"
                   in s for s in distributed), t
    views = [s for s in rendered if s.startswith("CREATE MATERIALIZED VIEW")]
    assert views
    for v in views:
        assert re.search(r" ON CLUSTER \w+ TO \w+_local ", v) and not re.search(r"\b(FROM|JOIN) (?!\w+_local\b)\w+", v), v
    assert all(f"ON CLUSTER {CLUSTER}" in s for s in rendered if not s.startswith("INSERT INTO"))


def test_a_column_changes_both_tables_and_a_setting_the_local_one():
    r = Renderer(CLUSTER)
    r.render("CREATE TABLE IF NOT EXISTS t\n(`a` String)\nENGINE = MergeTree\nORDER BY a")
    assert r.render("ALTER TABLE t ADD COLUMN IF NOT EXISTS `b` String") == [
        f"ALTER TABLE t_local ON CLUSTER {CLUSTER} ADD COLUMN IF NOT EXISTS `b` String",
        f"ALTER TABLE t ON CLUSTER {CLUSTER} ADD COLUMN IF NOT EXISTS `b` String"]
    assert r.render("ALTER TABLE t MODIFY SETTING non_replicated_deduplication_window = 1000") == [
        f"ALTER TABLE t_local ON CLUSTER {CLUSTER} MODIFY SETTING replicated_deduplication_window = 1000"]


def test_a_statement_without_a_cluster_form_is_refused():
    with pytest.raises(ValueError, match="no cluster form"):
        Renderer(CLUSTER).render("CREATE VIEW IF NOT EXISTS v AS SELECT 1")


def test_single_node_runs_the_files_as_written():
    assert planned("") == [(v, p.stem, statements(p.read_text())) for v, p in available()]
    assert not any("ON CLUSTER" in s or "Replicated" in s for _, _, stmts in planned("") for s in stmts)
