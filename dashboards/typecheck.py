"""Type-checks dashboard JSON against npm `@grafana/schema` with `tsc --noEmit --strict`, no Grafana needed.

Each dashboard becomes `export const d = <json> satisfies Plain<Dashboard>`, and each panel's `options` is
checked against its panel plugin's `Options` type. The schema's string enums do not accept plain strings,
so `Plain<T>` maps every string enum to its literal values (`${Enum}`). Unknown keys pass (TypeScript only
checks excess properties on fresh literals it can see through); wrong types and wrong enum values fail."""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

NPM_DIR = Path(__file__).resolve().parent.parent / "tests" / "tsc"
TSC = NPM_DIR / "node_modules" / ".bin" / "tsc"
_CFG = "@grafana/schema/dist/esm/raw/composable/{0}/panelcfg/x/{1}PanelCfg_types.gen.js"
PANEL_OPTIONS = {"stat": ("stat", "Stat"), "timeseries": ("timeseries", "TimeSeries"), "geomap": ("geomap", "Geomap"),
                 "table": ("table", "Table"), "piechart": ("piechart", "PieChart"), "bargauge": ("bargauge", "BarGauge")}

PRELUDE = """import type { Dashboard } from '@grafana/schema';
%s
// String enums accept only their members; JSON has plain strings. `${E}` turns an enum into its literals.
type Plain<T> = T extends string ? `${T}` : T extends number | boolean | null | undefined ? T
  : T extends Array<infer U> ? Array<Plain<U>> : T extends object ? { [K in keyof T]: Plain<T[K]> } : T;
"""


@dataclass(frozen=True)
class Result:
    ok: bool
    output: str


def available() -> bool:
    return TSC.exists()


def source(dashboards: dict[str, dict]) -> str:
    imports = "\n".join(f"import type {{ Options as {name}Options }} from '{_CFG.format(path, name)}';"
                        for path, name in PANEL_OPTIONS.values())
    out = [PRELUDE % imports]
    for i, (uid, dash) in enumerate(dashboards.items()):
        out.append(f"// {uid}\nexport const d{i} = {json.dumps(dash, ensure_ascii=False)} satisfies Plain<Dashboard>;")
        for j, panel in enumerate(dash.get("panels", [])):
            if panel.get("type") in PANEL_OPTIONS:
                name = PANEL_OPTIONS[panel["type"]][1]
                out.append(f"export const d{i}p{j} = {json.dumps(panel.get('options', {}), ensure_ascii=False)} "
                           f"satisfies Plain<{name}Options>;")
    return "\n".join(out) + "\n"


def check(dashboards: dict[str, dict], timeout: float = 300) -> Result:
    """Runs tsc over the dashboards; the sources live in a temporary directory inside tests/tsc so that
    `@grafana/schema` resolves from its node_modules."""
    if not available():
        raise FileNotFoundError(f"{TSC} is missing: run `npm ci --prefix {NPM_DIR}` (the Makefile does)")
    work = Path(tempfile.mkdtemp(prefix=".check-", dir=NPM_DIR))
    try:
        (work / "dashboards.ts").write_text(source(dashboards), encoding="utf-8")
        (work / "tsconfig.json").write_text(json.dumps({
            "compilerOptions": {"strict": True, "noEmit": True, "target": "ES2022", "module": "ESNext",
                                "moduleResolution": "bundler", "skipLibCheck": True, "types": []},
            "files": ["dashboards.ts"]}))
        proc = subprocess.run([str(TSC), "-p", str(work / "tsconfig.json")], capture_output=True, text=True,
                              timeout=timeout, cwd=work)
        return Result(proc.returncode == 0, (proc.stdout + proc.stderr).strip())
    finally:
        shutil.rmtree(work, ignore_errors=True)
