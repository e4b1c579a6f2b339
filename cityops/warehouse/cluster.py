"""The migrations for a ClickHouse cluster (CITYOPS_CLICKHOUSE_CLUSTER): each table becomes `<name>_local`, a
Replicated*MergeTree on every shard's replicas, and `<name>`, a Distributed table over them, so the sink and the
panels write and read the names they always did. Materialized views run on every node, from the local source
table into the local target table: each shard aggregates the rows it holds, and a query through the Distributed
table adds the shards up (the panels already sum, since unmerged parts need it too).

Rows that a Replacing/Summing/Aggregating table merges must land on one shard: a table is sharded by the hash of
the first entity id in its sort key (a case's versions on one shard, so case_open, fed from case_history there,
is right), else of its whole sort key. Every statement is created ON CLUSTER; a statement of a kind this module
does not know is refused, so a new migration cannot go to a cluster unrendered."""
from __future__ import annotations

import re

# The entity a row belongs to, in order of preference: all rows of one entity go to one shard.
ENTITY_IDS = ("case_id", "alert_id", "incident_id", "device_id", "ticket_id", "report_id")

_CREATE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+)\s*\(", re.S)
_VIEW = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+)\s+TO (\w+)(.*)$", re.S)
_ALTER = re.compile(r"^ALTER TABLE (\w+)(\s.*)$", re.S)
_DROP_VIEW = re.compile(r"^DROP VIEW IF EXISTS (\w+)$")
_DROP_TABLE = re.compile(r"^DROP TABLE IF EXISTS (\w+)$")
_RENAME = re.compile(r"^RENAME TABLE (\w+) TO (\w+)$")


class Renderer:
    """Renders the migrations' statements in order; remembers each table's shard key (a rename keeps it)."""

    def __init__(self, cluster: str):
        self.cluster = cluster
        self.keys: dict[str, str] = {}

    def render(self, stmt: str) -> list[str]:
        c = f"ON CLUSTER {self.cluster}"
        if m := _CREATE.match(stmt):
            return self._table(m.group(1), stmt)
        if m := _VIEW.match(stmt):
            return [f"CREATE MATERIALIZED VIEW IF NOT EXISTS {m.group(1)} {c} TO {m.group(2)}_local"
                    f"{self._local_sources(m.group(3))}"]
        if m := _ALTER.match(stmt):
            change = m.group(2).replace("non_replicated_deduplication_window", "replicated_deduplication_window")
            local = f"ALTER TABLE {m.group(1)}_local {c}{change}"
            if "MODIFY SETTING" in change:   # a storage setting: the Distributed table has none
                return [local]
            return [local, f"ALTER TABLE {m.group(1)} {c}{change}"]   # it shows the local table's columns
        if m := _DROP_VIEW.match(stmt):
            return [f"DROP VIEW IF EXISTS {m.group(1)} {c} SYNC"]
        if m := _DROP_TABLE.match(stmt):
            return [f"DROP TABLE IF EXISTS {m.group(1)} {c} SYNC", f"DROP TABLE IF EXISTS {m.group(1)}_local {c} SYNC"]
        if m := _RENAME.match(stmt):
            old, new = m.groups()
            self.keys[new] = self.keys.pop(old)
            return [f"RENAME TABLE {old}_local TO {new}_local {c}", f"DROP TABLE IF EXISTS {old} {c} SYNC",
                    self._distributed(new)]
        if stmt.startswith("INSERT INTO "):   # through the Distributed tables: read from and written to every shard
            return [stmt]
        raise ValueError(f"no cluster form for this statement (add one to cityops/warehouse/cluster.py): "
                         f"{stmt[:120]}")

    def _table(self, name: str, stmt: str) -> list[str]:
        engine = re.search(r"\bENGINE = (\w*MergeTree)\b", stmt)
        order = re.search(r"\bORDER BY\s+", stmt)
        if not engine or not order:
            raise ValueError(f"{name}: a cluster table needs a *MergeTree engine and an ORDER BY")
        args, end = _arguments(stmt, engine.end())
        path = f"'/clickhouse/tables/{{shard}}/{{database}}/{name}_local', '{{replica}}'"
        replicated = f"ENGINE = Replicated{engine.group(1)}({', '.join([path, *filter(None, [args])])})"
        local = (stmt[:engine.start()] + replicated + stmt[end:]).replace(
            f"CREATE TABLE IF NOT EXISTS {name}", f"CREATE TABLE IF NOT EXISTS {name}_local ON CLUSTER {self.cluster}", 1)
        local = local.replace("non_replicated_deduplication_window", "replicated_deduplication_window")
        sort = _arguments(stmt, order.end())[0] or stmt[order.end():].splitlines()[0].strip()
        columns = [c.strip(" `\n") for c in sort.split(",")]
        entity = next((e for e in ENTITY_IDS if e in columns), None)
        self.keys[name] = f"cityHash64({entity or sort})"
        return [local, self._distributed(name)]

    def _distributed(self, name: str) -> str:
        return (f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER {self.cluster} AS {name}_local "
                f"ENGINE = Distributed({self.cluster}, currentDatabase(), {name}_local, {self.keys[name]})")

    def _local_sources(self, query: str) -> str:
        """A view reads the local tables: FROM/JOIN a table of the migrations → its `_local`."""
        return re.sub(r"\b(FROM|JOIN)\s+(\w+)\b",
                      lambda m: f"{m.group(1)} {m.group(2)}_local" if m.group(2) in self.keys else m.group(0), query)


def _arguments(stmt: str, at: int) -> tuple[str, int]:
    """The engine's own arguments after position `at` ("" when it has none) and where they end."""
    if at >= len(stmt) or stmt[at] != "(":
        return "", at
    depth = 0
    for i in range(at, len(stmt)):
        depth += {"(": 1, ")": -1}.get(stmt[i], 0)
        if depth == 0:
            return stmt[at + 1:i].strip(), i + 1
    raise ValueError(f"unbalanced engine arguments: {stmt[at:at + 80]}")
