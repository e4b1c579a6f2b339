"""The real pipeline as separate processes (worker(s) + sink) against a running broker, for the end-to-end
benchmark and the bad-input and fault tests: start, wait until caught up, read peak memory, stop.

"Caught up" is read from Kafka, never from the warehouse: an embedded warehouse can be open in one process
only (the sink's). The worker group has caught up when its committed offsets reach the end of every source
partition it consumes; the sink commits only after its insert, so the sink group at the end offsets of every
topic means everything is stored.
"""
from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from cityops.stack.process import Managed
from cityops.topics import OUTPUT_TOPICS, SOURCE_TOPICS

WORKER_GROUP = "cityops-streams"   # the Faust app id
SINK_TOPICS = [t.name for t in SOURCE_TOPICS + OUTPUT_TOPICS]   # what the sink stores
CLI = [sys.executable, "-m", "cityops"]


@dataclass
class Pipeline:
    """Worker and sink processes sharing `env` (CITYOPS_BOOTSTRAP_SERVERS, CITYOPS_CLICKHOUSE_URL …)."""

    env: dict[str, str]
    home: Path                       # pid files, logs and each worker's own data dir
    sink_group: str = "cityops-sink"
    sink_args: tuple[str, ...] = ()
    procs: dict[str, Managed] = field(default_factory=dict)
    argv: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return self.env["CITYOPS_BOOTSTRAP_SERVERS"]

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> Managed:
        m = Managed(name, self.home / "run")
        m.start(argv, self.logs / f"{name}.log", env=env)
        self.procs[name] = m
        self.argv[name] = (argv, env)
        return m

    def start(self, name: str, *args: str) -> Managed:
        """Another cityops command beside the worker and the sink (the pager, the intake), in its own data dir."""
        (self.home / name).mkdir(parents=True, exist_ok=True)
        return self._start(name, [*CLI, *args], {**self.env, "CITYOPS_DATA_DIR": str(self.home / name)})

    def restart(self, name: str) -> Managed:
        """Start `name` again as it was started (after it died)."""
        return self._start(name, *self.argv[name])

    def start_worker(self, name: str = "worker") -> Managed:
        # Each worker its own data dir: Faust keeps per-process state there.
        (self.home / name).mkdir(parents=True, exist_ok=True)
        env = {**self.env, "CITYOPS_DATA_DIR": str(self.home / name)}
        return self._start(name, [*CLI, "worker", "--loglevel", "info"], env)

    def start_sink(self, name: str = "sink") -> Managed:
        (self.home / name).mkdir(parents=True, exist_ok=True)
        env = {**self.env, "CITYOPS_DATA_DIR": str(self.home / name)}
        return self._start(name, [*CLI, "sink", "--group", self.sink_group, *self.sink_args], env)

    def pid(self, name: str) -> int | None:
        return self.procs[name].pid()

    def stop(self, *names: str) -> None:
        for name in names or list(self.procs):
            self.procs[name].stop()

    def log(self, name: str) -> str:
        p = self.logs / f"{name}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def wait_processed(self, timeout: float = 180.0, fail_fast: bool = True) -> float:
        """Worker caught up with the sources, then the sink with every topic (outputs included); returns when
        (wall clock) the sink got there. fail_fast: raise as soon as a process died (off when a supervisor
        restarts them)."""
        deadline = time.monotonic() + timeout
        check = self.check_running if fail_fast else None
        try:
            wait_caught_up(self.bootstrap, WORKER_GROUP, worker_topics(self.bootstrap),
                           deadline - time.monotonic(), check=check)
            return wait_caught_up(self.bootstrap, self.sink_group, SINK_TOPICS, deadline - time.monotonic(),
                                  check=check)
        except TimeoutError as e:   # what the processes were doing is the first thing to look at
            tails = "".join(f"\n--- {name}.log ends:\n{self.log(name)[-4000:]}" for name in self.procs)
            raise TimeoutError(f"{e}{tails}") from None

    def check_running(self) -> None:
        """Fail at once (with the log's tail) when a process we started has died, instead of timing out."""
        for name, m in self.procs.items():
            if m.pidfile.exists() and m.pid() is None:
                raise RuntimeError(f"the {name} exited; its log ends:\n{self.log(name)[-2000:]}")


