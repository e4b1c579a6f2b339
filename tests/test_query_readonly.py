"""`cityops query` runs one read-only statement. Write and escape attempts through the real CLI are refused with one
line and a non-zero exit, and change nothing: no file, no row, no table, no connection, no /etc/passwd in the output.
Ordinary questions, every example in docs/warehouse.md among them, still run in each output format. On a server it
reads as the read-only user docker compose creates.

Each CLI test gets an embedded warehouse of its own (a copy of one migrated once for this file) under its tmp_path."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

ROOT = Path(__file__).parents[1]
CLI = str(Path(sys.executable).with_name("cityops"))
PASSWD = Path("/etc/passwd").read_text().splitlines()[0]
STATE = ("SELECT database, name, total_rows FROM system.tables "
         "WHERE database NOT IN ('system', 'INFORMATION_SCHEMA', 'information_schema') ORDER BY database, name")


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYOPS_")}
    return {**env, "CITYOPS_DATA_DIR": str(data), "CITYOPS_CLICKHOUSE_URL": f"chdb://{data / 'clickhouse'}"}


class Historian:
    """Runs `cityops query` in its own process on one data dir, from a working directory beside it."""

    def __init__(self, root: Path, data: Path):
        self.root, self.data, self.cwd = root, data, root / "cwd"
        self.cwd.mkdir()

    def query(self, sql: str, *options: str) -> subprocess.CompletedProcess:
        return subprocess.run([CLI, "query", sql, *options], env=_env(self.data), cwd=self.cwd,
                              capture_output=True, text=True, timeout=180)

    def tables(self) -> list[dict]:
        r = self.query(STATE, "--format", "json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def files(self) -> list[str]:
        """Every file under the test's directory outside the warehouse's own data dir."""
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*")
                      if p.is_file() and self.data not in p.parents)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> tuple[Path, list[dict]]:
    """A migrated embedded warehouse, and its tables with their row counts."""
    root = tmp_path_factory.mktemp("query-template")
    data = root / "data"
    r = subprocess.run([CLI, "warehouse", "migrate"], env=_env(data), cwd=root, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    tables = Historian(root, data).tables()
    assert {"raw_tickets", "case_daily", "schema_migrations"} <= {t["name"] for t in tables}
    return data, tables


@pytest.fixture
def historian(migrated, tmp_path) -> Historian:
    shutil.copytree(migrated[0], tmp_path / "data", symlinks=True)
    return Historian(tmp_path, tmp_path / "data")


@pytest.fixture
def listener():
    """A local TCP port that records every connection made to it (and closes it at once)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    hits: list[tuple] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except TimeoutError:
                continue
            hits.append(peer)
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield server.getsockname()[1], hits
    stop.set()
    t.join()
    server.close()


