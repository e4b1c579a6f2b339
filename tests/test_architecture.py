"""The rooms' rules (docs/architecture.md), read from the code's imports: the domain imports no stage and no CLI,
no stage imports another, there is no import circle, and no module is over 400 lines."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
STAGES = ("producers", "streams", "sinks", "pager", "dashboards")
PACKAGES = ("cityops", *STAGES, "bench")


def _modules() -> dict[str, Path]:
    out = {}
    for top in PACKAGES:
        for path in (ROOT / top).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _room(module: str) -> str:
    top, _, rest = module.partition(".")
    if top == "cityops" and (rest == "__main__" or rest.split(".")[0] == "cli"):
        return "cli"
    return top if top != "cityops" else "domain"


def _imports() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_the_domain_imports_no_stage_and_no_stage_another():
    arrows = {(_room(a), _room(b), f"{a} → {b}") for a, bs in _imports().items() for b in bs}
    assert [w for a, b, w in arrows if a == "domain" and b != "domain"] == []
    assert [w for a, b, w in arrows if a in STAGES and b not in (a, "domain")] == []
    assert [w for a, b, w in arrows if a != "cli" and b == "cli"] == []


def test_no_import_circle():
    graph, done, circles = _imports(), set(), []

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            circles.append(path[path.index(node):] + [node])
            return
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, path + [node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    assert circles == []


def test_no_module_over_400_lines():
    assert {name: n for name, path in _modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 400} == {}
