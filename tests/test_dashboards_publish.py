"""`cityops dashboards publish` against a small fake Grafana on 127.0.0.1: request shapes, idempotence, and a
clear one-line error when Grafana is unreachable or refuses."""
from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cityops.settings import Settings
from dashboards import alerting, grafana
from dashboards.publish import PublishError, publish
from dashboards.units import Units


class FakeGrafana(ThreadingHTTPServer):
    """Keeps what was written by uid; answers 404 for what it does not have, like Grafana."""

    def __init__(self, token: str | None = None):
        self.token = token
        self.requests: list[tuple[str, str, dict | None]] = []
        self.store: dict[str, dict] = {}
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FakeGrafana

    def log_message(self, *args):
        pass

    def _reply(self, code: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append((method, self.path, body))
        if self.server.token and self.headers.get("Authorization") != f"Bearer {self.server.token}":
            return self._reply(401, {"message": "invalid API key"})
        store, path = self.server.store, self.path
        routes = [
            ("GET", r"/api/folders/(.+)", lambda m: store.get(f"folder/{m[1]}")),
            ("POST", r"/api/folders", lambda m: store.setdefault(f"folder/{body['uid']}", body)),
            ("GET", r"/api/datasources/uid/(.+)", lambda m: store.get(f"ds/{m[1]}")),
            ("PUT", r"/api/datasources/uid/(.+)", lambda m: store.__setitem__(f"ds/{m[1]}", body) or body),
            ("POST", r"/api/datasources", lambda m: store.setdefault(f"ds/{body['uid']}", body)),
            ("POST", r"/api/dashboards/db", lambda m: store.__setitem__(f"dash/{body['dashboard']['uid']}", body)
             or {"status": "success"}),
            ("GET", r"/api/v1/provisioning/contact-points",
             lambda m: [v for k, v in store.items() if k.startswith("cp/")]),
            ("POST", r"/api/v1/provisioning/contact-points", lambda m: store.setdefault(f"cp/{body['uid']}", body)),
            ("PUT", r"/api/v1/provisioning/contact-points/(.+)", lambda m: store.__setitem__(f"cp/{m[1]}", body)
             or body),
            ("PUT", r"/api/v1/provisioning/policies", lambda m: store.__setitem__("policy", body) or {}),
            ("GET", r"/api/v1/provisioning/alert-rules/(.+)", lambda m: store.get(f"rule/{m[1]}")),
            ("POST", r"/api/v1/provisioning/alert-rules", lambda m: store.setdefault(f"rule/{body['uid']}", body)),
            ("PUT", r"/api/v1/provisioning/alert-rules/(.+)", lambda m: store.__setitem__(f"rule/{m[1]}", body)
             or body),
        ]
        for verb, pattern, act in routes:
            if verb == method and (m := re.fullmatch(pattern, path)):
                result = act(m)
                return self._reply(200, result) if result is not None else self._reply(404, {"message": "not found"})
        self._reply(404, {"message": f"no route {method} {path}"})

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")


@pytest.fixture
def fake():
    server = FakeGrafana()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def units() -> Units:
    return Units.of(Settings())


def test_publish_writes_everything_with_the_right_shapes(fake, units):
    report = publish(fake.url, units, token="", env={})
    store = fake.store
    assert store[f"folder/{alerting.FOLDER_UID}"]["title"] == alerting.FOLDER_TITLE
    ds = store["ds/cityops-clickhouse"]
    assert ds["type"] == "grafana-clickhouse-datasource" and ds["access"] == "proxy"
    dashes = {k[5:]: v for k, v in store.items() if k.startswith("dash/")}
    assert set(dashes) == set(grafana.dashboards(units))
    assert all(v["folderUid"] == alerting.FOLDER_UID and v["overwrite"] for v in dashes.values())
    rules = {k[5:]: v for k, v in store.items() if k.startswith("rule/")}
    assert set(rules) == {r.uid for r in alerting.RULES}
    for r in rules.values():
        assert r["folderUID"] == alerting.FOLDER_UID and r["condition"] == "C"
        assert r["data"][0]["model"]["rawSql"].startswith("SELECT") or "WITH" in r["data"][0]["model"]["rawSql"]
        assert "$$" not in json.dumps(r)          # the API gets plain `$`, files get `$$`
    assert {r["receiver"] for r in store["policy"]["routes"]} <= {v["name"] for k, v in store.items()
                                                                  if k.startswith("cp/")}
    assert not report.updated[1:] or report.created


def test_publish_twice_creates_nothing_new(fake, units):
    publish(fake.url, units, token="", env={})
    first, seen = dict(fake.store), len(fake.requests)
    again = publish(fake.url, units, token="", env={})
    assert again.created == []
    assert fake.store.keys() == first.keys()
    # the dashboards API has only POST (with overwrite); everything else is updated in place
    assert not [r for r in fake.requests[seen:] if r[0] == "POST" and "dashboards" not in r[1]]


def test_unreachable_grafana_is_one_clear_line(units):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]        # bound, never listening: connection refused
        with pytest.raises(PublishError, match=r"unreachable.*is it running"):
            publish(f"http://127.0.0.1:{port}", units, token="", timeout=2)


def test_refused_credentials_say_what_to_set(units):
    server = FakeGrafana(token="right")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(PublishError, match="GRAFANA_TOKEN"):
            publish(server.url, units, token="wrong")
    finally:
        server.shutdown()
        server.server_close()


def test_cli_prints_one_line_and_exits_nonzero():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "cityops", "dashboards", "publish", "--url",
                               f"http://127.0.0.1:{port}", "--timeout", "2"], capture_output=True, text=True,
                              timeout=120)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "unreachable" in lines[0], proc.stderr
