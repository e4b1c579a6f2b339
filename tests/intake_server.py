"""`cityops intake serve` as a subprocess on a free port, with its own data dir and settings, for the
intake's integration tests (each server keeps its own request store, so tests never share requests)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import free_port

CLI = str(Path(sys.executable).with_name("cityops"))
KEY = "test-intake-key"
READ_KEY = "test-read-key"


@dataclass
class Intake:
    url: str
    proc: subprocess.Popen
    data_dir: Path

    @property
    def root(self) -> str:
        """The server without the Open311 prefix: the department endpoint lives under /departments/v1."""
        return self.url.removesuffix("/open311/v2")

    @property
    def store_bytes(self) -> bytes:
        """Everything the request store holds on disk (database and write-ahead log)."""
        d = self.data_dir / "intake"
        return b"".join(p.read_bytes() for p in sorted(d.glob("requests.sqlite*")))

    def post(self, key: str = KEY, headers: dict | None = None, **fields) -> httpx.Response:
        return httpx.post(f"{self.url}/requests.json", data={"api_key": key, **fields}, headers=headers, timeout=60)

    def get(self, path: str, **params) -> httpx.Response:
        return httpx.get(self.url + path, params=params, timeout=30)


def start(stack_env: dict, data_dir: Path, **settings: str) -> Intake:
    """Start a server; `settings` are CITYOPS_INTAKE_* variables without the prefix, e.g. read_keys="k"."""
    port = free_port()
    env = {**os.environ, **stack_env, "PYTHONUNBUFFERED": "1", "CITYOPS_DATA_DIR": str(data_dir),
           "CITYOPS_INTAKE_API_KEYS": f"other-key,{KEY}",
           **{f"CITYOPS_INTAKE_{k.upper()}": str(v) for k, v in settings.items()}}
    proc = subprocess.Popen([CLI, "intake", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return Intake(f"http://127.0.0.1:{port}/open311/v2", proc, data_dir)
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"the intake did not listen on {port} within 60 s")


def stop(intake: Intake, sig: int = signal.SIGTERM) -> None:
    if intake.proc.poll() is None:
        intake.proc.send_signal(sig)
    intake.proc.wait(timeout=60)


@contextmanager
def serving(stack_env: dict, data_dir: Path, **settings: str):
    intake = start(stack_env, data_dir, **settings)
    try:
        yield intake
    finally:
        stop(intake)