# (id, statement with {tmp} = the test's directory and {port} = the listener, what the refusal names)
ATTEMPTS = [
    ("into-outfile", "SELECT 1 INTO OUTFILE '{tmp}/x.csv'", "INTO OUTFILE"),
    ("insert-into-function-file", "INSERT INTO FUNCTION file('{tmp}/y.csv', 'CSV') SELECT 1", "INSERT"),
    ("table-function-file", "SELECT * FROM file('/etc/passwd', 'LineAsString')", "file()"),
    ("scalar-file", "SELECT file('/etc/passwd')", "file()"),
    ("apply-file", "SELECT * APPLY file FROM (SELECT '/etc/passwd' AS p)", "file()"),
    ("lambda-file", "SELECT COLUMNS('p') APPLY(x -> file(x)) FROM (SELECT '/etc/passwd' AS p)", "file()"),
    ("file-in-cte", "WITH t AS (SELECT * FROM file('/etc/passwd', 'LineAsString')) SELECT * FROM t", "file()"),
    ("file-in-subquery", "SELECT 1 WHERE 1 IN (SELECT count() FROM file('/etc/passwd', 'LineAsString'))", "file()"),
    ("describe-file", "DESCRIBE file('/etc/passwd', 'LineAsString')", "file()"),
    ("explain-file", "EXPLAIN SELECT * FROM file('/etc/passwd', 'LineAsString')", "file()"),
    ("explain-into-outfile", "EXPLAIN SYNTAX SELECT 1 INTO OUTFILE '{tmp}/e.csv'", "INTO OUTFILE"),
    ("show-into-outfile", "SHOW TABLES INTO OUTFILE '{tmp}/s.csv'", "INTO OUTFILE"),
    ("second-statement", "SELECT 1; INSERT INTO FUNCTION file('{tmp}/z.csv', 'CSV') SELECT 2", "second statement"),
    ("comment-hides-second-statement",
     "/* report */ SELECT 1 /* ; */ ; -- done\nINSERT INTO raw_tickets (ticket_id) SELECT 'x'", "second statement"),
    ("insert", "INSERT INTO raw_tickets (ticket_id) SELECT 'x'", "INSERT"),
    ("create-table", "CREATE TABLE dump (line String) ENGINE = Log", "CREATE"),
    ("create-file-table", "CREATE TABLE dump (line String) ENGINE = File(CSV, '{tmp}/t.csv')", "CREATE"),
    ("drop-table", "DROP TABLE raw_tickets", "DROP"),
    ("truncate", "TRUNCATE TABLE schema_migrations", "TRUNCATE"),
    ("alter-delete", "ALTER TABLE schema_migrations DELETE WHERE 1", "ALTER"),
    ("set-readonly", "SET readonly = 0", "SET"),
    ("settings-readonly", "SELECT 1 SETTINGS readonly = 0", "SETTINGS"),
    ("url", "SELECT * FROM url('http://127.0.0.1:{port}/x', 'LineAsString')", "url()"),
    ("url-in-expression", "SELECT 1 IN url('http://127.0.0.1:{port}/x', 'LineAsString')", "url()"),
    ("remote", "SELECT * FROM remote('127.0.0.1:{port}', system.one)", "remote()"),
    ("s3", "SELECT * FROM s3('http://127.0.0.1:{port}/b/k.csv', 'CSV')", "s3()"),
    ("postgresql", "SELECT * FROM postgresql('127.0.0.1:{port}', 'db', 't', 'u', 'p')", "postgresql()"),
    ("executable", "SELECT * FROM executable('cat /etc/passwd', 'LineAsString', 'line String')", "executable()"),
    ("backup", "BACKUP TABLE raw_tickets TO File('{tmp}/b.zip')", "BACKUP"),
    ("system", "SYSTEM DROP MARK CACHE", "SYSTEM"),
    ("format-clause", "SELECT 1 FORMAT CSV", "FORMAT"),
    ("show-create", "SHOW CREATE TABLE raw_tickets", "SHOW CREATE"),
    ("has-column-in-remote-table", "SELECT hasColumnInTable('127.0.0.1:{port}', 'default', 't', 'c')",
     "hasColumnInTable()"),
    ("ai-function", "SELECT aiGenerate('the duty roster')", "aiGenerate()"),
]


@pytest.mark.integration
@pytest.mark.parametrize("sql, names", [a[1:] for a in ATTEMPTS], ids=[a[0] for a in ATTEMPTS])
def test_refused_statement_says_why_and_changes_nothing(historian, migrated, listener, sql, names):
    port, hits = listener
    r = historian.query(sql.format(tmp=historian.root, port=port))
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0, f"ran: {r.stdout[:300]!r}"
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert " is not allowed: " in lines[0] and names in lines[0], lines[0]
    assert PASSWD not in r.stdout + r.stderr
    assert historian.files() == [], "a file was written"
    assert hits == [], "a connection was made"
    assert historian.tables() == migrated[1], "a table or a row changed"


def _doc_examples() -> list[str]:
    text = (ROOT / "docs" / "warehouse.md").read_text()
    return re.findall(r"```sql\n(.*?)```", text, re.S)


