"""Keep a set of parts running: a part that stops is started again after a backoff (1 s doubling to 30 s, back
to 1 s once it ran a minute), and one that keeps crashing right away is reported with its log's last lines and
left down while the others run on.

A part is a child process (`Child`: worker, producer, pager) or a thread of this process (`Inside`: the sink,
which holds the embedded warehouse, one process only). The owner's loop calls `Supervisor.check()` every
fraction of a second; nothing here sleeps."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections import deque
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from cityops.pii import mask_text
from cityops.stack.process import Managed


@dataclass(frozen=True)
class Backoff:
    first_s: float = 1.0
    max_s: float = 30.0
    healthy_s: float = 60.0      # a part that ran this long starts its backoff again from first_s
    crash_limit: int = 5         # stops within window_s: it keeps crashing, leave it down
    window_s: float = 60.0

    def delay(self, streak: int) -> float:
        return min(self.first_s * 2 ** (streak - 1), self.max_s)


class Part(Protocol):
    name: str
    log: Path

    def start(self, restarts: int) -> None: ...
    def stopped(self) -> str | None: ...   # None while it runs, else why it stopped
    def stop(self) -> None: ...
    def where(self) -> str: ...            # "pid 123", "thread"


@dataclass
class Child:
    """A child process in its own session, recorded in `run_dir`/<name>.pid; argv(restarts) gives its
    command line (a restarted producer takes a new seed)."""

    name: str
    argv: Callable[[int], list[str]]
    run_dir: Path
    log: Path
    env: dict[str, str] | None = None
    proc: subprocess.Popen | None = None

    @property
    def managed(self) -> Managed:
        return Managed(self.name, self.run_dir)

    def start(self, restarts: int) -> None:
        self.proc = self.managed.start(self.argv(restarts), self.log, env=self.env)

    def stopped(self) -> str | None:
        # Popen's own wait: Managed.pid() would reap the child first and its exit status would be lost.
        code = self.proc.poll() if self.proc else None
        if code is None:
            return None
        self.managed.pidfile.unlink(missing_ok=True)   # a stale pid may be reused by another program
        _signal_session(self.proc.pid, signal.SIGKILL)   # what it started goes with it, out of the next run's way
        return f"exit {code}, {_signal_name(-code)}" if code < 0 else f"exit {code}"

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM its session, SIGKILL after `timeout`: nothing of it is left running."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            _signal_session(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_session(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.stopped()

    def where(self) -> str:
        return f"pid {self.proc.pid}" if self.proc else "-"


@dataclass
class Inside:
    """A thread running target(stop_event) until the event is set; an exception it raises goes to the
    logger `cityops.<name>` (the owner points it at `log`)."""

    name: str
    target: Callable[[threading.Event], None]
    log: Path
    thread: threading.Thread | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    failure: str | None = None

    def start(self, restarts: int) -> None:
        self.stop_event, self.failure = threading.Event(), None
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.target(self.stop_event)
        except BaseException as e:  # noqa: BLE001 — a thread's end is read by stopped(); the log keeps the trace
            self.failure = mask_text(f"{type(e).__name__}: {e}".splitlines()[0][:200])
            logging.getLogger(f"cityops.{self.name}").exception("%s stopped", self.name)

    def stopped(self) -> str | None:
        if self.thread is None or self.thread.is_alive():
            return None
        return self.failure or "returned without being asked to stop"

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        if self.thread:
            self.thread.join(timeout)

    def where(self) -> str:
        return "thread"


@dataclass
class _State:
    part: Part
    restarts: int = 0
    started_at: float = 0.0
    streak: int = 0                       # stops in a row without a healthy run between: the backoff's exponent
    stops: deque = field(default_factory=deque)   # when it stopped lately (monotonic)
    due: float | None = None              # restart at (monotonic)
    gave_up: bool = False


class Supervisor:
    """Starts the parts in order, restarts those that stop, stops them. `say(level, text)` prints a line (a
    logging level: INFO restarted, WARNING stopped, ERROR left down); `starting` wraps each start (the demo holds
    Ctrl-C there, so a child started is a child recorded)."""

    def __init__(self, parts: list[Part], say: Callable[[int, str], None], backoff: Backoff = Backoff(),
                 starting: Callable[[], object] = nullcontext, clock: Callable[[], float] = time.monotonic):
        self.states = [_State(p) for p in parts]
        self.stopping = False
        self.say, self.backoff, self.starting, self.clock = say, backoff, starting, clock

    def start(self) -> None:
        for st in self.states:
            self._launch(st)

    def _launch(self, st: _State) -> None:
        st.due, st.started_at = None, self.clock()
        try:
            with self.starting():
                st.part.start(st.restarts)
        except OSError as e:   # could not even start (a missing program, no memory): a stop like any other
            self._stopped(st, f"did not start: {e}")

    def check(self) -> None:
        """Restart the parts whose backoff is over; notice those that stopped."""
        for st in self.states:
            if st.gave_up or self.stopping:
                continue
            if st.due is not None:
                if self.clock() >= st.due:
                    st.restarts += 1
                    self._launch(st)
                    if st.due is None:
                        self.say(logging.INFO, f"{st.part.name} restarted ({st.part.where()}, "
                                               f"restart {st.restarts})")
                continue
            if (why := st.part.stopped()) is not None:
                self._stopped(st, why)

    def _stopped(self, st: _State, why: str) -> None:
        now, b = self.clock(), self.backoff
        if now - st.started_at >= b.healthy_s:
            st.streak = 0
        st.streak += 1
        st.stops.append(now)
        while st.stops and now - st.stops[0] > b.window_s:
            st.stops.popleft()
        name, log = st.part.name, st.part.log
        if len(st.stops) >= b.crash_limit:
            st.gave_up = True
            self.say(logging.ERROR, f"{name} keeps crashing ({len(st.stops)} stops within {b.window_s:.0f} s, "
                                    f"the last: {why}): not restarted again, the other parts run on; fix the cause "
                                    f"and start the demo again. {log} ends:\n{tail(log)}")
            return
        st.due = now + b.delay(st.streak)
        self.say(logging.WARNING, f"{name} stopped ({why}); restarting in {b.delay(st.streak):g} s — see {log}")

    def stop(self) -> None:
        """Stop every part, the last started first (one waiting for its restart has nothing running)."""
        self.stopping = True
        for st in reversed(self.states):
            st.part.stop()

    def status(self) -> list[tuple[str, str, str, int]]:
        """(name, where, state, restarts) of each part."""
        rows = []
        for st in self.states:
            state = ("gave up" if st.gave_up else
                     f"restarting in {max(0.0, st.due - self.clock()):.0f} s" if st.due is not None else "running")
            rows.append((st.part.name, st.part.where() if state == "running" else "-", state, st.restarts))
        return rows


def _signal_session(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def tail(log: Path, lines: int = 15) -> str:
    """The log's last lines, masked (a part's log must not bring personal data to the screen)."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 16384))
            text = f.read().decode(errors="replace")
    except OSError:
        return "  (no log)"
    return "\n".join(f"  {mask_text(line)}" for line in text.splitlines()[-lines:])


class Interrupts:
    """SIGINT and SIGTERM as KeyboardInterrupt, the first one only (a second Ctrl-C must not cut the stopping
    short), and held back while a child is being started: raised once its pid is recorded, so stopping
    finds it."""

    def __init__(self) -> None:
        self.requested = False
        self._holding = 0
        self._held_back = False

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._on)
        signal.signal(signal.SIGTERM, self._on)

    def _on(self, signum, frame) -> None:
        if self.requested:
            return
        self.requested = True
        if self._holding:
            self._held_back = True
        else:
            raise KeyboardInterrupt

    def stopping(self) -> None:
        """The stopping has begun (for any reason): no signal may cut it short from here on."""
        self.requested, self._held_back = True, False

    @contextmanager
    def held(self):
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
            if self._held_back and not self._holding:
                self._held_back = False
                raise KeyboardInterrupt
