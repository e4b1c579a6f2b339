"""The migrated warehouse matches the models (column names and types), and drift is reported."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import Field

from cityops.models.cases import CaseUpdate
from cityops.warehouse.columns import column_type
from cityops.warehouse.migrate import available, drift, statements
from cityops.warehouse.schema import CASE_CURRENT, RAW_TICKETS, TABLES, tables_of

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


# -- the closed loop: case events, every topic's authority, the upgrade to migration 0008 ----------------------
def _case_events(prefix: str) -> list[bytes]:
    from cityops.models.events import CaseEvent

    at = "2026-07-15T{:02d}:00:00+08:00"
    events = [CaseEvent(event_id=f"{prefix}-ev-1", case_id=f"{prefix}-C1", status="dispatched", system="szcg",
                        occurred_at=at.format(9), department="城管执法", tier="street"),
              CaseEvent(event_id=f"{prefix}-ev-2", case_id=f"{prefix}-C1", status="resolved", system="department-api",
                        occurred_at=at.format(10), resolution_mode="服务",
                        note="已清理，联系人李四 13812345678", photo_url="https://img.example.cn/p/1.jpg?tel=13812345678"),
              CaseEvent(event_id=f"{prefix}-ev-3", case_id=f"S-{prefix}-9", status="reopened", system="device",
                        occurred_at=at.format(11), false_closure=True)]
    return [e.to_bytes() for e in events]


def test_every_topic_the_sink_reads_has_its_tables():
    """The sink resumes from each topic's last table (its authority): a topic without one cannot be stored."""
    from sinks.config import TOPICS

    assert all(tables_of(t.name) for t in TOPICS), [t.name for t in TOPICS if not tables_of(t.name)]
    assert [t.name for t in tables_of("case.events")] == ["raw_case_events"]


def test_case_events_take_the_fast_path_masked_and_stored_once():
    from cityops.models.events import CaseEvent
    from sinks.batch import Batch
    from sinks.decode import Decoder
    from sinks.dedup import Dedup
    from sinks.fast import shape_of
    from cityops.topics import CASE_EVENTS

    assert shape_of(CaseEvent) is not None
    values = _case_events("ce01")
    batch = Batch()
    for i, v in enumerate(values + values[:1]):     # the first one resent
        batch.add("case.events", 0, 100 + i, b"k", v)
    [fast] = Decoder((CASE_EVENTS,), "test-key").inserts(batch)
    [slow] = Decoder((CASE_EVENTS,), "test-key", fast=False).inserts(batch)
    def comparable(rows):   # the fast path passes timestamps on as their text, the model as datetimes
        return [[int((datetime.fromisoformat(v) if isinstance(v, str) else v).timestamp() * 1000)
                 if "DateTime" in typ else v for v, typ in zip(row, fast.table.columns().values())] for row in rows]

    assert fast.table.name == "raw_case_events" and comparable(fast.rows) == comparable(slow.rows)
    row = dict(zip(fast.table.columns(), fast.rows[1]))
    assert "13812345678" not in row["note"] + row["photo_url"] and "李四" not in row["note"]
    assert row["status"] == "resolved" and row["resolution_mode"] == "服务" and row["tier"] == ""
    [kept] = Dedup(capacity=10).filter([fast])
    assert len(kept) == 3 and kept.identities == ["ce01-ev-1", "ce01-ev-2", "ce01-ev-3"]


@pytest.mark.integration
def test_case_events_are_stored_and_the_sink_resumes_after_them(stack_env):
    import threading

    from cityops.topics import CASE_EVENTS
    from sinks.batch import Batch
    from sinks.decode import Decoder
    from sinks.service import resume_offsets
    from sinks.store import Store
    from tests.simulated import sim_database

    wh = sim_database("case_events_store", 0)
    batch = Batch()
    for i, v in enumerate(_case_events("ce02")):
        batch.add("case.events", 2, 500 + i, b"k", v)
    for ins in Decoder((CASE_EVENTS,), "test-key").inserts(batch):
        Store(wh, threading.Event()).insert(ins, batch)
    rows = wh.query("SELECT case_id, status, false_closure, _partition_id FROM raw_case_events "
                    "ORDER BY occurred_at").result_rows
    assert rows == [("ce02-C1", "dispatched", False, "202607"), ("ce02-C1", "resolved", False, "202607"),
                    ("S-ce02-9", "reopened", True, "202607")]
    assert resume_offsets(wh, CASE_EVENTS) == {2: 503}


