"""`cityops demo` keeps its parts running: a worker or producer killed with SIGKILL is restarted (with a line
saying so), the pipeline goes on storing, and Ctrl-C still stops every process the demo started.

The integration test runs the demo as a user would start it, in its own data dir with its own broker on free
ports and its own embedded warehouse (locked by the demo process: the counts are read from its output). The
others drive the supervisor with small real processes and threads."""
from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from cityops.stack.supervise import Backoff, Child, Inside, Interrupts, Supervisor
from tests.conftest import free_port

ROWS = re.compile(r"\b(\w+)=(\d+)")


class Demo:
    """`cityops demo` in a subprocess; its output lines collected by a thread (and kept in a file)."""

    def __init__(self, data: Path, env: dict[str, str]):
        self.data = data
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "cityops", "demo", "--refresh", "1", "--rate", "200"],
                                     env=env, cwd=data, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True, errors="replace", start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        with open(self.data / "demo.out", "w") as copy:
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                copy.write(line)
                copy.flush()

    def ctrl_c(self) -> None:
        """SIGINT to the demo's process group, as a terminal's Ctrl-C sends it."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def output(self, last: int = 60) -> str:
        return "\n".join(self.lines[-last:])

    def wait_line(self, pattern: str, timeout: float, since: int = 0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[since:]:
                if m := re.search(pattern, line):
                    return m
            if self.proc.poll() is not None:
                self.reader.join(5)
                pytest.fail(f"the demo exited ({self.proc.returncode}) before printing /{pattern}/; it printed:\n"
                            f"{self.output()}")
            time.sleep(0.2)
        pytest.fail(f"no line /{pattern}/ within {timeout:.0f} s; the demo printed:\n{self.output()}")

    def rows(self) -> dict[str, int]:
        """Row counts of the last status line ("rows: table=n …")."""
        for line in reversed(self.lines):
            if line.startswith("rows:"):
                return {name: int(n) for name, n in ROWS.findall(line)}
        return {}

    def wait_rows_above(self, table: str, floor: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (n := self.rows().get(table, 0)) > floor:
                return n
            if self.proc.poll() is not None:
                pytest.fail(f"the demo exited ({self.proc.returncode}); it printed:\n{self.output()}")
            time.sleep(0.5)
        pytest.fail(f"{table} did not grow past {floor:,} within {timeout:.0f} s; the demo printed:\n{self.output()}")

    def pid(self, name: str) -> int | None:
        try:
            return int((self.data / "run" / f"{name}.pid").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def wait_new_pid(self, name: str, old: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.pid(name)
            if pid and pid != old and running(pid):
                return pid
            time.sleep(0.2)
        pytest.fail(f"no new {name} process within {timeout:.0f} s; the demo printed:\n{self.output()}")


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def describe(pids: set[int]) -> str:
    out = []
    for pid in sorted(pids):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            out.append(f"{pid}: {argv[:200]}")
        except OSError:
            out.append(f"{pid}: gone")
    return "; ".join(out)


def started_for(data: Path) -> set[int]:
    """Live processes whose environment names this data dir: everything the demo started, and the demo."""
    mark = f"CITYOPS_DATA_DIR={data}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if mark in (entry / "environ").read_bytes().split(b"\0") and running(int(entry.name)):
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture
def demo_env(tmp_path) -> dict[str, str]:
    data = tmp_path / "demo"
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYOPS_") or k == "CITYOPS_CACHE_DIR"}
    env.update({
        "CITYOPS_DATA_DIR": str(data),
        "CITYOPS_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "CITYOPS_KAFKA_CONTROLLER_PORT": str(free_port()),
        "CITYOPS_WORKER_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(Path(__file__).parents[1]),
    })
    return env


@pytest.mark.integration
def test_demo_restarts_killed_parts_and_ctrl_c_leaves_nothing_running(demo_env):
    data = Path(demo_env["CITYOPS_DATA_DIR"])
    demo = Demo(data, demo_env)
    try:
        demo.wait_line(r"events flowing", timeout=150)
        killed = demo.pid("worker")
        mark = len(demo.lines)
        os.kill(killed, signal.SIGKILL)
        demo.wait_line(r"worker stopped \(exit -9\b.*\); restarting in \d+ s", timeout=15, since=mark)
        worker = demo.wait_new_pid("worker", killed, timeout=20)
        time.sleep(3)   # the killed worker's last outputs are stored by now: growth below is the new one's
        before = demo.rows().get("case_history", 0)
        demo.wait_rows_above("case_history", before, timeout=60)
        assert demo.pid("worker") == worker, "the restarted worker stopped again"

        pids = {name: demo.pid(name) for name in ("broker", "producer", "pager")}
        assert all(pids.values()), f"pid files under {data / 'run'}: {pids}"
        mark = len(demo.lines)
        os.kill(pids["producer"], signal.SIGKILL)
        demo.wait_line(r"producer stopped \(exit -9\b.*\); restarting in \d+ s", timeout=15, since=mark)
        producer = demo.wait_new_pid("producer", pids["producer"], timeout=20)
        time.sleep(3)
        before = demo.rows().get("sensor_events", 0)
        demo.wait_rows_above("sensor_events", before, timeout=30)
        demo.wait_line(r"^parts: worker pid \d+ running \(1 restart\).*producer pid \d+ running \(1 restart\)",
                       timeout=10, since=mark)

        children = started_for(data) - {demo.proc.pid}
        assert {pids["broker"], worker, producer, pids["pager"]} <= children
        demo.ctrl_c()
        demo.proc.wait(timeout=90)
        demo.reader.join(5)
        assert demo.proc.returncode == 0, demo.output()
        ours = children | set(pids.values()) | {killed}
        deadline = time.monotonic() + 5   # multiprocessing's resource tracker exits on its pipe's EOF, just after
        while (left := {pid for pid in ours if running(pid)} | started_for(data)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left, f"still running after Ctrl-C: {describe(left)}\n{demo.output()}"
    finally:
        if demo.proc.poll() is None:
            demo.ctrl_c()
            try:
                demo.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                demo.proc.kill()
        for pid in started_for(data):   # what a failed run left behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# -- the supervisor ----------------------------------------------------------------------------------------

def checking(sup: Supervisor, until, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, f"not reached within {timeout} s: {sup.status()}"
        sup.check()
        time.sleep(0.02)


def test_a_part_that_keeps_crashing_is_reported_with_its_log_and_the_others_run_on(tmp_path):
    said: list[tuple[int, str]] = []
    crash = "import sys; print('cannot listen on 127.0.0.1:8080 (caller 13800138000)'); sys.exit(3)"
    failing = Child("pager", lambda _: [sys.executable, "-c", crash], tmp_path / "run", tmp_path / "pager.log")
    steady = Child("worker", lambda _: [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "run",
                   tmp_path / "worker.log")
    sup = Supervisor([steady, failing], lambda level, text: said.append((level, text)),
                     Backoff(first_s=0.05, max_s=0.1, crash_limit=4, window_s=30))
    sup.start()
    try:
        checking(sup, lambda: any(level == logging.ERROR for level, _ in said))
        worker = steady.proc.pid
        assert running(worker)
        assert sup.status() == [("worker", f"pid {worker}", "running", 0), ("pager", "-", "gave up", 3)]
    finally:
        sup.stop()
    log = tmp_path / "pager.log"
    assert [text for level, text in said if level == logging.WARNING] == [
        f"pager stopped (exit 3); restarting in {delay} s — see {log}" for delay in (0.05, 0.1, 0.1)]
    assert [text for level, text in said if level == logging.INFO] == [f"pager restarted (pid {pid}, restart {n})"
                                                                       for n, pid in enumerate(pids(said), 1)]
    report = said[-1][1]
    assert report.startswith("pager keeps crashing (4 stops within 30 s, the last: exit 3): not restarted again, "
                             "the other parts run on")
    assert f"{log} ends:\n  cannot listen on 127.0.0.1:8080" in report
    assert "13800138000" not in report   # a log's end on the screen is masked like everything shown
    assert not running(worker) and not (tmp_path / "run" / "worker.pid").exists()


def pids(said: list[tuple[int, str]]) -> list[int]:
    return [int(m.group(1)) for _, text in said if (m := re.search(r"restarted \(pid (\d+)", text))]


@dataclass
class Flaky:
    """A part that stops when the test says so."""
    name: str = "worker"
    log: Path = Path("worker.log")
    down: str | None = None

    def start(self, restarts: int) -> None:
        self.down = None

    def stopped(self) -> str | None:
        return self.down

    def stop(self) -> None:
        pass

    def where(self) -> str:
        return "pid 1"


def test_backoff_doubles_to_its_ceiling_and_starts_over_after_a_healthy_run():
    now = [0.0]
    said: list[str] = []
    part = Flaky()
    sup = Supervisor([part], lambda _, text: said.append(text), Backoff(max_s=4, crash_limit=99), clock=lambda: now[0])
    sup.start()
    delays = []
    for ran in (1, 1, 1, 1, 61, 1):   # seconds each run lasts
        now[0] += ran
        part.down = "exit 1"
        sup.check()
        delays.append(float(re.search(r"restarting in ([\d.]+) s", said[-1]).group(1)))
        now[0] += delays[-1]
        sup.check()
        assert said[-1].startswith("worker restarted")
    assert delays == [1, 2, 4, 4, 1, 2]
    assert Backoff().delay(6) == 30


def test_a_sink_thread_that_dies_with_an_exception_is_restarted(tmp_path, caplog):
    runs: list[threading.Event] = []

    def sink(stop: threading.Event) -> None:
        runs.append(stop)
        if len(runs) == 1:
            raise RuntimeError("warehouse went away")
        stop.wait()

    said: list[str] = []
    part = Inside("sink", sink, tmp_path / "sink.log")
    sup = Supervisor([part], lambda _, text: said.append(text), Backoff(first_s=0.05))
    with caplog.at_level(logging.ERROR, logger="cityops.sink"):
        sup.start()
        try:
            checking(sup, lambda: len(runs) == 2 and sup.status()[0][2] == "running")
        finally:
            sup.stop()
    assert said == [f"sink stopped (RuntimeError: warehouse went away); restarting in 0.05 s — see {part.log}",
                    "sink restarted (thread, restart 1)"]
    assert "RuntimeError: warehouse went away" in caplog.text   # the trace, in the sink's log
    assert runs[1].is_set() and not part.thread.is_alive()


def test_a_stop_signal_while_a_child_starts_is_raised_once_the_child_is_recorded():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    interrupts = Interrupts()
    interrupts.install()
    recorded = False
    try:
        with pytest.raises(KeyboardInterrupt):
            with interrupts.held():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)   # the handler has run by now: held back
                recorded = True
        assert recorded
        os.kill(os.getpid(), signal.SIGINT)   # a second Ctrl-C while stopping does not cut the stopping short
        time.sleep(0.05)
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])
