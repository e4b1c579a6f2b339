"""`cityops query "SQL"`: historians' read-only access to the warehouse (the policy: cityops.warehouse.readonly).
On a server it connects as CITYOPS_CLICKHOUSE_READER_URL's read-only user when that is set."""
from __future__ import annotations

import csv
import sys
from datetime import date, datetime
from decimal import Decimal
from enum import Enum

import orjson
import typer
from rich.console import Console
from rich.table import Table

from cityops.settings import get_settings


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def register(root: typer.Typer) -> None:
    @root.command()
    def query(sql: str = typer.Argument(..., help="one SELECT, SHOW, DESCRIBE or EXPLAIN; see docs/warehouse.md "
                                        "for tables and examples"),
              format: Format = typer.Option(Format.table, "--format", "-f")) -> None:
        """Run one read-only statement (SELECT, WITH … SELECT, SHOW, DESCRIBE, EXPLAIN) and print the result."""
        from cityops.errors import UserError
        from cityops.warehouse import connect, readonly

        settings = get_settings()
        if settings.clickhouse_reader_url:
            settings = settings.model_copy(update={"clickhouse_url": settings.clickhouse_reader_url})
        wh = connect(settings)
        statement = readonly.checked(readonly.parser(wh), sql)
        try:
            result = wh.query(statement, settings=readonly.guard(wh))
        except Exception as e:  # noqa: BLE001 — ClickHouse's message says what is wrong with the SQL
            raise UserError(f"query failed: {_first_line(e)}") from e
        names, rows = list(result.column_names), result.result_rows
        if format is Format.json:
            sys.stdout.write(orjson.dumps([dict(zip(names, r)) for r in rows], default=_plain,
                                          option=orjson.OPT_INDENT_2).decode() + "\n")
        elif format is Format.csv:
            w = csv.writer(sys.stdout)
            w.writerow(names)
            w.writerows([[_plain(v) for v in r] for r in rows])
        else:
            t = Table(*names)
            for r in rows:
                t.add_row(*(str(_plain(v)) for v in r))
            Console().print(t)


def _plain(v):
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    for line in text.splitlines():
        if "DB::Exception" in line or "Code:" in line:
            return line.strip()[:400]
    return text.splitlines()[0][:400] if text else type(e).__name__
