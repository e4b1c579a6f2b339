"""Versioned migrations: numbered SQL files applied once each, recorded in `schema_migrations`.

Statements use IF NOT EXISTS, so a run interrupted inside a file is simply re-run. Never edit an applied
file: add the next number. With CITYOPS_CLICKHOUSE_CLUSTER set they run rendered for that cluster
(cityops/warehouse/cluster.py), the ledger included."""
from __future__ import annotations

import re
from pathlib import Path

from cityops.settings import get_settings
from cityops.warehouse.cluster import Renderer

MIGRATIONS = Path(__file__).parent / "migrations"
_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

LEDGER = """CREATE TABLE IF NOT EXISTS schema_migrations
(`version` UInt32, `name` String, `applied_at` DateTime64(3, 'Asia/Shanghai') DEFAULT now64(3))
ENGINE = ReplacingMergeTree ORDER BY version"""


def available() -> list[tuple[int, Path]]:
    files = sorted((int(m.group(1)), p) for p in MIGRATIONS.iterdir() if (m := _FILE.match(p.name)))
    versions = [v for v, _ in files]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number in {MIGRATIONS}")
    return files


def statements(sql: str) -> list[str]:
    """Split on `;` at the end of a line; comments are dropped."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*$", body, flags=re.M) if s.strip()]


def planned(cluster: str = "") -> list[tuple[int, str, list[str]]]:
    """(version, name, statements) of every migration, as written or rendered for `cluster`: all are rendered,
    applied or not, since a later statement may rename a table an earlier one made."""
    if not cluster:
        return [(v, p.stem, statements(p.read_text())) for v, p in available()]
    r = Renderer(cluster)
    return [(v, p.stem, [out for s in statements(p.read_text()) for out in r.render(s)]) for v, p in available()]


def applied(wh, cluster: str = "") -> set[int]:
    for stmt in Renderer(cluster).render(LEDGER) if cluster else [LEDGER]:
        wh.command(stmt)
    return {r[0] for r in wh.query("SELECT version FROM schema_migrations FINAL").result_rows}


def migrate(wh, cluster: str | None = None) -> list[str]:
    """Apply what is missing, in order; returns the names applied now. cluster: CITYOPS_CLICKHOUSE_CLUSTER
    unless given."""
    cluster = get_settings().clickhouse_cluster if cluster is None else cluster
    done = applied(wh, cluster)
    names = []
    for version, name, stmts in planned(cluster):
        if version in done:
            continue
        for stmt in stmts:
            wh.command(stmt)
        wh.insert("schema_migrations", [[version, name]], column_names=["version", "name"])
        names.append(name)
    return names


def drift(wh, tables=None) -> list[str]:
    """Differences between the migrated tables and the columns the models imply; [] when in step."""
    from cityops.warehouse.schema import TABLES

    problems = []
    for table in tables or TABLES:
        have = dict(wh.query("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                             "AND table = %(t)s ORDER BY position", parameters={"t": table.name}).result_rows)
        want = table.columns()
        for name, typ in want.items():
            if name not in have:
                problems.append(f"{table.name}.{name}: in {table.model.__name__}, missing in the warehouse ({typ})")
            elif have[name] != typ:
                problems.append(f"{table.name}.{name}: warehouse has {have[name]}, the model implies {typ}")
        problems += [f"{table.name}.{name}: in the warehouse, not in {table.model.__name__}"
                     for name in have if name not in want]
    return problems
