"""The demo's supervisor, driven with small real processes and threads: restarts with backoff, a part that keeps
crashing left down with its log's end, Ctrl-C held while a child starts."""
from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from cityops.stack.supervise import Backoff, Child, Inside, Interrupts, Supervisor

def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")



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
