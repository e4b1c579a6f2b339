"""District and street names for the cockpit, from the city registry. The warehouse stores codes only; the
dashboards carry the names inline (`transform(code, [codes], [names], code)`), so Grafana needs no extra table."""
from __future__ import annotations

from dataclasses import dataclass, field

from cityops.settings import Settings


@dataclass(frozen=True)
class Units:
    districts: dict[str, str]   # code → name, e.g. 370303 → 张店区
    streets: dict[str, str]     # 9-digit code → name
    centres: dict[str, tuple[float, float]] = field(default_factory=dict)   # district code → (lat, lon) of its grids

    @classmethod
    def of(cls, settings: Settings) -> Units:
        """The configured registry (CITYOPS_REGISTRY), else the generated Zibo city."""
        if settings.registry:
            from cityops.registry import CityRegistry

            reg = CityRegistry.from_dir(settings.registry)
            districts, streets, grids = reg.districts.values(), reg.streets.values(), reg.grids.values()
        else:
            from cityops.registry import zibo

            districts, streets, _, grids, _ = zibo.generate()
        where: dict[str, list[tuple[float, float]]] = {}
        for g in grids:
            where.setdefault(g.code[:6], []).append(g.centroid)
        centres = {d: (sum(p[0] for p in ps) / len(ps), sum(p[1] for p in ps) / len(ps)) for d, ps in where.items()}
        return cls({u.code: u.name for u in districts}, {u.code: u.name for u in streets}, centres)

    def street_district(self, street_code: str) -> str:
        return street_code[:6]


def _quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def transform(column: str, mapping: dict[str, str]) -> str:
    """SQL naming a code column; unknown codes show as the code, '' as 未定位 (unplaced)."""
    keys = ", ".join(_quote(k) for k in [*mapping, ""])
    values = ", ".join(_quote(v) for v in [*mapping.values(), "未定位"])
    return f"transform({column}, [{keys}], [{values}], {column})"


def pairs(mapping: dict[str, str]) -> str:
    """SQL rows (code, name) for a Grafana query variable: first column the value, second the text."""
    rows = ", ".join(f"({_quote(k)}, {_quote(v)})" for k, v in mapping.items())
    return f"SELECT t.1 AS code, t.2 AS name FROM (SELECT arrayJoin([{rows}]) AS t)"