def worker_topics(bootstrap: str) -> list[str]:
    """Topics the streams worker consumes (sources and its own internal ones): those its group has committed
    offsets on or subscribes to."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        names = {tp.topic for tp in _committed(admin, WORKER_GROUP)}
        try:
            for group in admin.describe_groups([WORKER_GROUP]).values():
                for member in _get(group, "members") or ():
                    meta = _get(member, "member_metadata")
                    names.update(_get(meta, "subscription") or _get(meta, "topics") or ())
        except (KafkaError, ValueError, TypeError, AttributeError):
            pass
    finally:
        admin.close()
    return sorted(names) or [t.name for t in SOURCE_TOPICS]   # not joined yet: at least the sources


def _get(obj, key: str):
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _committed(admin: KafkaAdminClient, group: str) -> dict[TopicPartition, int]:
    try:
        found = admin.list_group_offsets(group).get(group, {})
    except KafkaError:   # the group coordinator is still starting
        return {}
    return {tp: om.offset for tp, om in found.items()}


def end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    probe = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(t, p) for t in topics for p in probe.partitions_for_topic(t) or ()]
        return probe.end_offsets(parts)
    finally:
        probe.close()


def lag(bootstrap: str, group: str, topics: list[str], per_partition: bool = False):
    """Messages of `topics` the group has not committed yet (per_partition: `topic/partition` → those, for the
    partitions that lag)."""
    ends = end_offsets(bootstrap, topics)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        done = _committed(admin, group)
    finally:
        admin.close()
    behind = {tp: max(0, end - max(done.get(tp, 0), 0)) for tp, end in ends.items()}
    if per_partition:
        return {f"{tp.topic}/{tp.partition}": n for tp, n in behind.items() if n}
    return sum(behind.values())


def wait_caught_up(bootstrap: str, group: str, topics: list[str], timeout: float, settle: float = 1.5,
                   check=None) -> float:
    """Until the group's lag on `topics` is 0 and stays 0 for `settle` s (outputs may still be in flight).
    Returns when (wall clock, to the poll) it reached 0 for the last time."""
    deadline = time.monotonic() + max(timeout, 1.0)
    zero_since = zero_at = None
    while time.monotonic() < deadline:
        if check:
            check()
        if lag(bootstrap, group, topics) == 0:
            if zero_since is None:
                zero_since, zero_at = time.monotonic(), time.time()
            if time.monotonic() - zero_since >= settle:
                return zero_at
        else:
            zero_since = zero_at = None
        time.sleep(0.3)
    raise TimeoutError(f"group {group} did not catch up with {topics} within {timeout:.0f} s "
                       f"(lag {lag(bootstrap, group, topics)})")


def busy_hour(now: datetime | None = None) -> datetime:
    """The latest 19:45 in Beijing at least 10 minutes ago: the simulator's mix follows the hour of event time
    (at night there are far fewer hotline calls and app reports, which cost the worker most)."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone(timedelta(hours=8)))
    end = now.replace(hour=19, minute=45, second=0, microsecond=0)
    return end if end <= now - timedelta(minutes=10) else end - timedelta(days=1)


def simulate(n: int, seed: int, rate: float, end: datetime) -> list:
    """N simulator events spaced as a city sending `rate`/s, with a Beijing evening's mix (busy_hour) and
    their event times moved to end just before `end`: every run the same mix, and no case overdue on arrival."""
    from producers.simulator import Simulator

    mixed_at = busy_hour()
    sim = Simulator(seed=seed, start=mixed_at - timedelta(seconds=n / rate + 60), density=rate)
    shift = end - mixed_at
    horizon = mixed_at.timestamp() - 1
    out = []
    for topic, ev in sim:
        if len(out) >= n or ev.occurred_at.timestamp() > horizon:
            break
        out.append((topic, ev.model_copy(update={"occurred_at": ev.occurred_at + shift,
                                                 "received_at": ev.received_at + shift})))
    return out


def _stat(path: Path) -> list[str]:
    """The fields of a /proc …/stat file after the command name (which may hold spaces): state, ppid, …"""
    return (path / "stat").read_text().rsplit(")", 1)[1].split()


def cpu_tree(pids: dict[str, int | None]) -> dict[str, float]:
    """CPU seconds so far of each named process with its descendants: live ones, and exited ones through the
    kernel's cutime/cstime (the sink's decoding processes). A figure the shared host's load inflates far less
    than a rate."""
    stats: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                f = _stat(entry)
            except OSError:
                continue
            stats[int(entry.name)] = (int(f[1]), sum(int(x) for x in f[11:15]))   # ppid, u+s+cu+cs time
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _) in stats.items():
        children[ppid].append(pid)

    def tree(pid: int) -> int:
        return stats.get(pid, (0, 0))[1] + sum(tree(c) for c in children[pid])

    tick = os.sysconf("SC_CLK_TCK")
    return {name: tree(pid) / tick for name, pid in pids.items() if pid}


def machine_busy() -> float:
    """CPU seconds so far the whole machine spent busy, all cores and every process (other tenants' too)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return (sum(ticks[0:3]) + ticks[5] + ticks[6]) / os.sysconf("SC_CLK_TCK")   # user nice system irq softirq


def jit_cpu(pid: int | None) -> float:
    """CPU seconds so far of a JVM's JIT compiler threads ("C1/C2 CompilerThread…"): a fresh broker spends a
    minute of load compiling its hot paths, work a broker running for weeks has long done."""
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*") if pid else ():
        try:
            if (task / "comm").read_text().startswith(("C1 Compiler", "C2 Compiler")):
                total += sum(int(x) for x in _stat(task)[11:13])   # utime + stime
        except OSError:
            continue
    return total / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int | None) -> float | None:
    """Peak resident memory of a live process (VmHWM), in MiB; None once it is gone."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


def alive(pid: int | None) -> bool:
    """Running (a zombie left by a SIGKILL is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, TypeError):
        return False
    return state not in ("Z", "X")


_QUERY = """
import json, sys
import clickhouse_connect
q = json.load(sys.stdin)
c = clickhouse_connect.get_client(dsn=q["dsn"])
out = {k: [list(r) for r in c.query(sql).result_rows] for k, sql in q["queries"].items()}
c.close()
print(json.dumps(out, default=str, ensure_ascii=False))
"""


def query(dsn: str, queries: dict[str, str], timeout: float = 300.0) -> dict[str, list[list]]:
    """Run read queries in a child process: an embedded engine serves one directory per process, and the
    caller may already hold another one (a test session, a benchmark reading several runs)."""
    import json
    import subprocess

    done = subprocess.run([sys.executable, "-c", _QUERY], input=json.dumps({"dsn": dsn, "queries": queries}),
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"query failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else '?'}")
    return json.loads(done.stdout.strip().splitlines()[-1])
