"""`cityops schema export`: one JSON Schema per catalogue topic, valid 2020-12 schemas."""
from __future__ import annotations

import json

from jsonschema import Draft202012Validator

from cityops.topics import CATALOGUE
from producers.schema import export


def test_one_valid_schema_per_topic(tmp_path):
    paths = export(tmp_path)
    assert sorted(p.name for p in paths) == sorted(f"{t.name}.schema.json" for t in CATALOGUE)
    for p in paths:
        schema = json.loads(p.read_text())
        Draft202012Validator.check_schema(schema)
        assert schema["title"] == p.name.removesuffix(".schema.json")


def test_schema_rejects_what_the_model_rejects(tmp_path):
    export(tmp_path)
    v = Draft202012Validator(json.loads((tmp_path / "sensor.events.schema.json").read_text()))
    ok = {"source": "sensor", "occurred_at": "2026-01-01T00:00:00+08:00", "device_id": "NO-1", "kind": "noise",
          "value": 50.0, "lat": 36.8, "lon": 118.0}
    assert not list(v.iter_errors(ok))
    assert list(v.iter_errors({**ok, "kind": "smell"}))
    assert list(v.iter_errors({**ok, "surprise": 1}))
