"""docker compose cannot run here (no engine): check the file's shape, and `docker compose config` where it can."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_images_are_pinned_to_versions():
    for name, svc in SERVICES.items():
        image = svc.get("image", "")
        assert image and not image.endswith(":latest") and ":" in image, f"{name}: pin an image version"


def test_infrastructure_services():
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert SERVICES["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert any(v.endswith("/var/lib/clickhouse") for v in SERVICES["clickhouse"]["volumes"])
    grafana = SERVICES["grafana"]
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_PLUGINS_PREINSTALL_SYNC"]
    assert any(v.startswith("./dashboards/provisioning:") for v in grafana["volumes"])


def test_pipeline_services_share_one_image_and_the_worker_scales():
    app = {n: s for n, s in SERVICES.items() if s.get("build")}
    assert {"producer", "intake", "worker", "sink", "pager", "topics", "migrate"} <= set(app)
    assert {s["build"] for s in app.values()} == {"."} and (ROOT / "Dockerfile").exists()
    assert len({s["image"] for s in app.values()}) == 1
    worker = SERVICES["worker"]
    assert "container_name" not in worker and "ports" not in worker, "--scale worker=N needs no fixed name/port"
    for name, svc in app.items():
        cmd = svc["command"][0]
        assert cmd in {"produce", "intake", "worker", "sink", "pager", "stack", "warehouse"}, name


def test_no_secrets_in_the_file():
    text = (ROOT / "docker-compose.yml").read_text()
    for m in re.finditer(r"^\s+\w*(PASSWORD|PII_KEY|API_KEYS)\w*:\s*(.+)$", text, re.M):
        value = m.group(2).strip()
        assert value.startswith("${"), f"{m.group(0)!r} must come from the environment"


@pytest.mark.skipif(not shutil.which("docker") or subprocess.run(["docker", "compose", "version"],
                    capture_output=True).returncode != 0, reason="the docker compose plugin is not installed here")
def test_docker_compose_config():
    env = {"CLICKHOUSE_ADMIN_PASSWORD": "x", "CLICKHOUSE_WRITER_PASSWORD": "x", "CLICKHOUSE_READER_PASSWORD": "x",
           "GRAFANA_ADMIN_PASSWORD": "x", "CITYOPS_PII_KEY": "x", "CITYOPS_INTAKE_API_KEYS": "x", "PATH": "/usr/bin:/bin"}
    r = subprocess.run(["docker", "compose", "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
