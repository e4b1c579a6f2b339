"""JSON Schema per topic, derived from the topic catalogue's pydantic models (validation mode: what
a consumer may receive, with None fields left out)."""
from __future__ import annotations

import json
from pathlib import Path

from cityops.topics import CATALOGUE, Topic

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_of(topic: Topic) -> dict:
    s = topic.value.model_json_schema(mode="validation")
    return {"$schema": DIALECT, "$id": f"urn:cityops:topic:{topic.name}", **s,
            "title": topic.name, "description": topic.description}


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for t in CATALOGUE:
        p = directory / f"{t.name}.schema.json"
        p.write_text(json.dumps(schema_of(t), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        paths.append(p)
    return paths