def _database(name: str):
    """A database of the test's own in the pytest run's embedded warehouse, with no migration applied."""
    import clickhouse_connect

    from cityops.settings import get_settings
    from cityops.warehouse import connect

    connect(get_settings()).command(f"DROP DATABASE IF EXISTS {name}")
    connect(get_settings()).command(f"CREATE DATABASE {name}")
    return clickhouse_connect.get_client(dsn=get_settings().warehouse_url, database=name)


@pytest.mark.integration
def test_a_warehouse_of_migration_7_keeps_its_cases_through_migration_8(stack_env):
    """Cases stored before the closed loop: their rollup sums stay whole, their discovery channel reads '' (not
    recorded then) in every table alike, and the open ones stay open, now with their source."""
    from cityops.warehouse.migrate import LEDGER, migrate

    wh = _database("upgrade_0008")
    wh.command(LEDGER)
    for version, path in available():
        if version <= 7:
            for stmt in statements(path.read_text()):
                wh.command(stmt)
            wh.insert("schema_migrations", [[version, path.stem]], column_names=["version", "name"])
    cols = "case_id, version, event_id, source, status, occurred_at, received_at, label, code, department, tier, " \
           "time_limit_minutes, confidence, kafka_partition, kafka_offset"
    versions = [("UP-1", 1, "hotline", "created"), ("UP-1", 2, "hotline", "dispatched"),
                ("UP-2", 1, "app", "created"), ("UP-2", 2, "app", "resolved")]
    for i, (case, version, source, status) in enumerate(versions):
        for table in ("case_history", "case_current"):
            wh.command(f"INSERT INTO {table} ({cols}) VALUES ('{case}', {version}, 'e{i}', '{source}', '{status}', "
                       f"now64(3), now64(3), '占道经营', '0101', '城管执法', 'street', 60, 0.9, 0, {i})")
    assert [n for n in migrate(wh) if n.startswith("0008")]
    assert drift(wh) == []
    daily = wh.query("SELECT discovered_by, sum(updates) FROM case_daily GROUP BY discovered_by").result_rows
    assert daily == [("", 4)]
    assert wh.query("SELECT DISTINCT discovered_by FROM case_history").result_rows == [("",)]
    open_cases = wh.query("SELECT case_id, status, source FROM case_open FINAL").result_rows
    assert open_cases == [("UP-1", "dispatched", "hotline")]
    assert "discovered_by" in wh.query("SELECT sorting_key FROM system.tables WHERE database = currentDatabase() "
                                       "AND name = 'case_daily'").result_rows[0][0]
    assert migrate(wh) == []
    # A run cut short is finished by running the whole file again: every statement can run twice.
    [(_, eighth)] = [(v, path) for v, path in available() if v == 8]
    for stmt in statements(eighth.read_text()):
        wh.command(stmt)
    assert drift(wh) == [] and wh.query("SELECT case_id FROM case_open FINAL").result_rows == [("UP-1",)]
    assert wh.query("SELECT sum(updates) FROM case_daily").result_rows == [(4,)]


def test_case_notes_are_masked_again_in_the_case_tables():
    """The streams mask a note before it reaches `cases`; the sink masks again, as for every free text it stores,
    so a stage's slip does not put a phone number in the warehouse."""
    from cityops.topics import CASES
    from sinks.batch import Batch
    from sinks.decode import Decoder
    from bench.samples import case

    value = case("note01", 1, datetime.now().astimezone()).model_copy(update={"note": "已办结，联系人13812345678"})
    batch = Batch()
    batch.add("cases", 0, 7, b"k", value.model_dump_json().encode())
    for fast in (True, False):
        inserts = Decoder((CASES,), "test-key", fast=fast).inserts(batch)
        assert {i.table.name for i in inserts} == {"case_current", "case_history"}
        for ins in inserts:
            note = dict(zip(ins.table.columns(), ins.rows[0]))["note"]
            assert note.startswith("已办结") and "13812345678" not in note, (ins.table.name, note)