@pytest.mark.integration
@pytest.mark.parametrize("sql", _doc_examples(), ids=lambda sql: " ".join(sql.split())[:40])
def test_every_example_in_the_warehouse_doc_runs(historian, sql):
    r = historian.query(sql, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert isinstance(json.loads(r.stdout), list)


@pytest.mark.integration
def test_ordinary_query_in_each_format(historian):
    sql = "SELECT number AS n, toString(number * 2) AS twice FROM numbers(3) ORDER BY n"
    as_json = historian.query(sql, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == [{"n": 0, "twice": "0"}, {"n": 1, "twice": "2"}, {"n": 2, "twice": "4"}]
    as_csv = historian.query(sql, "-f", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout.splitlines() == ["n,twice", "0,0", "1,2", "2,4"]
    as_table = historian.query(sql)
    assert as_table.returncode == 0, as_table.stderr
    assert "twice" in as_table.stdout and "4" in as_table.stdout


@pytest.mark.integration
@pytest.mark.parametrize("sql, expect", [
    ("WITH 2 AS k SELECT k * 21 AS answer", [{"answer": 42}]),
    ("/* per district */ SELECT count() AS n FROM raw_tickets; -- none stored yet", [{"n": 0}]),
    ("SELECT a FROM (SELECT 1 AS a UNION ALL SELECT 2) ORDER BY a", [{"a": 1}, {"a": 2}]),
    ("SHOW TABLES LIKE 'raw_tick%'", [{"name": "raw_tickets"}]),
    ("SHOW COLUMNS FROM schema_migrations LIKE 'vers%'", None),
    ("DESCRIBE TABLE schema_migrations", None),
    ("DESC (SELECT 1 AS one)", None),
    ("EXPLAIN SELECT count() FROM case_current FINAL", None),
    ("EXPLAIN AST SELECT 1", None),
], ids=["with", "comments-and-semicolon", "union", "show-tables", "show-columns", "describe", "describe-subquery",
        "explain", "explain-ast"])
def test_read_only_statements_run(historian, sql, expect):
    r = historian.query(sql, "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows if expect is None else rows == expect


def test_the_server_reader_is_read_only_and_compose_gives_it_to_cityops_query():
    users = ElementTree.parse(ROOT / "sinks" / "clickhouse" / "users.xml").getroot()
    profile = users.find("profiles/cityops_reader")
    assert profile.findtext("readonly") == "2"
    for limit in ("max_execution_time", "max_memory_usage"):  # readonly=2 may SET them: bounded, never 0
        bounds = profile.find(f"constraints/{limit}")
        assert bounds.findtext("min") == "1" and float(bounds.findtext("max")) == float(profile.findtext(limit))
    grants = [g.text for g in users.findall("users/cityops_reader/grants/query")]
    assert grants and all(re.fullmatch(r"GRANT SELECT ON (cityops\.\*|system\.\w+)", g) for g in grants), grants
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    reader = compose["x-cityops"]["environment"]["CITYOPS_CLICKHOUSE_READER_URL"]
    assert reader.startswith("http://cityops_reader:${CLICKHOUSE_READER_PASSWORD") and reader.endswith("/cityops")


@pytest.mark.integration
def test_on_a_server_query_connects_as_the_reader(listener, tmp_path):
    port, hits = listener
    data = tmp_path / "data"
    env = {**_env(data), "CITYOPS_CLICKHOUSE_READER_URL": f"http://cityops_reader:x@127.0.0.1:{port}/cityops"}
    r = subprocess.run([CLI, "query", "SELECT 1"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and hits, "cityops query did not go to the reader's server"
    assert f"cannot reach ClickHouse at 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (data / "clickhouse").exists(), "it opened the embedded warehouse"


@pytest.mark.integration
def test_beside_a_server_the_check_parses_with_an_engine_in_memory(tmp_path):
    script = ("from types import SimpleNamespace\n"
              "from cityops.warehouse import readonly\n"
              "engine = readonly.parser(SimpleNamespace(embedded=False))\n"
              "print(readonly.checked(engine, 'SELECT count() /* n */ FROM raw_tickets;'))\n"
              "try:\n"
              "    readonly.checked(engine, \"SELECT * FROM url('http://127.0.0.1:9/', 'CSV')\")\n"
              "except readonly.Refused as e:\n"
              "    print(e)\n")
    r = subprocess.run([sys.executable, "-c", script], env=_env(tmp_path / "data"), cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "SELECT count() FROM raw_tickets"
    assert r.stdout.splitlines()[1].startswith("table function url() is not allowed: ")
