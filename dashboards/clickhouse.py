"""The grafana-clickhouse-datasource query model, which grafana-foundation-sdk does not ship.

Fields as the plugin reads them (src/types/sql.ts, pkg/plugin): `rawSql`, `editorType` ('sql' | 'builder'),
`queryType` ('table' | 'timeSeries' | 'logs' | 'traces'), `format` (sqlutil.FormatQueryOption:
0 time series — long frames are pivoted wide, labels from string columns; 1 table), `pluginVersion`."""
from __future__ import annotations

import typing
from enum import IntEnum

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

PLUGIN_ID = "grafana-clickhouse-datasource"
PLUGIN_VERSION = "4.20.0"   # the version docker-compose installs
DATASOURCE_UID = "cityops-clickhouse"
DATASOURCE = dashboard.DataSourceRef(type_val=PLUGIN_ID, uid=DATASOURCE_UID)


class Format(IntEnum):
    time_series = 0
    table = 1


class ClickHouseQuery(cogvariants.Dataquery):
    def __init__(self, ref_id: str = "A", raw_sql: str = "", format: Format = Format.table,
                 datasource: dashboard.DataSourceRef | None = DATASOURCE) -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.format = format
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "refId": self.ref_id,
            "editorType": "sql",
            "queryType": "timeSeries" if self.format == Format.time_series else "table",
            "format": int(self.format),
            "rawSql": self.raw_sql,
            "pluginVersion": PLUGIN_VERSION,
        }
        if self.datasource is not None:
            out["datasource"] = self.datasource.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, typing.Any]) -> typing.Self:
        ds = data.get("datasource")
        return cls(data.get("refId", "A"), data.get("rawSql", ""), Format(data.get("format", Format.table)),
                   dashboard.DataSourceRef.from_json(ds) if ds else None)


class Query(cogbuilder.Builder[ClickHouseQuery]):
    def __init__(self, raw_sql: str, format: Format = Format.table, ref_id: str = "A",
                 datasource: dashboard.DataSourceRef | None = DATASOURCE) -> None:
        self._internal = ClickHouseQuery(ref_id, raw_sql, format, datasource)

    def build(self) -> ClickHouseQuery:
        return self._internal


# Decoding a dashboard JSON (the SDK's from_json) then yields ClickHouseQuery, not an untyped bag.
cogruntime.Runtime().register_dataquery_variant(cogruntime.DataqueryConfig(PLUGIN_ID, ClickHouseQuery.from_json))
