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
        try:
            wh = connect(settings)
        except UserError as held:   # an embedded warehouse another process holds: ask it, through its cockpit
            names, rows = _through_cockpit(settings, sql, held)
        else:
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


def _through_cockpit(settings, sql: str, held: Exception) -> tuple[list[str], list]:
    """The statement answered by the web cockpit of the process holding the warehouse (same read-only policy)."""
    import httpx

    from cityops.errors import UserError

    headers = {"Authorization": f"Bearer {settings.cockpit_token}"} if settings.cockpit_token else {}
    try:
        r = httpx.get(f"http://{settings.cockpit_addr}/api/query", params={"sql": sql}, headers=headers, timeout=60)
    except httpx.HTTPError:
        raise UserError(f"{held} (no cockpit answers at {settings.cockpit_addr} to query through)") from None
    if r.status_code != 200:
        detail = r.json().get("detail") or r.json().get("error") if "json" in r.headers.get("content-type", "") else r.text
        raise UserError(str(detail)[:400])
    body = r.json()
    return body["columns"], body["rows"]


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
