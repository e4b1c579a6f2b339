"""The migrated warehouse matches the models (column names and types), and drift is reported."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import Field

from cityops.models.cases import CaseUpdate
from cityops.warehouse.columns import column_type
from cityops.warehouse.migrate import available, drift, statements
from cityops.warehouse.schema import CASE_CURRENT, RAW_TICKETS, TABLES

CLI = str(Path(sys.executable).parent / "cityops")


@pytest.fixture(scope="module")
def warehouse(stack_env):
    from cityops.settings import get_settings
    from cityops.warehouse import connect, migrate

    wh = connect(get_settings())
    migrate(wh)
    return wh


@pytest.mark.integration
def test_migrated_tables_match_the_models(warehouse):
    assert drift(warehouse) == []


@pytest.mark.integration
def test_a_model_change_without_migration_is_caught(warehouse):
    class CaseWithField(CaseUpdate):
        priority: int | None = Field(None)

    changed = dataclasses.replace(CASE_CURRENT, topic=dataclasses.replace(CASE_CURRENT.topic, value=CaseWithField))
    assert drift(warehouse, [changed]) == [
        "case_current.priority: in CaseWithField, missing in the warehouse (Nullable(Int64))"]


@pytest.mark.integration
def test_migrations_are_recorded_once(warehouse):
    from cityops.warehouse import migrate

    assert migrate(warehouse) == []
    versions = [r[0] for r in warehouse.query("SELECT version FROM schema_migrations FINAL ORDER BY version").result_rows]
    assert versions == [v for v, _ in available()]


def test_personal_fields_never_become_columns():
    cols = RAW_TICKETS.columns()
    assert "caller_phone" not in cols and "caller_name" not in cols and cols["caller_hash"] == "String"
    assert all("phone" not in c and "name" not in c for t in TABLES for c in t.columns())


def test_type_mapping():
    f = CaseUpdate.model_fields
    assert column_type("status", f["status"]) == "LowCardinality(String)"
    assert column_type("due_at", f["due_at"]) == "Nullable(DateTime64(3, 'Asia/Shanghai'))"
    assert column_type("lat", f["lat"]) == "Nullable(Float64)"
    assert column_type("grid_code", f["grid_code"]) == "LowCardinality(String)"
    assert column_type("text", f["text"]) == "String"


def test_statements_split_on_line_end_semicolons():
    assert statements("-- c\nCREATE TABLE a (x String DEFAULT ';');\n\nSELECT 1;\n") == [
        "CREATE TABLE a (x String DEFAULT ';')", "SELECT 1"]


@pytest.mark.integration
def test_query_says_who_holds_the_embedded_warehouse(subprocess_env, tmp_path):
    env = {**subprocess_env, "CITYOPS_DATA_DIR": str(tmp_path), "CITYOPS_CLICKHOUSE_URL": f"chdb://{tmp_path / 'wh'}"}
    holder = subprocess.Popen([sys.executable, "-c", "import time; from cityops.settings import get_settings; "
                               "from cityops.warehouse import connect; connect(get_settings()).command('SELECT 1'); "
                               "print('open', flush=True); time.sleep(120)"],
                              env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "sink.pid").write_text(str(holder.pid))
        r = subprocess.run([CLI, "query", "SELECT 1"], env=env, capture_output=True, text=True, timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode != 0
    assert f"open in the sink process (pid {holder.pid})" in " ".join(r.stderr.split())
    assert len(r.stderr.strip().splitlines()) <= 3 and "Traceback" not in r.stderr
