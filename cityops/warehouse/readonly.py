"""What `cityops query` runs: one read-only statement, judged on ClickHouse's own parse of it.

The engine formats the statement (`formatQuerySingleLine`) and turns it into a JSON tree (`parseQueryToJSON`); both
take the SQL as a bound string, so it is parsed and never run. The policy walks that tree, and what runs is the
engine's formatted text: the statement the policy read, without its comments and never with a second statement.

- Statements: an allow-list (SELECT / WITH … SELECT, SHOW TABLES|DATABASES|COLUMNS|INDEX…, DESCRIBE, EXPLAIN of a
  SELECT), because every other kind writes, administers, or cannot be checked.
- Table functions: an allow-list (numbers, values, …), because each one ClickHouse adds is a new way out (26.9 has
  94: file, url, s3, remote, iceberg…, executable, python) and historians read the warehouse's own tables.
- Other functions: a deny-list (file, hasColumnInTable which can ask another server, the AI ones, and any table
  function's name wherever it appears), because historians use hundreds of ordinary functions and few reach out.
- INTO OUTFILE, FORMAT and SETTINGS: refused; the CLI has --format, and the statement runs read-only (`guard`).
"""
from __future__ import annotations

import json
from typing import NamedTuple

from cityops.errors import UserError

KINDS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "EXPLAIN")  # first word of the formatted statement
TREES = {"SelectWithUnionQuery", "ShowTablesQuery", "ShowColumnsQuery", "ShowIndexesQuery", "ExplainQuery"}
EXPLAINS = {"EXPLAIN", "EXPLAIN AST", "EXPLAIN SYNTAX", "EXPLAIN QUERY TREE", "EXPLAIN PIPELINE", "EXPLAIN ESTIMATE"}
# Lower case. format() parses the text it is given (and is also the scalar string format()).
TABLE_FUNCTIONS = {"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries", "values",
                   "format"}
REACHING_OUT = {"file", "hascolumnintable", "catboostevaluate"}
DESCRIBE = "DESCRIBE TABLE "
READ_ONLY = "cityops query is read-only: it runs one SELECT, WITH … SELECT, SHOW, DESCRIBE or EXPLAIN"
TABLES = "query the warehouse's tables (docs/warehouse.md), or numbers()/values() for made-up rows"


class Refused(UserError):
    """A statement `cityops query` does not run; the message says what is not allowed and what to do instead."""


class Outside(NamedTuple):
    """Names the parsing engine knows reach outside the warehouse (lower case)."""
    table_functions: frozenset[str]
    functions: frozenset[str]


def parser(wh):
    """The engine that parses: the embedded warehouse itself, or an in-memory one beside a server, so the policy
    reads the trees of one parser whatever the server's version."""
    if wh.embedded:
        return wh
    import clickhouse_connect

    return clickhouse_connect.get_client(dsn="chdb://memory")


def guard(wh) -> dict:
    """Settings the statement runs with. Embedded, readonly=1 also makes the engine refuse table functions itself;
    a server's reader profile has readonly=2 (which may not be changed) and 2 makes any other user read-only."""
    return {"readonly": 1 if wh.embedded else 2}


def checked(engine, sql: str) -> str:
    """The statement to run for `sql`: the engine's formatted text of it. Raises Refused, or UserError when the
    engine cannot parse it."""
    text = _ask(engine, "SELECT formatQuerySingleLine({sql:String})", sql)
    kind = text.lstrip("(").split(" ", 1)[0]
    if kind not in KINDS:
        raise Refused(f"{kind} is not allowed: {READ_ONLY}; the sink and `cityops warehouse migrate` write the "
                      "warehouse")
    # DESCRIBE has no JSON tree; its table expression is read as the FROM of a SELECT (DESCRIBE file(…) reads it).
    described = "SELECT * FROM " + text.removeprefix(DESCRIBE) if text.startswith(DESCRIBE) else text
    try:
        tree = json.loads(_ask(engine, "SELECT parseQueryToJSON({sql:String})", described))
    except UserError as e:
        if "does not support JSON serialization" not in str(e):
            raise
        words = " ".join(text.split()[:2])
        raise Refused(f"{words} is not allowed: it cannot be checked, and {READ_ONLY} (SHOW CREATE TABLE t is "
                      "SELECT create_table_query FROM system.tables WHERE name = 't')") from None
    _statement(tree, _outside(engine))
    return text


def _statement(tree: dict, outside: Outside) -> None:
    kind = tree.get("type")
    if kind not in TREES:
        raise Refused(f"{kind} is not allowed: {READ_ONLY}")
    if kind == "ExplainQuery":
        if tree.get("kind") not in EXPLAINS or tree.get("query", {}).get("type") != "SelectWithUnionQuery":
            raise Refused(f"{tree.get('kind')} of this statement is not allowed: use EXPLAIN [AST | SYNTAX | QUERY "
                          "TREE | PIPELINE | ESTIMATE] of a SELECT")
        tree = {k: v for k, v in tree.items() if k != "settings"}  # EXPLAIN's own options (header=1, …)
    _walk(tree, outside, "")


def _walk(node, outside: Outside, key: str) -> None:
    if isinstance(node, list):
        for child in node:
            _walk(child, outside, key)
        return
    if not isinstance(node, dict):
        return
    if "out_file" in node or node.get("is_into_outfile_with_stdout"):
        raise Refused("INTO OUTFILE is not allowed: to export, print with --format csv (or json) and redirect it: "
                      "cityops query \"…\" --format csv > file.csv")
    if "format_ast" in node:
        raise Refused("a FORMAT clause is not allowed: choose the output with --format table|csv|json")
    if node.get("type") == "SetQuery":
        raise Refused("SETTINGS is not allowed: queries run read-only with the warehouse's own limits; drop the "
                      "clause (write FINAL after a table instead of final = 1)")
    name = node.get("name") if node.get("type") == "Function" else node.get("func_name")
    if isinstance(name, str):
        _function(name, outside, table=key == "table_function")
    for k, child in node.items():
        _walk(child, outside, k)


def _function(name: str, outside: Outside, table: bool) -> None:
    lower = name.lower()
    if not table and lower in REACHING_OUT | outside.functions:
        raise Refused(f"function {name}() is not allowed: it reaches outside the warehouse (files, other servers, "
                      f"AI services); {TABLES}")
    if (table or lower in outside.table_functions) and lower not in TABLE_FUNCTIONS:
        raise Refused(f"table function {name}() is not allowed: it reads outside the warehouse (files, URLs, other "
                      f"servers, programs); {TABLES}")


def _outside(engine) -> Outside:
    rows = engine.query("SELECT (SELECT groupArray(lower(name)) FROM system.table_functions), "
                        "(SELECT groupArray(lower(name)) FROM system.functions WHERE categories = 'AI')").result_rows
    return Outside(frozenset(rows[0][0]), frozenset(rows[0][1]))


def _ask(engine, sql: str, statement: str) -> str:
    try:
        return engine.query(sql, parameters={"sql": statement}).result_rows[0][0]
    except Exception as e:  # noqa: BLE001 — the engine's message says what is wrong with the SQL
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "Multi-statements are not allowed" in message:
            raise Refused("a second statement is not allowed: run one statement per cityops query (remove "
                          "everything after the first ';')") from None
        message = message.split(": In scope SELECT ", 1)[0].split("DB::Exception: ", 1)[-1]
        raise UserError(f"query failed: {message[:400]}") from None
