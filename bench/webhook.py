"""A webhook receiver on 127.0.0.1 that records when each delivery arrives (the pager's far end in the
benchmark and the fault tests), and how to start `cityops pager` against it."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Answers 200 to every POST and keeps (arrival time, path, body); `fail_for` answers 503 for a while
    to exercise the pager's retries."""

    def __init__(self, fail_for: float = 0.0):
        self.arrivals: list[tuple[float, str, str]] = []
        self.refused = 0
        self._fail_until = time.time() + fail_for
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 — http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode(errors="replace")
                if time.time() < owner._fail_until:
                    owner.refused += 1
                    self.send_response(503)
                else:
                    owner.arrivals.append((time.time(), self.path, body))
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"errcode":0,"errmsg":"ok"}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="webhook")
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_quiet(self, quiet_s: float, timeout: float = 120.0) -> None:
        """Until nothing arrived for `quiet_s` seconds."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            last = self.arrivals[-1][0] if self.arrivals else 0.0
            if time.time() - last >= quiet_s:
                return
            time.sleep(0.2)

    def delivered(self, alert_ids: list[str]) -> dict[str, list[float]]:
        """Arrival times of each alert id, found whole in the body (a JSON string, or the end of a line of
        the Markdown formats): one id may be the prefix of another (…@12 and …@123)."""
        out: dict[str, list[float]] = {a: [] for a in alert_ids}
        for t, _, body in self.arrivals:
            for a in alert_ids:
                if f'"{a}"' in body or body.endswith(a) or f"{a}\n" in body or f"{a}\\n" in body:
                    out[a].append(t)
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def pager_env(receiver: Receiver, home) -> dict[str, str]:
    """Environment for `cityops pager` delivering every department's alerts to `receiver` as JSON."""
    from pathlib import Path

    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    hooks = home / "webhooks.yaml"
    hooks.write_text(f'webhooks:\n  "*": [{{format: json, url: "{receiver.url}"}}]\n')
    return {"CITYOPS_PAGER_WEBHOOKS": str(hooks), "CITYOPS_DATA_DIR": str(home)}


def pager_argv() -> list[str] | None:
    """`cityops pager` if this installation has it, else None."""
    argv = [sys.executable, "-m", "cityops", "pager"]
    done = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=60)
    return argv if done.returncode == 0 else None
